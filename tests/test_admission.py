"""The in-cluster guardrails, judged by a real CEL engine (cel-python) on admitted and denied
objects, plus the alerts and restore drills the program renders."""

from __future__ import annotations

import copy

import celpy
import pytest
from celpy import celtypes

from components.config import ConfigError
from tools.offline import load_stack_file

from .conftest import dev_config, named, of_kind, program_run, run_config, stack_file, with_changes

# The Kubernetes CEL environment's typed constructors used by the mutating policy. cel-python
# cannot declare a type whose name is also the prefix of another type's name, so the nested
# ones get flat aliases here; construction semantics are the same (a message of named fields).
TYPE_ALIASES = {
    "Object.spec.template.spec.initContainers.securityContext.capabilities{": "Capabilities{",
    "Object.spec.template.spec.initContainers.securityContext{": "SecurityContext{",
    "Object.spec.template.spec.initContainers{": "Container{",
}
CEL = celpy.Environment(annotations={
    name: celtypes.MessageType for name in ("JSONPatch", "Capabilities", "SecurityContext", "Container")
})


def evaluate(expression: str, **activation):
    for typed, alias in TYPE_ALIASES.items():
        expression = expression.replace(typed, alias)
    program = CEL.program(CEL.compile(expression))
    return program.evaluate({k: celpy.json_to_cel(v) if not isinstance(v, celtypes.MapType) else v for k, v in activation.items()})


def policy(run, name: str) -> dict:
    (found,) = [r for r in run.registrations if r.custom and r.inputs.get("metadata", {}).get("name") == name
                and r.inputs["kind"].endswith("AdmissionPolicy")]
    return found.inputs


def admit(spec: dict, obj: dict) -> tuple[bool, str]:
    """A ValidatingAdmissionPolicy's decision on `obj`, evaluated the way the API server does."""
    if not all(evaluate(c["expression"], object=obj) for c in spec.get("matchConditions", ())):
        return True, "not matched"
    variables = {}
    for variable in spec["variables"]:
        variables[variable["name"]] = evaluate(variable["expression"], object=obj, variables=celtypes.MapType(
            {celtypes.StringType(k): v for k, v in variables.items()}))
    bound = celtypes.MapType({celtypes.StringType(k): v for k, v in variables.items()})
    for validation in spec["validations"]:
        if not evaluate(validation["expression"], object=obj, variables=bound):
            return False, str(evaluate(validation["messageExpression"], object=obj, variables=bound))
    return True, "valid"


def pvc(name="radarr", storage_class="ceph-filesystem", labels=None, data_source_ref=None) -> dict:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if data_source_ref:
        spec["dataSourceRef"] = data_source_ref
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "media", **({"labels": labels} if labels else {})}, "spec": spec}


BOOTSTRAP = {"apiGroup": "volsync.backube", "kind": "ReplicationDestination", "name": "radarr-bootstrap"}


@pytest.mark.parametrize(
    "obj, allowed",
    [
        (pvc(labels={"backups.homelab.dev/backed-up": "true"}), False),
        (pvc(data_source_ref=BOOTSTRAP), False),  # hand-written, bootstrapped from VolSync
        (pvc(name="media-scratch"), True),  # nothing backs it up: shared working storage is fine
        (pvc(labels={"backups.homelab.dev/backed-up": "true"}, storage_class="ceph-block"), True),
        (pvc(data_source_ref=BOOTSTRAP, storage_class=None), True),  # the default class is decided later
        (pvc(data_source_ref={"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "s"}), True),
    ],
)
def test_backed_up_pvcs_on_a_banned_class_are_denied(dev_run, obj, allowed):
    decision, message = admit(policy(dev_run, "backups-storage-class-guard-pvcs")["spec"], obj)
    assert decision is allowed, message
    if not allowed:
        assert "PersistentVolumeClaim radarr is backed up by VolSync and may not use storage class ceph-filesystem" in message


def volsync_object(kind: str, **kopia) -> dict:
    return {"apiVersion": "volsync.backube/v1alpha1", "kind": kind, "metadata": {"name": "radarr-nas", "namespace": "media"},
            "spec": {"sourcePVC": "radarr", "kopia": {"repository": "volsync-kopia-nas", **kopia}}}


@pytest.mark.parametrize(
    "obj, allowed",
    [
        (volsync_object("ReplicationSource", storageClassName="ceph-block", cacheStorageClassName="openebs-hostpath"), True),
        (volsync_object("ReplicationSource", cacheStorageClassName="ceph-filesystem"), False),
        (volsync_object("ReplicationDestination", storageClassName="ceph-filesystem"), False),
        (volsync_object("ReplicationSource"), True),
    ],
)
def test_volsync_volumes_on_a_banned_class_are_denied(dev_run, obj, allowed):
    decision, message = admit(policy(dev_run, "backups-storage-class-guard-volsync")["spec"], obj)
    assert decision is allowed, message


@pytest.fixture(scope="module")
def kopiur_run():
    config, secret_keys, _ = load_stack_file(stack_file("dev"))
    return program_run({**config, "backups:mover": "kopiur"}, secret_keys)


def kopiur_object(kind: str, **spec) -> dict:
    return {"apiVersion": "kopiur.home-operations.com/v1alpha1", "kind": kind,
            "metadata": {"name": "radarr-nas", "namespace": "media"}, "spec": spec}


BANNED_CACHE = {"podSecurityContext": {"runAsUser": 1000}, "cache": {"storageClassName": "ceph-filesystem"}}


@pytest.mark.parametrize(
    "guard, obj, allowed",
    [
        ("policies", kopiur_object("SnapshotPolicy", mover={"podSecurityContext": {"runAsUser": 1000}}), True),
        ("policies", kopiur_object("SnapshotPolicy", mover=BANNED_CACHE), False),
        ("policies", kopiur_object("SnapshotPolicy", verification={"deep": {"storageClassName": "ceph-filesystem"}}), False),
        ("policies", kopiur_object("SnapshotPolicy", verification={"deep": {"storageClassName": "ceph-block"}}), True),
        ("restores", kopiur_object("Restore", target={"pvc": {"name": "x", "storageClassName": "ceph-filesystem"}}), False),
        ("restores", kopiur_object("Restore", target={"populator": {}}, mover=BANNED_CACHE), False),
        ("restores", kopiur_object("Restore", target={"pvcRef": {"name": "radarr"}}), True),
    ],
)
def test_kopiur_volumes_on_a_banned_class_are_denied(kopiur_run, guard, obj, allowed):
    decision, message = admit(policy(kopiur_run, f"backups-storage-class-guard-kopiur-{guard}")["spec"], obj)
    assert decision is allowed, message
    if not allowed:
        assert message.startswith(f"{obj['kind']} radarr-nas puts a backup volume on a banned storage class")


def test_a_claim_a_kopiur_restore_fills_is_guarded_on_kopiur(kopiur_run, dev_run):
    filled = pvc(data_source_ref={"apiGroup": "kopiur.home-operations.com", "kind": "Restore", "name": "radarr-bootstrap"})
    decision, message = admit(policy(kopiur_run, "backups-storage-class-guard-pvcs")["spec"], filled)
    assert not decision and "is backed up by Kopiur" in message
    assert admit(policy(dev_run, "backups-storage-class-guard-pvcs")["spec"], filled)[0]  # the fork's guard: not its claim
    every = {r.inputs["metadata"]["name"] for r in kopiur_run.registrations if r.custom
             and r.inputs.get("kind") == "ValidatingAdmissionPolicyBinding"}
    assert {"backups-storage-class-guard-kopiur-policies", "backups-storage-class-guard-kopiur-restores"} <= every


def test_the_guard_denies_and_is_bound_everywhere(dev_run):
    bindings = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in dev_run.registrations
                if r.custom and r.inputs.get("kind") == "ValidatingAdmissionPolicyBinding"}
    assert bindings["backups-storage-class-guard-pvcs"] == {"policyName": "backups-storage-class-guard-pvcs", "validationActions": ["Deny"]}


# -- the mutating jitter policy --------------------------------------------------------------

def job(name="volsync-src-radarr-nas", created_by="volsync", init=None) -> dict:
    pod = {"containers": [{"name": "kopia", "image": "volsync"}]}
    if init is not None:
        pod["initContainers"] = init
    return {"metadata": {"name": name, "labels": {"app.kubernetes.io/created-by": created_by}},
            "spec": {"template": {"spec": pod}}}


def apply_json_patch(document: dict, operations) -> dict:
    """RFC 6902 `add`, the only operation the policy emits; `/-` appends to an array."""
    result = copy.deepcopy(document)
    for op in operations:
        assert op["op"] == "add"
        *parents, last = op["path"].strip("/").split("/")
        target = result
        for part in parents:
            target = target[part]
        value = celpy_to_json(op["value"])
        if last == "-":
            target.append(value)
        else:
            target[last] = value
    return result


def celpy_to_json(value):
    if isinstance(value, dict):
        return {str(k): celpy_to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [celpy_to_json(v) for v in value]
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    return str(value) if isinstance(value, celtypes.StringType) else value


def mutate(spec: dict, obj: dict) -> dict:
    if not all(evaluate(c["expression"], object=obj) for c in spec.get("matchConditions", ())):
        return obj
    variables = celtypes.MapType({celtypes.StringType(v["name"]): evaluate(v["expression"], object=obj)
                                  for v in spec.get("variables", [])})
    for mutation in spec["mutations"]:
        obj = apply_json_patch(obj, evaluate(mutation["jsonPatch"]["expression"], object=obj, variables=variables))
    return obj


def test_jitter_is_appended_after_existing_init_containers(dev_run):
    spec = policy(dev_run, "backups-mover-jitter")["spec"]
    mutated = mutate(spec, job(init=[{"name": "existing", "image": "x"}]))
    names = [c["name"] for c in mutated["spec"]["template"]["spec"]["initContainers"]]
    assert names == ["existing", "volsync-jitter"]  # the community policy would leave only the jitter
    jitter = mutated["spec"]["template"]["spec"]["initContainers"][1]
    assert jitter["command"][-1].endswith("% 31 ))")  # 0..30 s
    assert jitter["securityContext"]["allowPrivilegeEscalation"] is False


def test_jitter_creates_the_list_when_there_is_none_and_skips_other_jobs(dev_run):
    spec = policy(dev_run, "backups-mover-jitter")["spec"]
    assert [c["name"] for c in mutate(spec, job())["spec"]["template"]["spec"]["initContainers"]] == ["volsync-jitter"]
    for other in (job(name="volsync-dst-radarr-bootstrap"), job(created_by="someone-else"), job(name="backup-src-x")):
        assert mutate(spec, other) == other


def test_mutating_policy_api_version_follows_kubernetes():
    for version, expected in (("1.35", "admissionregistration.k8s.io/v1beta1"), ("1.36", "admissionregistration.k8s.io/v1")):
        run = run_config(with_changes(kubernetes={"version": version}))
        (mutating,) = [r for r in run.registrations if r.custom and r.inputs.get("kind") == "MutatingAdmissionPolicy"]
        assert mutating.inputs["apiVersion"] == expected
    with pytest.raises(ConfigError, match="1.33 has no MutatingAdmissionPolicy"):
        run_config(with_changes(kubernetes={"version": "1.33"}))
    run = run_config(with_changes(kubernetes={"version": "1.33"}, admission={"jitterSeconds": 0}))
    assert not [r for r in run.registrations if r.custom and r.inputs.get("kind") == "MutatingAdmissionPolicy"]


# -- alerts and drills -----------------------------------------------------------------------

def rules(run) -> dict[str, dict]:
    (rule,) = of_kind(run, "PrometheusRule")
    return {r["alert"]: r for g in rule.inputs["spec"]["groups"] for r in g["rules"]}


#: Seed 003's PrometheusRule alerts, as its "Monitoring" section lists them (../shared/seeds/003_*):
#: written here because `make test` runs without ../shared too.
SEED_003_ALERTS = {"VolSyncComponentAbsent", "VolSyncVolumeOutOfSync", "KopiaMaintenanceFailure",
                   "KopiaMaintenanceMissing", "KopiaMaintenanceTimeout"}


def test_the_alerts_of_seed_003_keep_their_names(dev_run):
    """People route and silence by alert name: a user migrating from seed 003's PrometheusRule
    keeps every route."""
    assert SEED_003_ALERTS <= set(rules(dev_run)), SEED_003_ALERTS - set(rules(dev_run))


def test_alerts_cover_volsync_maintenance_staleness_and_drills(dev_run):
    alerts = rules(dev_run)
    assert {"VolSyncComponentAbsent", "VolSyncVolumeOutOfSync", "VolSyncMoverFailed", "KopiaMaintenanceFailure",
            "KopiaMaintenanceMissing", "KopiaMaintenanceTimeout", "KopiaSnapshotsMissing", "BackupStaleNas", "RestoreDrillFailing",
            "RestoreDrillOverdue"} <= set(alerts)
    for alert in alerts.values():
        assert alert["labels"]["severity"] in ("critical", "warning") and alert["for"]
        assert alert["annotations"]["runbook"] and alert["annotations"]["summary"]
    # Hourly backups: stale after two missed runs plus an hour.
    assert '[3h])) == 0' in alerts["BackupStaleNas"]["expr"]
    # Exactly the sources that write to nas, as the program registered them.
    sources = sorted(r.inputs["metadata"]["name"] for r in dev_run.registrations
                     if r.type.endswith(":ReplicationSource") and r.inputs["spec"]["kopia"]["repository"] == "volsync-kopia-nas")
    assert f'obj_name=~"{"|".join(sources)}"' in alerts["BackupStaleNas"]["expr"]
    assert "volsync_volume_out_of_sync == 1" == alerts["VolSyncVolumeOutOfSync"]["expr"]
    assert "> 691200" in alerts["KopiaMaintenanceMissing"]["expr"]  # weekly + 1 day = 8 days, as in the seed


def test_stale_windows_follow_each_repository_schedule():
    repos = [{"name": "nas", "backend": "nfs", "nfs": {"server": "n", "path": "/a"}, "schedule": "hourly"},
             {"name": "far", "backend": "nfs", "nfs": {"server": "n", "path": "/b"}, "schedule": "daily"}]
    alerts = rules(run_config(with_changes(repositories=repos)))
    assert "[3h]" in alerts["BackupStaleNas"]["expr"] and "[2d1h]" in alerts["BackupStaleFar"]["expr"]


def test_every_app_gets_a_scratch_restore_drill(dev_run):
    drills = [r for r in of_kind(dev_run, "ReplicationDestination") if r.inputs["metadata"]["name"].endswith("-drill")]
    assert len(drills) == len(dev_config()["apps"])
    spec = named(dev_run, "ReplicationDestination", "media", "radarr-drill").inputs["spec"]
    kopia = spec["kopia"]
    assert kopia["cleanupTempPVC"] is True and kopia["cleanupCachePVC"] is True
    assert "destinationPVC" not in kopia  # never the app's volume
    assert (kopia["username"], kopia["hostname"], kopia["capacity"]) == ("radarr", "media", "10Gi")
    minute, hour, dom, month, dow = spec["trigger"]["schedule"].split()
    assert dow == "0" and 1 <= int(hour) < 5


def test_drills_can_be_limited_or_off():
    run = run_config(with_changes(drills={"schedule": "weekly", "apps": ["radarr"]}))
    names = [r.inputs["metadata"]["name"] for r in of_kind(run, "ReplicationDestination")]
    assert [n for n in names if n.endswith("-drill")] == ["radarr-drill"]
    run = run_config(with_changes(drills={"apps": "none"}))
    assert not [r for r in of_kind(run, "ReplicationDestination") if r.inputs["metadata"]["name"].endswith("-drill")]
    assert "RestoreDrillFailing" not in rules(run)
