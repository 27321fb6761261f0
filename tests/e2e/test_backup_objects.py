"""The failed-backup alert on what really reports a plugin backup: CloudNative-PG's Backup objects,
read by the real kube-state-metrics (built by `make engine`) with the README's Helm values, under a
ServiceAccount that holds only the README's rules, from a real API server 1.36.

CloudNative-PG itself is not run: the test makes the Backups its ScheduledBackup controller would
(name `<scheduled backup>-<time>`, its labels, the spec fields it copies, owned by the
ScheduledBackup as the rendered `backupOwnerReference: self` asks) and writes their phases through
the status subresource, as the operator does. promtool then evaluates the rendered rule on the
series kube-state-metrics exported at each step.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import cnpg_backups
from tests.test_readme import kube_state_metrics_values
from tools.apiserver import ApiServer, free_port

from .mover import ENGINE_BIN
from .promtool import promtool_test
from .test_apiserver import CRDS
from .test_pgbackrest import NAMESPACE, seed

#: CloudNative-PG's labels on a Backup its ScheduledBackup makes (utils.ClusterLabelName,
#: ImmediateBackupLabelName, ParentScheduledBackupLabelName) and the spec fields it copies.
CLUSTER_LABEL, IMMEDIATE_LABEL, PARENT_LABEL = "cnpg.io/cluster", "cnpg.io/immediateBackup", "cnpg.io/scheduled-backup"
COPIED = ("cluster", "target", "method", "online", "onlineConfiguration", "pluginConfiguration")
MONITORING, ACCOUNT = "monitoring", "kube-state-metrics"


class Cluster:
    """The API server with the CRDs, and kube-state-metrics reading it as the README sets it up."""

    def __init__(self, root: Path) -> None:
        for binary in ("etcd", "kube-apiserver-1.36", "kube-state-metrics", "promtool"):
            if not (ENGINE_BIN / binary).exists():
                pytest.fail(f"{ENGINE_BIN / binary} is missing: run `make engine`")
        if not CRDS.is_dir():
            pytest.fail(f"the upstream CRDs are missing at {CRDS}: the tests need ../shared beside the project")
        self.root = root
        self.server = ApiServer("1.36", root / "k8s").start()
        self.server.install_crds(CRDS)
        self.ksm: subprocess.Popen[bytes] | None = None
        self.port = 0

    def ok(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        status, answer = self.server.request(method, path, body, content_type)
        assert status in (200, 201), (method, path, status, answer)
        return answer

    def start_kube_state_metrics(self) -> None:
        """kube-state-metrics with the README's config file, as the chart mounts it, authenticated as
        a ServiceAccount bound to exactly the README's rules."""
        values = kube_state_metrics_values()
        self.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MONITORING}})
        self.ok("POST", f"/api/v1/namespaces/{MONITORING}/serviceaccounts",
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": ACCOUNT}})
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        self.ok("POST", f"{rbac}/clusterroles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                                 "metadata": {"name": ACCOUNT}, "rules": values["rbac"]["extraRules"]})
        self.ok("POST", f"{rbac}/clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": ACCOUNT},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": MONITORING}]})
        token = self.ok("POST", f"/api/v1/namespaces/{MONITORING}/serviceaccounts/{ACCOUNT}/token",
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": 3600}})["status"]["token"]
        kubeconfig = self.server.kubeconfig(self.root / "ksm.kubeconfig", token)
        config = self.root / "custom-resource-state.yaml"
        config.write_text(yaml.safe_dump(values["customResourceState"]["config"]))
        self.port = free_port()
        log = (self.root / "kube-state-metrics.log").open("ab")
        self.ksm = subprocess.Popen(
            [str(ENGINE_BIN / "kube-state-metrics"), f"--kubeconfig={kubeconfig}",
             f"--custom-resource-state-config-file={config}", "--custom-resource-state-only",
             "--host=127.0.0.1", f"--port={self.port}", "--telemetry-host=127.0.0.1", f"--telemetry-port={free_port()}"],
            stdout=log, stderr=subprocess.STDOUT)

    def metrics(self) -> dict[str, str]:
        """The Backup series kube-state-metrics exports now: series (Prometheus notation) -> value."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        series = {}
        for line in text.splitlines():
            match = re.fullmatch(rf"({cnpg_backups.PREFIX}_\w+)(\{{.*\}}) (\S+)", line)
            if match:
                series[match.group(1) + match.group(2)] = match.group(3)
        return series

    def exported(self, until: Any, seconds: float = 60) -> dict[str, str]:
        """The series, once `until(series)` holds (kube-state-metrics follows a watch)."""
        deadline, series = time.monotonic() + seconds, {}
        while time.monotonic() < deadline:
            if self.ksm is not None and self.ksm.poll() is not None:
                pytest.fail("kube-state-metrics exited: " + (self.root / "kube-state-metrics.log").read_text()[-3000:])
            try:
                series = self.metrics()
            except OSError:
                series = {}
            if until(series):
                return series
            time.sleep(0.5)
        pytest.fail(f"kube-state-metrics did not export the expected series: {series}; log: "
                    + (self.root / "kube-state-metrics.log").read_text()[-3000:])

    def stop(self) -> None:
        if self.ksm is not None:
            self.ksm.terminate()
            self.ksm.wait(timeout=30)
        self.server.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def phase_of(series: dict[str, str], backup: str) -> str | None:
    """The phase kube-state-metrics reports for `backup` (the state whose value is 1)."""
    set_to = [s for s, v in series.items()
              if s.startswith(cnpg_backups.PHASE + "{") and f'backup="{backup}"' in s and v == "1"]
    return re.search(r'phase="(\w+)"', set_to[0]).group(1) if len(set_to) == 1 else None  # type: ignore[union-attr]


def labels_of(series: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', series))


def test_a_failed_backup_fires_until_a_later_one_of_its_schedule_completes(cluster: Cluster, tmp_path: Path) -> None:
    objects = seed()
    cluster.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    scheduled = {name: body for (kind, ns, name), body in objects.items() if kind == "ScheduledBackup" and ns == NAMESPACE}
    uids = {}
    for name, body in scheduled.items():
        status, made = cluster.server.apply(body)
        assert status in (200, 201), made
        uids[name] = made["metadata"]["uid"]
    cluster.start_kube_state_metrics()
    base = f"/apis/postgresql.cnpg.io/v1/namespaces/{NAMESPACE}/backups"

    def backup(parent: str, at: datetime, phase: str) -> str:
        """The Backup `parent`'s controller makes for the run at `at`, ending in `phase`."""
        body = scheduled[parent]
        name = f"{parent}-{at:%Y%m%d%H%M%S}"
        cluster.ok("POST", base, {
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": NAMESPACE,
                         "labels": {CLUSTER_LABEL: body["spec"]["cluster"]["name"], IMMEDIATE_LABEL: "false",
                                    PARENT_LABEL: parent},
                         "ownerReferences": [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
                                              "name": parent, "uid": uids[parent]}]},
            "spec": {k: body["spec"][k] for k in COPIED if k in body["spec"]}})
        set_phase(name, phase)
        time.sleep(1.1)  # creationTimestamp has whole seconds: each Backup is newer than the last
        return name

    def set_phase(name: str, phase: str) -> None:
        cluster.ok("PATCH", f"{base}/{name}/status",
                   {"status": {"phase": phase, **({"error": "can't connect to the repository"} if phase == "failed" else {})}},
                   "application/merge-patch+json")

    managed = sorted({b["spec"]["cluster"]["name"] for b in scheduled.values()})
    b2, r2, b2_diff = (f"{managed[-1]}-{schedule}" for schedule in ("b2-full", "r2-full", "b2-diff"))
    day = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)

    def by_hand(name: str, of: str) -> str:
        """A Backup made by hand (`kubectl cnpg backup`): no ScheduledBackup's label, failed."""
        cluster.ok("POST", base, {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
                                  "metadata": {"name": name, "namespace": NAMESPACE, "labels": {CLUSTER_LABEL: of}},
                                  "spec": {"cluster": {"name": of}, "method": "plugin"}})
        set_phase(name, "failed")
        return name

    readings = []
    first = [backup(b2, day, "completed"), backup(r2, day, "completed"), backup(b2_diff, day, "completed")]
    readings.append(cluster.exported(lambda s: all(phase_of(s, b) == "completed" for b in first)))
    failed = backup(r2, day + timedelta(days=7), "failed")
    # B2's next backup completes after R2's failed: per schedule, it does not hide R2's failure.
    later = backup(b2, day + timedelta(days=7, hours=1), "completed")
    unarchived = backup(b2_diff, day + timedelta(days=1), "walArchivingFailing")
    # Quiet: a Backup of a cluster the stack does not manage, and one made by hand of a managed one.
    quiet = [by_hand(f"not-managed-{day:%Y%m%d%H%M%S}", "not-managed"), by_hand(f"{managed[-1]}-by-hand", managed[-1])]
    readings.append(cluster.exported(lambda s: phase_of(s, failed) == "failed" and phase_of(s, later) == "completed"
                                     and phase_of(s, unarchived) == "walArchivingFailing"
                                     and all(phase_of(s, b) == "failed" for b in quiet)))
    following = backup(r2, day + timedelta(days=14), "running")
    readings.append(cluster.exported(lambda s: phase_of(s, following) == "running"))
    set_phase(following, "completed")
    next_diff = backup(b2_diff, day + timedelta(days=2), "completed")
    readings.append(cluster.exported(lambda s: phase_of(s, following) == "completed" and phase_of(s, next_diff) == "completed"))

    # What kube-state-metrics exported: the README's labels, read from the objects.
    def alerting(backup: str, phase: str) -> dict[str, str]:
        (series,) = [s for s in readings[1] if s.startswith(cnpg_backups.PHASE + "{") and f'backup="{backup}"' in s
                     and f'phase="{phase}"' in s]
        return labels_of(series)
    labels = [alerting(failed, "failed"), alerting(unarchived, "walArchivingFailing")]
    assert [(x["namespace"], x["cluster"], x["scheduled_backup"]) for x in labels] == [
        (NAMESPACE, managed[-1], r2), (NAMESPACE, managed[-1], b2_diff)], labels
    assert any(s.startswith(cnpg_backups.CREATED + "{") and f'backup="{failed}"' in s for s in readings[1]), readings[1]

    # Each reading lasts ten minutes on promtool's clock; a series not yet exported is absent. At
    # 12m the failures are two minutes old, inside the rule's `for`.
    every = sorted({s for reading in readings for s in reading})
    series = {s: " ".join(" ".join([reading.get(s, "_")] * 10) for reading in readings) for s in every}
    promtool_test(tmp_path, objects, "PgBackRestBackupFailed", series,
                  {"9m": [], "12m": [], "19m": labels, "29m": labels, "39m": []})
