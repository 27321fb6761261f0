"""`pulumi up` against a real API server: the Kubernetes provider applying to Kubernetes 1.36
(with etcd, the upstream CRDs installed), reading back, diffing and deleting, step by step as
day-2 work goes, and surviving a CI job that dies half way.

Nothing else runs in the cluster (no controller manager, no kubelet): what a controller would
do to an object the test does itself, and says so (a claim is marked Bound, as the volume
binder would, so that it can grow as a bound claim does).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.apiserver import ApiServer, ForegroundDeletion
from tools.engine import PROJECT_DIR
from tools.offline import revealed
from tools.stackfile import read_yaml

from .engine import EngineProject, kubernetes_objects, require_engine
from .mover import ENGINE_BIN

CRDS = PROJECT_DIR.parent / "shared" / "crds"
VERSION = "1.36"
PASSWORD = "e2e-cluster-kopia-password-31b8"
NAMESPACES = ("media", "default", "volsync-system")


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A cluster of the test's own: the program's cluster-scoped objects (admission policies)
    and its `volsync-system` objects have fixed names, so two stacks cannot share one."""
    require_engine()
    for binary in ("etcd", f"kube-apiserver-{VERSION}"):
        if not (ENGINE_BIN / binary).exists():
            pytest.fail(f"{ENGINE_BIN / binary} is missing: run `make engine`")
    if not CRDS.is_dir():
        pytest.fail(f"the upstream CRDs are missing at {CRDS}: the tests need ../shared beside the project")
    server = ApiServer(VERSION, tmp_path_factory.mktemp("k8s-engine")).start()
    try:
        server.install_crds(CRDS)
        for namespace in NAMESPACES:
            status, body = server.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            assert status < 300, body
        # What a cluster with Rook has: the class the dev stack's claims use, which can grow them.
        status, body = server.apply({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                     "metadata": {"name": "ceph-block"}, "provisioner": "rook-ceph.rbd.csi.ceph.com",
                                     "allowVolumeExpansion": True})
        assert status < 300, body
        yield server
    finally:
        server.stop()


def cluster_project(folder: Path, server: ApiServer, **changes: Any) -> EngineProject:
    """The dev stack applied for real: no renderYamlTo, Kubernetes 1.36, the password a secret."""
    config = copy.deepcopy(read_yaml(PROJECT_DIR / "Pulumi.dev.yaml")["config"])
    config["backups:kubernetes"] = {"version": VERSION}
    config["backups:password"] = "set below"
    config.update({f"backups:{key}": value for key, value in changes.items()})
    folder.mkdir(parents=True)
    kubeconfig = server.kubeconfig(folder / "kubeconfig")
    return EngineProject.make(folder / "project", config, stack="cluster",
                              secrets={"backups:password": PASSWORD}, env={"KUBECONFIG": str(kubeconfig)})


def expected_objects(project: EngineProject) -> dict[tuple[str, str, str], dict[str, Any]]:
    """What the offline render says `up` must leave on the API server, secrets in the clear."""
    return {key: revealed(inputs) for key, inputs in
            kubernetes_objects(project.stack_file, project.stack, {"backups:password": PASSWORD}).items()}




def collections(server: ApiServer, project: EngineProject) -> tuple[str, ...]:
    """The cluster-wide list path of every kind the program renders."""
    paths = set()
    for body in expected_objects(project).values():
        parts = server._path(body).split("/")[:-1]  # without the name
        if "namespaces" in parts:
            del parts[parts.index("namespaces"):parts.index("namespaces") + 2]
        paths.add("/".join(parts))
    return tuple(sorted(paths))


def live(server: ApiServer, body: dict[str, Any]) -> dict[str, Any] | None:
    status, found = server.request("GET", server._path(body))
    return found if status == 200 else None


def missing_from(desired: Any, actual: Any, at: str = "") -> list[str]:
    """What of `desired` the live object lacks or holds otherwise: the server adds defaults,
    status and managed fields, which are not differences. A Secret's stringData is compared
    with its data, which is where the server keeps it (base64)."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return [f"{at}: {actual!r} is not a mapping"]
        found = []
        for key, value in desired.items():
            if key == "stringData" and "data" in actual:
                decoded = {k: base64.b64decode(v).decode() for k, v in actual["data"].items()}
                found += missing_from(value, decoded, f"{at}.stringData")
            elif key not in actual:
                found.append(f"{at}.{key}: absent")
            else:
                found += missing_from(value, actual[key], f"{at}.{key}")
        return found
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return [f"{at}: {actual!r} != {desired!r}"]
        return [d for i, (a, b) in enumerate(zip(desired, actual)) for d in missing_from(a, b, f"{at}[{i}]")]
    return [] if desired == actual else [f"{at}: {actual!r} != {desired!r}"]


def assert_converged(server: ApiServer, project: EngineProject,
                     claims_keep_their_source: bool = False) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every object the offline render has is on the API server as rendered; returns them live.
    With `claims_keep_their_source`, a claim's dataSourceRef is not compared: it is immutable, and
    the program ignores its change (a claim made under one mover keeps naming that one's bootstrap)."""
    found, objects = [], {}
    for key, body in expected_objects(project).items():
        if claims_keep_their_source and key[0] == "PersistentVolumeClaim":
            body = {**body, "spec": {k: v for k, v in body["spec"].items() if k not in ("dataSourceRef", "dataSource")}}
        obj = live(server, body)
        if obj is None:
            found.append(f"{key}: not on the API server")
            continue
        objects[key] = obj
        found += [f"{key}{d}" for d in missing_from(body, obj)]
    assert not found, "\n".join(found[:40])
    return objects


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def plan_ops(project: EngineProject) -> dict[str, str]:
    """Kubernetes object's resource name -> what `preview --diff` would do to it (steps other
    than `same`). The history ledger (a dynamic resource) is updated by any change of an app's
    claims; it holds no object and is left out, but it is never replaced."""
    result = ok(project.run("preview", "--json", "--diff"))
    ops = {step["urn"].rsplit("::", 1)[1]: step["op"] for step in json.loads(result.stdout)["steps"]
           if step["op"] != "same"}
    assert ops.pop("history", "update") == "update"
    return ops


#: Objects that list the apps, and so change in place when one comes or goes: the alert rule
#: (its stale-backup windows name every source) and the snapshot check (every identity).
APP_LISTS = ("alerts-rules", "nas-check-cronjob")


def without_app_lists(ops: dict[str, str]) -> dict[str, str]:
    for name in APP_LISTS:
        assert ops.pop(name) == "update", name
    return ops


def mark_bound(server: ApiServer, namespace: str, claim: str) -> None:
    """What the volume binder does once a volume is provisioned: the claim is Bound."""
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}/status"
    status, body = server.request("PATCH", path, {"status": {"phase": "Bound", "capacity": {"storage": "1Ti"}}},
                                  "application/merge-patch+json")
    assert status == 200, body


def per_app(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines of tools.engine's `changes per app:` note (tools/engine/changes.py)."""
    lines = result.stdout.split("\nchanges per app:\n", 1)[1].splitlines() if "\nchanges per app:\n" in result.stdout else []
    return [line.strip() for line in lines if line.startswith("  ")]


def edit(project: EngineProject, change) -> None:  # type: ignore[no-untyped-def]
    config = project.config()
    change(config)
    project.write_config(config)


def test_up_creates_what_the_render_says_and_day_two_changes_keep_every_claim(cluster, tmp_path):
    project = cluster_project(tmp_path / "day2", cluster)
    with ForegroundDeletion(cluster, collections(cluster, project)):
        day_two(cluster, project)


def day_two(cluster: ApiServer, project: EngineProject) -> None:
    up = ok(project.run("up"))
    assert "error" not in up.stdout.lower().split("diagnostics:")[0], up.stdout[-3000:]
    objects = assert_converged(cluster, project)
    claims = {k: v["metadata"]["uid"] for k, v in objects.items() if k[0] == "PersistentVolumeClaim"}
    assert len(claims) == 4
    for _, namespace, name in claims:
        mark_bound(cluster, namespace, name)
    assert plan_ops(project) == {}, "a second preview right after up plans changes"

    # 1. Add an app: its objects are created, nothing else changes.
    edit(project, lambda c: c["backups:apps"].append({"name": "lidarr", "namespace": "media"}))
    ops = without_app_lists(plan_ops(project))
    assert set(ops.values()) == {"create"} and all("lidarr" in name for name in ops), ops
    assert per_app(ok(project.run("preview"))) == [
        "media-lidarr: added (ReplicationDestination x2, PersistentVolumeClaim, ReplicationSource)"]
    ok(project.run("up"))
    objects = assert_converged(cluster, project)
    claims[("PersistentVolumeClaim", "media", "lidarr")] = objects[("PersistentVolumeClaim", "media", "lidarr")]["metadata"]["uid"]
    mark_bound(cluster, "media", "lidarr")

    # 2. Change a schedule: the one source is updated in place.
    edit(project, lambda c: c["backups:apps"][0].update(schedule="7 * * * *"))
    assert plan_ops(project) == {"media-radarr-nas": "update"}
    ok(project.run("up"))
    assert_converged(cluster, project)

    # 3. Change retention: every source of the repository, in place.
    edit(project, lambda c: c["backups:repositories"][0]["retain"].update(daily=14))
    ops = plan_ops(project)
    assert ops and set(ops.values()) == {"update"} and all(n.endswith("-nas") for n in ops), ops
    ok(project.run("up"))
    assert_converged(cluster, project)

    # 4. Grow a claim: updated in place, never replaced (a replace would start it empty).
    edit(project, lambda c: c["backups:apps"][0].update(capacity="20Gi"))
    ops = plan_ops(project)
    assert ops.get("media-radarr-volume") == "update", ops
    assert not any(op.startswith(("replace", "create-replacement", "delete-replaced")) for op in ops.values()), ops
    ok(project.run("up"))
    objects = assert_converged(cluster, project)
    assert objects[("PersistentVolumeClaim", "media", "radarr")]["spec"]["resources"]["requests"]["storage"] == "20Gi"

    # 5. Remove an app: its sources and destinations go, its claim stays (retained).
    edit(project, lambda c: c.__setitem__("backups:apps", [a for a in c["backups:apps"] if a["name"] != "prowlarr"]))
    ops = without_app_lists(plan_ops(project))
    assert set(ops.values()) == {"delete"} and all("prowlarr" in name for name in ops), ops
    (removed,) = per_app(ok(project.run("preview")))
    assert removed.startswith("media-prowlarr: removed (") and removed.endswith("(its claim is kept: retained on delete)")
    ok(project.run("up"))
    assert cluster.request("GET", "/apis/volsync.backube/v1alpha1/namespaces/media/replicationsources/prowlarr-nas")[0] == 404
    claim = live(cluster, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "metadata": {"namespace": "media", "name": "prowlarr"}})
    assert claim is not None and claim["metadata"]["uid"] == claims[("PersistentVolumeClaim", "media", "prowlarr")]

    # 6. Add it back: the retained claim is taken up as it is (no AlreadyExists, not recreated).
    edit(project, lambda c: c["backups:apps"].insert(1, {"name": "prowlarr", "namespace": "media"}))
    ok(project.run("up"))
    objects = assert_converged(cluster, project)
    assert {k: v["metadata"]["uid"] for k, v in objects.items() if k[0] == "PersistentVolumeClaim"} == claims

    # 6b. Add a repository: every app fans out to it, which the note says app by app.
    second = {"name": "nas2", "backend": "nfs", "nfs": {"server": "nas2.home", "path": "/mnt/kopia"}, "primary": False}
    edit(project, lambda c: c["backups:repositories"].append(second))
    fanned = per_app(ok(project.run("preview")))
    apps = [f"{a['namespace']}-{a['name']}" for a in project.config()["backups:apps"]]
    assert sorted(fanned) == sorted(f"{app}: + ReplicationSource {app}-nas2" for app in apps), fanned
    ok(project.run("up"))
    assert_converged(cluster, project)

    # 7. Destroy: everything goes but what is retained (claims, the repository Secrets).
    ok(project.run("destroy"))
    for _, namespace, name in claims:
        claim = live(cluster, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                               "metadata": {"namespace": namespace, "name": name}})
        assert claim is not None and claim["metadata"]["uid"] == claims[("PersistentVolumeClaim", namespace, name)]
    assert cluster.request("GET", "/apis/volsync.backube/v1alpha1/namespaces/media/replicationsources/radarr-nas")[0] == 404


def test_the_move_to_kopiur_is_one_up_that_keeps_every_claim_and_one_maintenance(cluster, tmp_path):
    """README "Moving to Kopiur", steps 3 and 4, under the real engine: `mover: kopiur` in one
    `up` deletes the fork's objects and creates Kopiur's, touches no claim (each keeps the fork's
    bootstrap as its dataSourceRef, which is immutable: the program ignores its change) and
    leaves one maintenance configured."""
    project = cluster_project(tmp_path / "move", cluster)
    with ForegroundDeletion(cluster, collections(cluster, project)):
        ok(project.run("up"))
        claims = {k: v for k, v in assert_converged(cluster, project).items() if k[0] == "PersistentVolumeClaim"}
        for _, namespace, name in claims:
            mark_bound(cluster, namespace, name)
        edit(project, lambda c: c.__setitem__("backups:mover", "kopiur"))
        steps = plan_steps(project)
        assert set(steps.values()) == {"create", "delete", "update"}, steps  # nothing replaced
        # Updated in place: the alerts (Kopiur's metrics) and the claim guard (claims a Restore fills).
        assert {key for key, op in steps.items() if op == "update"} == {
            ("PrometheusRule", "alerts-rules"), ("ValidatingAdmissionPolicy", "backups-storage-class-guard-pvcs")}
        assert {kind for (kind, _), op in steps.items() if op == "delete"} == {
            "ReplicationSource", "ReplicationDestination", "KopiaMaintenance", "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding"}
        assert {kind for (kind, _), op in steps.items() if op == "create"} == {
            "ClusterRepository", "SnapshotPolicy", "SnapshotSchedule", "Restore",
            "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}  # Kopiur's storage class guards
        ok(project.run("up"))
        objects = assert_converged(cluster, project, claims_keep_their_source=True)
    for key, claim in claims.items():
        assert objects[key]["metadata"]["uid"] == claim["metadata"]["uid"], key
        assert objects[key]["spec"]["dataSourceRef"] == claim["spec"]["dataSourceRef"], key  # the fork's bootstrap
    kopia = "/apis/volsync.backube/v1alpha1/namespaces/volsync-system/kopiamaintenances/kopia-nas"
    assert cluster.request("GET", kopia)[0] == 404  # gone in the same up as the ClusterRepository came
    assert cluster.request("GET", "/apis/kopiur.home-operations.com/v1alpha1/clusterrepositories/nas")[0] == 200
    assert plan_steps(project) == {}, "a second preview right after the move plans changes"


def plan_steps(project: EngineProject) -> dict[tuple[str, str], str]:
    """(kind, resource name) -> what `preview` would do, for every step but `same` and the ledger:
    a move between movers gives one name to two kinds (`<app>-<repo>`: a ReplicationSource goes,
    a SnapshotPolicy comes)."""
    result = ok(project.run("preview", "--json", "--diff"))
    steps = {(step["urn"].split("::")[-2].rsplit(":", 1)[-1], step["urn"].rsplit("::", 1)[1]): step["op"]
             for step in json.loads(result.stdout)["steps"] if step["op"] != "same"}
    return {key: op for key, op in steps.items() if key[1] != "history"}


# -- faults: nothing lost --------------------------------------------------------------------------

def many_apps(count: int) -> list[dict[str, Any]]:
    return [{"name": f"app{i:03d}", "namespace": "media"} for i in range(count)]


def state_of(project: EngineProject) -> dict[str, Any]:
    return json.loads(ok(project.pulumi("stack", "export")).stdout)


def claim_uids(server: ApiServer, namespace: str = "media") -> dict[str, str]:
    status, listing = server.request("GET", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    assert status == 200, listing
    return {item["metadata"]["name"]: item["metadata"]["uid"] for item in listing["items"]}


def count_sources(server: ApiServer) -> int:
    try:
        status, listing = server.request("GET", "/apis/volsync.backube/v1alpha1/namespaces/media/replicationsources")
    except OSError:
        return 0
    return len(listing.get("items", [])) if status == 200 else 0


def up_until(project: EngineProject, server: ApiServer, sources: int) -> subprocess.Popen[str]:
    """`up` started in a session of its own (the CLI and every plugin it starts), returned
    once `sources` ReplicationSources are on the API server."""
    process = subprocess.Popen(project.command("up"), cwd=PROJECT_DIR, env=project.env(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while count_sources(server) < sources:
        assert process.poll() is None, "up ended before the fault:\n" + (process.stdout.read() if process.stdout else "")
        assert time.monotonic() < deadline, "up made too few objects in 5 minutes"
        time.sleep(0.2)
    return process


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: the engine starts its plugins in process groups of their own,
    so killing the CLI's group leaves them running (found: orphaned providers after this test)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_all(pid: int) -> None:
    for process in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def assert_state_whole(project: EngineProject) -> None:
    """No operation left pending, and every resource in the state once."""
    deployment = state_of(project)["deployment"]
    assert not deployment.get("pending_operations"), deployment.get("pending_operations")
    urns = [r["urn"] for r in deployment["resources"]]
    assert len(urns) == len(set(urns))


def test_a_killed_up_of_100_apps_recovers_as_documented_and_loses_nothing(cluster, tmp_path):
    project = cluster_project(tmp_path / "kill", cluster, apps=many_apps(100), schedulePins={})
    with ForegroundDeletion(cluster, collections(cluster, project)):
        process = up_until(project, cluster, sources=30)
        kill_all(process.pid)  # the CI job dies: the CLI and its plugins at once
        process.wait(timeout=30)
        before = claim_uids(cluster)
        assert before, "the kill came before any claim existed"
        pending = state_of(project)["deployment"].get("pending_operations") or []
        assert pending and {p["type"] for p in pending} <= {"creating", "updating"}, pending
        print(f"killed with {len(pending)} operations pending, {len(before)} claims made")

        # The recovery, as the README's CI section gives it.
        blocked = project.run("up")
        assert blocked.returncode == 4 and "tools.engine cancel" in blocked.stderr, blocked.stdout[-2000:]
        print(blocked.stderr)
        ok(project.run("cancel"))
        ok(project.run("refresh", "--clear-pending-creates"))
        ok(project.run("up"))

        assert_state_whole(project)
        assert_converged(cluster, project)
        after = claim_uids(cluster)
        assert {name: after[name] for name in before} == before, "a claim was made again"
        assert len(after) == 100
        assert plan_ops(project) == {}


def test_the_api_server_stopping_mid_up_is_a_clear_error_and_the_next_up_converges(cluster, tmp_path):
    project = cluster_project(tmp_path / "stop", cluster, apps=many_apps(40), schedulePins={})
    with ForegroundDeletion(cluster, collections(cluster, project)):
        process = up_until(project, cluster, sources=10)
        cluster.stop_apiserver()
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 4, output[-3000:]  # an engine failure, named as one
        assert "connection refused" in output and "Traceback" not in output, output[-3000:]
        cluster.start_apiserver()
        assert_state_whole(project)
        ok(project.run("up"))
        assert_state_whole(project)
        assert_converged(cluster, project)
        assert plan_ops(project) == {}


def test_a_restarted_etcd_between_two_ups_changes_nothing(cluster, tmp_path):
    project = cluster_project(tmp_path / "etcd", cluster)
    ok(project.run("up"))
    before = claim_uids(cluster)
    cluster.restart_etcd()
    assert plan_ops(project) == {}
    second = ok(project.run("up"))
    assert re.search(r"\b\d+ unchanged", second.stdout) and not re.search(r"\b\d+ (created|updated|deleted)", second.stdout)
    assert claim_uids(cluster) == before
