"""`backups:mover: kopiur`: the same config as Kopiur objects, every history kept.

Each shipped stack that Kopiur can carry is rendered with both movers and the Kopiur objects
are compared with the VolSync ones the same config makes: the same identity (with the fork's
`/data` path pinned), the same planned schedule, the same retention, the claim filled by a
populator Restore that reads the same point. What Kopiur does not get yet is refused, naming
the key. The Kopiur renders are checked against Kopiur's CRDs here, and the Kopiur example is
accepted by a real API server in `make e2e` (tests/e2e/test_apiserver.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigError, stack_config_of
from tools.offline import PROJECT_DIR, load_stack_file, run_program
from tools.preview import kubernetes_object

from . import conformance
from .conftest import dev_config

#: Shipped stacks with nothing Kopiur refuses (restores, backupNow, mirrors, the web UI): NFS,
#: Garage over plain HTTP, existing claims with pinned identities (seeds 000 and 001, CephFS).
CARRIED = ["Pulumi.dev.yaml", "examples/Pulumi.garage.yaml", "examples/Pulumi.migrate-seed000.yaml",
           "examples/Pulumi.migrate-seed001.yaml"]
#: The fork's mover snapshots the volume mounted here (../shared/volsync-mover entry.sh: the
#: `kopia snapshot create` of the source): what every adopted history's path is.
FORK_DATA_PATH = "/data"


def objects(config: dict[str, str], secret_keys: list[str]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(kind, namespace, name) -> the object's inputs, for every Kubernetes object registered."""
    return registered(run_program(config, secret_keys))


def registered(run: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r.inputs["kind"], r.inputs["metadata"].get("namespace", ""), r.inputs["metadata"]["name"]): r.inputs
            for r in run.registrations if r.type.startswith("kubernetes:") and "kind" in r.inputs}


def on_kopiur(config: dict[str, str]) -> dict[str, str]:
    return {**config, "backups:mover": "kopiur", "backups:alerts": json.dumps({"enabled": False})}


def kinds(found: dict[tuple[str, str, str], Any]) -> set[str]:
    return {kind for kind, _, _ in found}


@pytest.mark.parametrize("stack", CARRIED)
def test_each_policy_keeps_the_history_the_fork_wrote(stack: str):
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / stack)
    volsync, kopiur = objects(config, secret_keys), objects(on_kopiur(config), secret_keys)
    sources = {(ns, name): spec for (kind, ns, name), spec in volsync.items() if kind == "ReplicationSource"}
    policies = {(ns, name): spec for (kind, ns, name), spec in kopiur.items() if kind == "SnapshotPolicy"}
    schedules = {(ns, name): spec for (kind, ns, name), spec in kopiur.items() if kind == "SnapshotSchedule"}
    assert sources and set(policies) == set(sources) == set(schedules)
    for key, source in sources.items():
        kopia, policy = source["spec"]["kopia"], policies[key]["spec"]
        assert policy["identity"] == {"username": kopia["username"], "hostname": kopia["hostname"]}, key
        assert policy["sources"] == [{"pvc": {"name": source["spec"]["sourcePVC"]}, "sourcePathOverride": FORK_DATA_PATH}]
        retain = kopia["retain"]
        assert policy["retention"] == {"keepLatest": retain["latest"], "keepHourly": retain["hourly"],
                                       "keepDaily": retain["daily"], "keepWeekly": retain["weekly"],
                                       "keepMonthly": retain["monthly"], "keepAnnual": retain["yearly"]}, key
        assert policy["repository"] == {"kind": "ClusterRepository", "name": kopia["repository"].removeprefix("volsync-kopia-")}
        assert policy["mover"]["podSecurityContext"] == kopia["moverSecurityContext"], key
        assert schedules[key]["spec"]["schedule"]["cron"] == source["spec"]["trigger"]["schedule"], key
        assert schedules[key]["spec"]["policyRef"] == {"name": key[1]}
    # No VolSync object and no jitter policy on Jobs nothing makes any more; one repository object each.
    assert not {k for k in kinds(kopiur) if k.startswith(("Replication", "KopiaMaintenance", "MutatingAdmission"))}
    assert {name for kind, _, name in kopiur if kind == "ClusterRepository"} == \
           {name.removeprefix("kopia-") for kind, _, name in volsync if kind == "KopiaMaintenance"}


RECOVERY = {"namespace": "media", "repository": "nas", "restoreAsOf": "2026-01-14T12:00:00Z"}


@pytest.mark.parametrize(("stack", "recovery"), [("Pulumi.dev.yaml", None), ("examples/Pulumi.garage.yaml", None),
                                                 ("Pulumi.dev.yaml", RECOVERY)], ids=["dev", "garage", "dev-recovery"])
def test_a_claim_is_filled_by_a_restore_of_the_same_point(stack: str, recovery: dict[str, Any] | None):
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / stack)
    if recovery is not None:
        config = {**config, "backups:recoveries": json.dumps([recovery])}
    run = kopiur_run(config, secret_keys)
    volsync, kopiur = objects(config, secret_keys), registered(run)
    claims = [(key, spec) for key, spec in kopiur.items() if key[0] == "PersistentVolumeClaim"
              and "dataSourceRef" in spec["spec"]]
    assert claims
    for (_, namespace, name), claim in claims:
        ref = claim["spec"]["dataSourceRef"]
        assert (ref["apiGroup"], ref["kind"]) == ("kopiur.home-operations.com", "Restore")
        restore = kopiur[("Restore", namespace, ref["name"])]["spec"]
        bootstrap = volsync[("ReplicationDestination", namespace, ref["name"])]["spec"]["kopia"]
        assert restore["target"] == {"populator": {}}
        # A first deploy starts empty; a point the config asks for must be there.
        recovered = recovery is not None and namespace == recovery["namespace"]
        assert restore["policy"] == {"onMissingSnapshot": "Fail" if recovered else "Continue"}, name
        identity = restore["source"]["identity"]
        assert (identity["username"], identity["hostname"], identity["sourcePath"]) == \
               (bootstrap["username"], bootstrap["hostname"], FORK_DATA_PATH), name
        assert identity.get("offset") == bootstrap.get("previous") and identity.get("asOf") == bootstrap.get("restoreAsOf")
        assert restore["repository"]["name"] == bootstrap["repository"].removeprefix("volsync-kopia-")
        if recovered:
            assert "offset" not in identity and identity["asOf"] == "2026-01-14T12:00:00Z"
        # Immutable once made: a claim the fork's bootstrap filled keeps its reference after the move.
        assert "spec.dataSourceRef" in claim_options(run, name)


def kopiur_run(config: dict[str, str], secret_keys: list[str]) -> Any:
    return run_program(on_kopiur(config), secret_keys)


def claim_options(run: Any, name: str) -> list[str]:
    (claim,) = [r for r in run.registrations if r.type == "kubernetes:core/v1:PersistentVolumeClaim"
                and r.inputs["metadata"]["name"] == name]
    return list(claim.request.ignoreChanges)


@pytest.mark.parametrize("stack", CARRIED)
def test_every_kopiur_object_is_what_the_crds_accept(stack: str, crds_dir: Path):
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / stack)
    run = kopiur_run(config, secret_keys)
    manifests = [m for m in map(kubernetes_object, run.registrations) if m]
    assert any(m["apiVersion"].startswith("kopiur.") for m in manifests)
    assert [p for m in manifests for p in conformance.problems(m, crds_dir, "1.36")] == []


def test_the_repository_hands_maintenance_over_and_adopts_the_forks_snapshots():
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.kopiur.yaml")
    nfs = objects(config, secret_keys)[("ClusterRepository", "", "nfs")]["spec"]
    assert nfs["catalog"] == {"adoption": "Adopt"} and nfs["maintenance"]["takeoverPolicy"] == "Force"
    quick, full = (nfs["maintenance"]["schedule"][k]["cron"].split() for k in ("quick", "full"))
    assert quick[0] == full[0] and int(quick[1]) == (int(full[1]) + 12) % 24  # never at once


def test_a_drill_is_the_bootstrap_repositorys_deep_verification():
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.kopiur.yaml")
    found = objects(config, secret_keys)
    radarr = {name: spec["spec"] for (kind, _, name), spec in found.items() if kind == "SnapshotPolicy" and "radarr" in name}
    assert radarr["radarr-nfs"]["verification"]["deep"]["schedule"]["cron"].endswith(" * * 0")  # weekly, as drills are
    assert "verification" not in radarr["radarr-b2"]  # one drill per app, from where a rebuild restores


def test_the_repository_reads_its_password_and_keys_from_the_repository_secret():
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.kopiur.yaml")
    found = objects(config, secret_keys)
    b2 = found[("ClusterRepository", "", "b2")]["spec"]
    secret = {"name": "volsync-kopia-b2", "namespace": "volsync-system"}
    assert b2["encryption"] == {"passwordSecretRef": {**secret, "key": "KOPIA_PASSWORD"}}
    assert b2["backend"]["s3"]["auth"] == {"secretRef": secret}
    assert ("ExternalSecret", "volsync-system", "volsync-kopia-b2") in found  # where those refs point
    assert b2["allowedNamespaces"] == {"list": ["downloads", "volsync-system"]}


@pytest.mark.parametrize("change, key", [
    ({"apps": [{"name": "radarr", "namespace": "media", "restore": {"previous": 1}}]}, "backups:apps[0].restore"),
    ({"apps": [{"name": "radarr", "namespace": "media", "backupNow": 1}]}, "backups:apps[0].backupNow"),
    ({"alerts": {"enabled": True}}, "backups:alerts.enabled"),
    ({"repositories": [{**dev_config()["repositories"][0], "mirrorTo": "b2"},
                       {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "kopia-copy"},
                        "credentials": {"accessKeyId": "id", "secretAccessKey": "key"}}]},
     "backups:repositories[0].mirrorTo"),
    ({"repositories": [{**dev_config()["repositories"][0], "ui": {"enabled": True, "password": "x"}}]},
     "backups:repositories[0].ui.enabled"),
])
def test_what_kopiur_does_not_get_yet_is_refused_naming_the_key(change: dict[str, Any], key: str):
    values = {**dev_config(), "schedulePins": {}, "mover": "kopiur", "alerts": {"enabled": False}, **change}
    with pytest.raises(ConfigError) as caught:
        stack_config_of({f"backups:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})
    assert any(p.startswith(key + ":") and "kopiur" in p for p in caught.value.problems), caught.value.problems

