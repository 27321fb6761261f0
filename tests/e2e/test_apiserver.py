"""Real Kubernetes API servers (1.35 and 1.36, built by `make engine`) judge what the program renders.

Each test runs once per version (ids `k8s-1.35`, `k8s-1.36`; 1.35 with the MutatingAdmissionPolicy
gate and admissionregistration.k8s.io/v1beta1 on, as a 1.35 cluster needs for the jitter policy).
Started on loopback with etcd; the upstream CRDs from ../shared/crds installed; every shipped
stack's render, rendered for that version, applied server-side (dry run, then for real); then the
in-cluster guardrails the render contains are exercised with objects they must refuse, admit or
mutate. The API server type-checks the policies' CEL against real schemas and applies the
mutating policy's JSON patch its own way, which cel-python and our patch reading cannot prove.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_admission import admit, mutate
from tests.test_kopiur import CARRIED, HOOKS, on_kopiur
from tools.apiserver import ApiServer
from tools.offline import load_stack_file, run_program
from tools.preview import kubernetes_object

from .mover import ENGINE_BIN

PROJECT = Path(__file__).resolve().parents[2]
CRDS = PROJECT.parent / "shared" / "crds"
SHIPPED = [PROJECT / "Pulumi.dev.yaml", *sorted((PROJECT / "examples").glob("Pulumi.*.yaml"))]


#: Kubernetes 1.35 serves MutatingAdmissionPolicy only as v1beta1 behind its feature gate.
FLAGS = {
    "1.35": ("--feature-gates=MutatingAdmissionPolicy=true", "--runtime-config=admissionregistration.k8s.io/v1beta1=true"),
    "1.36": (),
}


@pytest.fixture(scope="module", params=sorted(FLAGS), ids=lambda v: f"k8s-{v}")
def k8s(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    version: str = request.param
    for binary in ("etcd", f"kube-apiserver-{version}"):
        if not (ENGINE_BIN / binary).exists():
            pytest.fail(f"{ENGINE_BIN / binary} is missing: run `make engine`")
    if not CRDS.is_dir():
        pytest.fail(f"the upstream CRDs are missing at {CRDS}: the tests need ../shared beside the project")
    server = ApiServer(version, tmp_path_factory.mktemp(f"k8s-{version}"), FLAGS[version]).start()
    try:
        server.install_crds(CRDS)
        yield server
    finally:
        server.stop()


def rendered(path: Path, version: str) -> list[dict[str, Any]]:
    """Every Kubernetes object the program registers for a stack file, for `version`."""
    config, secret_keys, _ = load_stack_file(path)
    kubernetes = json.loads(config.get("backups:kubernetes", "{}"))
    config["backups:kubernetes"] = json.dumps({**kubernetes, "version": version})
    run = run_program(config, secret_keys)
    return [m for m in map(kubernetes_object, run.registrations) if m]


def own_namespace(manifest: dict[str, Any], stack: str) -> dict[str, Any]:
    """`manifest` moved to `<namespace>-<stack>` (cluster-scoped objects stay where they are)."""
    if "namespace" not in manifest["metadata"]:
        return manifest
    return {**manifest, "metadata": {**manifest["metadata"], "namespace": f"{manifest['metadata']['namespace']}-{stack}"}}


def ensure_namespaces(server: ApiServer, manifests: list[dict[str, Any]]) -> None:
    for namespace in sorted({m["metadata"]["namespace"] for m in manifests if "namespace" in m["metadata"]}):
        status, body = server.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        assert status < 300, body


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem.removeprefix("Pulumi."))
def test_k8s_accepts_every_object_of_each_shipped_stack_server_side(k8s: ApiServer, path: Path) -> None:
    # Each stack in namespaces of its own, so no stack meets another's objects: a claim's spec is
    # immutable, and two stacks may make one claim differently (examples/Pulumi.kopiur-seed003.yaml
    # fills bazarr-config from a Kopiur Restore, its migration twin from a ReplicationDestination).
    stack = path.stem.removeprefix("Pulumi.")
    manifests = [own_namespace(m, stack) for m in rendered(path, k8s.version)]
    ensure_namespaces(k8s, manifests)
    for dry_run in (True, False):
        refused = []
        for manifest in manifests:
            status, body = k8s.apply(manifest, dry_run=dry_run)
            if status >= 300:
                refused.append(f"{manifest['kind']} {manifest['metadata'].get('namespace', '')}/{manifest['metadata']['name']}: "
                               f"{status} {(body or {}).get('message', body) if isinstance(body, dict) else body}")
        assert refused == [], ("dry run" if dry_run else "apply") + ":\n" + "\n".join(refused)


#: Every shipped stack Kopiur carries (tests/test_kopiur.py), rendered with `mover: kopiur`, and the
#: Kopiur example with what no shipped stack asks for: a restore into a live claim, hooks.
ON_KOPIUR = [*CARRIED, "examples/Pulumi.kopiur.yaml", "kopiur with a restore, backupNow and hooks"]


@pytest.mark.parametrize("stack", ON_KOPIUR, ids=lambda s: s.removeprefix("examples/").removeprefix("Pulumi.").removesuffix(".yaml"))
def test_k8s_accepts_every_kopiur_object_server_side(k8s: ApiServer, stack: str) -> None:
    """Their CEL rules (a Restore's one target, ...) run here, which the schema check cannot."""
    variant = stack.startswith("kopiur with")
    config, secret_keys, _ = load_stack_file(PROJECT / ("examples/Pulumi.kopiur.yaml" if variant else stack))
    if variant:
        apps = json.loads(config["backups:apps"])
        apps[0]["restore"], apps[1]["backupNow"] = {"previous": 1}, "2026-12-03"
        apps[2]["hooks"] = HOOKS
        config["backups:apps"] = json.dumps(apps)
    config = {**on_kopiur(config), "backups:kubernetes": json.dumps({"version": k8s.version})}
    manifests = [m for m in map(kubernetes_object, run_program(config, secret_keys).registrations)
                 if m and m["apiVersion"].startswith("kopiur.")]
    if variant:
        asked = sorted(m["kind"] for m in manifests if m["kind"] == "Snapshot"
                       or (m["kind"] == "Restore" and "pvcRef" in m["spec"]["target"]))
        assert asked == ["Restore", "Snapshot", "Snapshot"]  # sonarr backs up to two repositories
    ensure_namespaces(k8s, manifests)
    for dry_run in (True, False):
        refused = [f"{m['kind']} {m['metadata']['name']}: {status} {body}"
                   for m in manifests for status, body in [k8s.apply(m, dry_run=dry_run)] if status >= 300]
        assert refused == [], ("dry run" if dry_run else "apply") + ":\n" + "\n".join(refused)
    if variant:  # the rule the server runs, shown biting: a Restore with two targets is refused
        restore = next(m for m in manifests if m["kind"] == "Restore" and "pvcRef" in m["spec"]["target"])
        both = {**restore, "metadata": {**restore["metadata"], "name": "two-targets"},
                "spec": {**restore["spec"], "target": {**restore["spec"]["target"], "populator": {}}}}
        status, body = k8s.apply(both, dry_run=True)
        assert status == 422 and "exactly one of target" in json.dumps(body), (status, body)


def _until_enforced(attempt, enforced, timeout: float = 30.0):
    """Policies take effect once the API server has loaded them: retry until they do."""
    deadline = time.monotonic() + timeout
    while True:
        result = attempt()
        if enforced(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def _pvc(name: str, storage_class: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "media", "labels": labels or {}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": "1Gi"}}}}


def test_k8s_the_storage_class_guard_denies_backed_up_volumes_on_ceph_filesystem(k8s: ApiServer) -> None:
    manifests = rendered(SHIPPED[0], k8s.version)
    ensure_namespaces(k8s, manifests)
    for manifest in manifests:
        if manifest["kind"].startswith("ValidatingAdmissionPolicy"):
            assert k8s.apply(manifest)[0] < 300
    backed_up = _pvc("guarded", "ceph-filesystem", {"backups.homelab.dev/backed-up": "true"})
    status, body = _until_enforced(lambda: k8s.apply(backed_up, dry_run=True), lambda r: r[0] >= 400)
    assert status in (403, 422) and "ceph-filesystem" in body["message"], body
    assert k8s.apply(_pvc("scratch", "ceph-filesystem"), dry_run=True)[0] < 300  # nothing backs it up
    # The fast stand-in (cel-python, tests/test_admission.py) must decide as the API server does.
    guard = next(m for m in manifests if m["metadata"]["name"] == "backups-storage-class-guard-pvcs"
                 and m["kind"] == "ValidatingAdmissionPolicy")["spec"]
    samples = [backed_up, _pvc("scratch", "ceph-filesystem"), _pvc("fine", "ceph-block", {"backups.homelab.dev/backed-up": "true"}),
               {**_pvc("populated", "ceph-filesystem"), "spec": {**_pvc("p", "ceph-filesystem")["spec"], "dataSourceRef": {
                   "apiGroup": "volsync.backube", "kind": "ReplicationDestination", "name": "radarr-bootstrap"}}}]
    for sample in samples:
        server_admits = k8s.apply(sample, dry_run=True)[0] < 300
        assert admit(guard, sample)[0] == server_admits, f"cel-python and the API server disagree on {sample['metadata']['name']}"
    source = next(m for m in manifests if m["kind"] == "ReplicationSource")
    cached = json.loads(json.dumps(source))
    cached["metadata"]["name"] = "cache-on-cephfs"
    cached["spec"]["kopia"]["cacheStorageClassName"] = "ceph-filesystem"
    status, body = k8s.apply(cached, dry_run=True)
    assert status in (403, 422) and "banned storage class" in body["message"], body


def test_k8s_the_kopiur_guards_deny_mover_volumes_on_ceph_filesystem(k8s: ApiServer) -> None:
    """One policy per Kopiur kind: the server type-checks each against its kind's schema (a
    Restore has no `verification`), which cel-python does not; both must decide alike."""
    config, secret_keys, _ = load_stack_file(PROJECT / "Pulumi.dev.yaml")
    config = {**on_kopiur(config), "backups:kubernetes": json.dumps({"version": k8s.version})}
    manifests = [m for m in map(kubernetes_object, run_program(config, secret_keys).registrations) if m]
    ensure_namespaces(k8s, manifests)
    guards = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"
              and "kopiur" in m["metadata"]["name"]}
    assert len(guards) == 2
    for manifest in manifests:
        if manifest["kind"].startswith("ValidatingAdmissionPolicy") and "kopiur" in manifest["metadata"]["name"]:
            assert k8s.apply(manifest)[0] < 300
    policy = next(m for m in manifests if m["kind"] == "SnapshotPolicy" and m["metadata"]["name"] == "radarr-nas")
    restore = next(m for m in manifests if m["kind"] == "Restore" and m["metadata"]["name"] == "radarr-bootstrap")

    def changed(manifest: dict[str, Any], name: str, at: tuple[str, ...], value: Any) -> dict[str, Any]:
        body = json.loads(json.dumps(manifest))
        body["metadata"]["name"] = name
        spec = body["spec"]
        for key in at[:-1]:
            spec = spec.setdefault(key, {})
        spec[at[-1]] = value
        return body
    cached = changed(policy, "cache-on-cephfs", ("mover", "cache", "storageClassName"), "ceph-filesystem")
    status, body = _until_enforced(lambda: k8s.apply(cached, dry_run=True), lambda r: r[0] >= 400)
    assert status in (403, 422) and "banned storage class" in body["message"], body
    samples = [
        ("backups-storage-class-guard-kopiur-policies", policy),
        ("backups-storage-class-guard-kopiur-policies", cached),
        ("backups-storage-class-guard-kopiur-policies",
         changed(policy, "drill-on-cephfs", ("verification", "deep", "storageClassName"), "ceph-filesystem")),
        ("backups-storage-class-guard-kopiur-restores", restore),
        ("backups-storage-class-guard-kopiur-restores",
         changed(restore, "restore-cache-on-cephfs", ("mover", "cache", "storageClassName"), "ceph-filesystem")),
    ]
    decided = []
    for guard, sample in samples:
        status, body = _until_enforced(lambda sample=sample: k8s.apply(sample, dry_run=True),
                                       lambda r, sample=sample: sample is policy or sample is restore or r[0] >= 400)
        server_admits = status < 300
        assert admit(guards[guard]["spec"], sample)[0] == server_admits, f"cel-python and the API server disagree on {sample['metadata']['name']}"
        decided.append(server_admits)
    assert decided == [True, False, False, True, False]


def _job(name: str, init: list[dict[str, Any]] | None, created_by: str = "volsync") -> dict[str, Any]:
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [{"name": "mover", "image": "busybox:1.37"}]}
    if init is not None:
        spec["initContainers"] = init
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "media", "labels": {"app.kubernetes.io/created-by": created_by}},
            "spec": {"template": {"spec": spec}}}


def test_k8s_the_jitter_policy_appends_to_mover_jobs_and_leaves_others_alone(k8s: ApiServer) -> None:
    manifests = rendered(SHIPPED[0], k8s.version)
    ensure_namespaces(k8s, manifests)
    for manifest in manifests:
        if manifest["kind"].startswith("MutatingAdmissionPolicy"):
            assert k8s.apply(manifest)[0] < 300, manifest["kind"]

    def names(job: dict[str, Any]) -> list[str]:
        return [c["name"] for c in job["spec"]["template"]["spec"].get("initContainers", [])]

    existing = [{"name": "prepare", "image": "busybox:1.37"}]
    status, job = _until_enforced(lambda: k8s.create(_job("volsync-src-radarr-nas", existing)),
                                  lambda r: r[0] < 300 and "volsync-jitter" in names(r[1]) or r[0] >= 300 and "exists" not in str(r[1]))
    assert status < 300 and names(job) == ["prepare", "volsync-jitter"], job
    status, job = k8s.create(_job("volsync-src-sonarr-nas", None))
    assert status < 300 and names(job) == ["volsync-jitter"], job
    status, job = k8s.create(_job("backup-report", None))
    assert status < 300 and names(job) == [], job
    status, job = k8s.create(_job("volsync-src-lookalike", None, created_by="someone-else"))
    assert status < 300 and names(job) == [], job
    # The fast stand-in (cel-python and a JSON-patch reading) must mutate as the API server does.
    policy = next(m for m in manifests if m["kind"] == "MutatingAdmissionPolicy")["spec"]
    for index, (name, init, by) in enumerate([("volsync-src-a-nas", existing, "volsync"), ("volsync-src-b-nas", None, "volsync"),
                                              ("other", None, "volsync"), ("volsync-src-c", None, "someone-else")]):
        sample = _job(f"{name}-{index}", init, by)
        server = k8s.create(sample)[1]
        offline = mutate(policy, sample)
        assert names(offline) == names(server), f"cel-python and the API server disagree on {name}"


def test_k8s_a_backed_up_pvc_without_a_class_is_denied_when_the_default_class_is_banned(k8s: ApiServer) -> None:
    """No storageClassName: the DefaultStorageClass admission plugin fills in the default class
    before validation, so the guard sees the class the volume would really get."""
    manifests = rendered(SHIPPED[0], k8s.version)
    ensure_namespaces(k8s, manifests)
    for manifest in manifests:
        if manifest["kind"].startswith("ValidatingAdmissionPolicy"):
            assert k8s.apply(manifest)[0] < 300
    default = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "ceph-filesystem", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
               "provisioner": "rook-ceph.cephfs.csi.ceph.com"}
    assert k8s.apply(default)[0] < 300
    try:
        classless = _pvc("classless", "unused", {"backups.homelab.dev/backed-up": "true"})
        del classless["spec"]["storageClassName"]
        # Dry runs: the default class reaches the admission plugin's cache a moment after it exists.
        status, body = _until_enforced(lambda: k8s.create(classless, dry_run=True), lambda r: r[0] >= 400)
        assert status in (403, 422) and "ceph-filesystem" in str(body), (status, body)
    finally:
        k8s.request("DELETE", "/apis/storage.k8s.io/v1/storageclasses/ceph-filesystem")
