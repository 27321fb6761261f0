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
from tools.offline import PROJECT_DIR, load_stack_file
from tools.preview import kubernetes_object

from . import conformance
from .conftest import dev_config, program_run

#: Every shipped stack on the fork: NFS, Garage over plain HTTP, CephFS with a web UI, existing
#: claims with pinned identities (seeds 000 and 001), a mirror (seed 002), seed 003.
CARRIED = ["Pulumi.dev.yaml", "examples/Pulumi.cephfs.yaml", "examples/Pulumi.garage.yaml",
           "examples/Pulumi.migrate-seed000.yaml", "examples/Pulumi.migrate-seed001.yaml",
           "examples/Pulumi.migrate-seed003.yaml", "examples/Pulumi.nfs-b2-r2.yaml"]
#: The fork's mover snapshots the volume mounted here (../shared/volsync-mover entry.sh: the
#: `kopia snapshot create` of the source): what every adopted history's path is.
FORK_DATA_PATH = "/data"


def objects(config: dict[str, str], secret_keys: list[str]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(kind, namespace, name) -> the object's inputs, for every Kubernetes object registered."""
    return registered(program_run(config, secret_keys))


def registered(run: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r.inputs["kind"], r.inputs["metadata"].get("namespace", ""), r.inputs["metadata"]["name"]): r.inputs
            for r in run.registrations if r.type.startswith("kubernetes:") and "kind" in r.inputs}


def on_kopiur(config: dict[str, str]) -> dict[str, str]:
    return {**config, "backups:mover": "kopiur"}


def kinds(found: dict[tuple[str, str, str], Any]) -> set[str]:
    return {kind for kind, _, _ in found}


@pytest.mark.parametrize("stack", CARRIED)
def test_each_policy_keeps_the_history_the_fork_wrote(stack: str):
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / stack)
    volsync, kopiur = objects(config, secret_keys), objects(on_kopiur(config), secret_keys)
    sources = {(ns, name): spec for (kind, ns, name), spec in volsync.items() if kind == "ReplicationSource"
               and "backups.homelab.dev/one-off" not in spec["metadata"]["labels"]}  # backupNow's: a Snapshot
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
    # One per repository: the maintained ones (each had a KopiaMaintenance) and the mirror copies.
    copies = {name for kind, _, name in kopiur if kind == "RepositoryReplication"}
    assert {name for kind, _, name in kopiur if kind == "ClusterRepository"} == \
           {name.removeprefix("kopia-") for kind, _, name in volsync if kind == "KopiaMaintenance"} | \
           {name.rsplit("-to-", 1)[1] for name in copies}


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


#: One restore of each kind the config has, on dev's radarr (media), which backs up to `nas`.
RESTORES = {
    "previous": {"previous": 2},
    "restoreAsOf": {"restoreAsOf": "2026-01-14T13:00:00+01:00"},
    "from": {"from": {"namespace": "media", "app": "sonarr"}, "previous": 1},
    "identity": {"identity": "radarr-nas@media"},
}


@pytest.mark.parametrize("request_", RESTORES.values(), ids=list(RESTORES))
def test_a_restore_into_the_live_claim_reads_what_volsyncs_would(request_: dict[str, Any]):
    config = {**dev_stack(), "backups:apps": json.dumps([{**dev_config()["apps"][0], "restore": request_}])}
    volsync, kopiur = objects(config, []), objects(on_kopiur(config), [])
    (destination,) = [spec["spec"] for (kind, _, name), spec in volsync.items()
                      if kind == "ReplicationDestination" and name == "radarr-restore"]
    (restore,) = [spec["spec"] for (kind, _, name), spec in kopiur.items()
                  if kind == "Restore" and name.startswith("radarr-restore-")]
    kopia = destination["kopia"]
    identity = restore["source"]["identity"]
    assert (identity["username"], identity["hostname"], identity["sourcePath"]) == \
           (kopia["username"], kopia["hostname"], FORK_DATA_PATH)
    assert identity.get("offset") == kopia.get("previous") and identity.get("asOf") == kopia.get("restoreAsOf")
    assert restore["repository"] == {"kind": "ClusterRepository", "name": kopia["repository"].removeprefix("volsync-kopia-")}
    # Into the app's own claim, files the snapshot lacks removed, and never an empty fill.
    assert restore["target"] == {"pvcRef": {"name": kopia["destinationPVC"]}}
    assert restore["options"] == {"enableFileDeletion": kopia["enableFileDeletion"]} == {"enableFileDeletion": True}
    assert restore["policy"] == {"onMissingSnapshot": "Fail"}
    assert restore["mover"]["podSecurityContext"] == kopia["moverSecurityContext"]


def test_a_kopiur_restore_runs_once_per_request():
    """A Restore runs when it is made: an edited request must be a new object, an unchanged one
    the same, or a re-applied config would restore again (or an edit never)."""
    def restore_names(request_: dict[str, Any]) -> set[str]:
        app = {**dev_config()["apps"][0], "restore": request_}
        found = objects(on_kopiur({**dev_stack(), "backups:apps": json.dumps([app])}), [])
        return {name for kind, _, name in found if kind == "Restore" and "-restore-" in name}

    first = restore_names({"previous": 1})
    assert len(first) == 1 and restore_names({"previous": 1}) == first
    assert restore_names({"previous": 2}) != first and restore_names({"previous": 1, "repository": "nas"}) != first


def test_backup_now_is_one_snapshot_of_each_policy_per_token():
    def snapshots(token: Any) -> dict[str, dict[str, Any]]:
        app = {**dev_config()["apps"][0], "backupNow": token}
        run = kopiur_run({**dev_stack(), "backups:apps": json.dumps([app])}, [])
        made = [r for r in run.registrations if r.type.endswith(":Snapshot")]
        # The next token replaces it; the old one stays with Kopiur, whose retention prunes it
        # (deleting it would delete the snapshot it took: Kopiur's default deletionPolicy).
        assert made and all(r.retain_on_delete for r in made)
        return {r.inputs["metadata"]["name"]: r.inputs for r in made}

    first = snapshots("2026-12-03")
    policies = {name for kind, _, name in objects(on_kopiur(dev_stack()), []) if kind == "SnapshotPolicy"
                and name.startswith("radarr-")}
    assert {spec["spec"]["policyRef"]["name"] for spec in first.values()} == policies
    for spec in first.values():
        assert "deletionPolicy" not in spec["spec"]  # Kopiur's Delete: pruned, the snapshot goes too
        assert spec["metadata"]["labels"]["backups.homelab.dev/one-off"] == "backupNow"
    assert set(snapshots("2026-12-03")) == set(first) and not set(snapshots(2)) & set(first)


@pytest.mark.parametrize("stack", CARRIED)
def test_the_history_lock_sees_the_same_histories_on_either_mover(stack: str):
    """The move changes no recorded history (identity, place, claim), so the lock lets it through;
    it refuses a changed identity on either mover as before."""
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / stack)

    def ledger(values: dict[str, str]) -> Any:
        (history,) = [r.inputs for r in program_run(values, secret_keys).registrations if r.name == "history"]
        return {k: v for k, v in history.items() if k != "__provider"}  # the dynamic provider's own code
    assert ledger(on_kopiur(config)) == ledger(config)


@pytest.mark.parametrize("seed", ["000", "001", "003"])
def test_each_seeds_kopiur_example_is_its_migration_example_with_the_mover_changed(seed: str):
    """One key apart, so the move is one config change and the two examples cannot drift."""
    kopiur, _, _ = load_stack_file(PROJECT_DIR / "examples" / f"Pulumi.kopiur-seed{seed}.yaml")
    fork, _, _ = load_stack_file(PROJECT_DIR / "examples" / f"Pulumi.migrate-seed{seed}.yaml")
    assert kopiur.pop("backups:mover") == "kopiur" and "backups:mover" not in fork
    assert kopiur == fork


def test_a_mirror_is_a_replication_copying_what_the_cronjob_copies():
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    volsync, kopiur = objects(config, secret_keys), objects(on_kopiur(config), secret_keys)
    cronjobs = {(ns, name): spec["spec"] for (kind, ns, name), spec in volsync.items()
                if kind == "CronJob" and name.startswith("kopia-mirror-")}
    replications = {(ns, name): spec["spec"] for (kind, ns, name), spec in kopiur.items()
                    if kind == "RepositoryReplication"}
    assert cronjobs and set(replications) == set(cronjobs)
    assert not {name for kind, _, name in kopiur if kind == "CronJob" and name.startswith("kopia-mirror-")}
    for key, cronjob in cronjobs.items():
        replication = replications[key]
        (container,) = cronjob["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        script = container["args"][-1] if container.get("args") else container["command"][-1]
        destination = replication["destination"]["s3"]
        assert f"sync-to s3 --bucket={destination['bucket']} --endpoint={destination['endpoint']} " \
               f"--region={destination['region']}" in script
        assert ("--delete" in script.split()) == replication["sync"]["deleteExtra"] is True
        assert replication["schedule"] == {"cron": cronjob["schedule"]} and replication["suspend"] == cronjob["suspend"]
        source = replication["sourceRef"]["name"]
        assert replication["sourceRef"]["kind"] == "ClusterRepository" and f"-{source}-to-" in key[1]
        # The copy's keys, from its repository Secret where the CronJob read them.
        keys = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
        assert keys == {destination["auth"]["secretRef"]["name"]}
        assert replication["mover"]["podSecurityContext"]["runAsUser"] == \
               cronjob["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    copy = kopiur[("ClusterRepository", "", "b2-mirror")]["spec"]
    # Only the sync changes the copy: no maintenance, no adoption into a policy's pruning.
    assert copy["maintenance"] == {"enabled": False} and copy["catalog"] == {"adoption": "Ignore"}
    # Never made by Kopiur in the copy's empty bucket (sync-to refuses a repository of another
    # unique ID), and read-only: restores from it only. A repository movers write is made if absent.
    assert copy["create"] == {"enabled": False} and copy["mode"] == "ReadOnly"
    assert kopiur[("ClusterRepository", "", "nfs")]["spec"]["create"] == {"enabled": True}


HOOKS = {"beforeBackup": [{"exec": {"pod": {"app.kubernetes.io/name": "radarr"}, "container": "app",
                                    "command": ["sqlite3", "/config/radarr.db", ".backup /config/radarr.db.bak"]},
                           "timeout": "2m"}],
         "afterBackup": [{"http": {"url": "http://radarr.media.svc:7878/api/resume"}, "continueOnFailure": True}]}


def test_hooks_run_around_each_of_the_apps_backups():
    app = {**dev_config()["apps"][0], "repositories": ["nas"], "hooks": HOOKS}
    found = objects(on_kopiur({**dev_stack(), "backups:apps": json.dumps([app])}), [])
    (policy,) = [spec["spec"] for (kind, _, name), spec in found.items() if kind == "SnapshotPolicy"]
    (before,), (after,) = policy["hooks"]["beforeSnapshot"], policy["hooks"]["afterSnapshot"]
    step = HOOKS["beforeBackup"][0]
    assert before == {"workloadExec": {"podSelector": {"matchLabels": step["exec"]["pod"]}, "container": "app",
                                       "command": step["exec"]["command"], "timeout": "2m", "continueOnFailure": False}}
    assert after == {"httpRequest": {"url": HOOKS["afterBackup"][0]["http"]["url"], "method": "POST",
                                     "continueOnFailure": True}}


@pytest.mark.parametrize(("hook", "problem"), [
    ({"exec": {"pod": {"app": "radarr"}, "command": ["true"]}, "http": {"url": "http://radarr"}}, "one per step"),
    ({}, "one per step"),
    ({"exec": {"pod": {}, "command": ["true"]}}, "pod"),
    ({"exec": {"pod": {"app": "radarr"}, "command": []}}, "command"),
    ({"http": {"url": "http://radarr"}, "timeout": "two minutes"}, "Go duration"),
])
def test_a_bad_hook_is_refused_at_its_key(hook: dict[str, Any], problem: str):
    values = {**dev_config(), "schedulePins": {}, "mover": "kopiur",
              "apps": [{"name": "radarr", "namespace": "media", "hooks": {"beforeBackup": [hook]}}]}
    with pytest.raises(ConfigError) as caught:
        stack_config_of({f"backups:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})
    assert any(p.startswith("backups:apps[0].hooks.beforeBackup[0]") and problem in p for p in caught.value.problems), \
        caught.value.problems


@pytest.mark.parametrize("url", ["https://admin:hunter2-hook-secret@radarr.home/api/pause",
                                 "http://radarr.media.svc:7878/api/v3/command?apikey=hunter2-hook-secret"])
def test_a_hook_url_with_credentials_is_refused_without_showing_them(url: str):
    hook = {"http": {"url": url}}
    values = {**dev_config(), "schedulePins": {}, "mover": "kopiur",
              "apps": [{"name": "radarr", "namespace": "media", "hooks": {"beforeBackup": [hook]}}]}
    with pytest.raises(ConfigError) as caught:
        stack_config_of({f"backups:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})
    (problem,) = caught.value.problems
    assert problem.startswith("backups:apps[0].hooks.beforeBackup[0].http.url:") and "hunter2" not in problem


def test_the_web_ui_is_kopiurs_server_behind_the_programs_login_and_ingress():
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.cephfs.yaml")
    volsync, run = objects(config, secret_keys), kopiur_run(config, secret_keys)
    kopiur = registered(run)
    server = kopiur[("ClusterRepository", "", "cephfs")]["spec"]["server"]
    (deployment,) = [spec["spec"] for (kind, _, _), spec in volsync.items() if kind == "Deployment"]
    (container,) = deployment["template"]["spec"]["containers"]
    # The fork's UI read its login from the Secret's keys; Kopiur reads the same keys of the same Secret.
    login = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if e["name"].startswith("KOPIA_SERVER_")}
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if e["name"].startswith("KOPIA_SERVER_")}
    assert server["auth"] == {"secretRef": {"name": login.pop(), "usernameKey": "KOPIA_SERVER_USERNAME",
                                            "passwordKey": "KOPIA_SERVER_PASSWORD"}} and len(keys) == 2
    assert server["readOnly"] is True  # browse and restore, as the fork's read-only connection
    assert server["namespace"] == next(ns for (kind, ns, _) in volsync if kind == "Deployment")
    assert server["podSecurityContext"]["runAsUser"] == deployment["template"]["spec"]["securityContext"]["runAsUser"]
    # Kopiur makes the Deployment and Service; the program's Ingress routes to Kopiur's Service.
    assert not {k for k in kinds(kopiur) if k in ("Deployment", "Service")}
    (ingress,) = [spec["spec"] for (kind, _, _), spec in kopiur.items() if kind == "Ingress"]
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "cephfs-kopia-ui", "port": {"name": "http"}}
    (rule,) = [r.inputs for r in run.registrations if r.type.endswith(":PrometheusRule")]
    (down,) = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "KopiaWebUiDown"]
    assert 'deployment=~"cephfs-kopia-ui"' in down


def dev_stack() -> dict[str, str]:
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "Pulumi.dev.yaml")
    assert secret_keys == []  # dev's secrets are plain (and warned about): run without keys
    return config


def kopiur_run(config: dict[str, str], secret_keys: list[str]) -> Any:
    return program_run(on_kopiur(config), secret_keys)


def claim_options(run: Any, name: str) -> list[str]:
    (claim,) = [r for r in run.registrations if r.type == "kubernetes:core/v1:PersistentVolumeClaim"
                and r.inputs["metadata"]["name"] == name]
    return list(claim.request.ignoreChanges)


@pytest.mark.parametrize("stack", [*CARRIED, "dev with a restore, backupNow and hooks"])
def test_every_kopiur_object_is_what_the_crds_accept(stack: str, crds_dir: Path):
    if stack in CARRIED:
        config, secret_keys, _ = load_stack_file(PROJECT_DIR / stack)
    else:
        apps = dev_config()["apps"]
        apps[0]["restore"], apps[1]["backupNow"] = {"restoreAsOf": "2026-01-14T12:00:00Z"}, "1"
        apps[2]["hooks"] = HOOKS
        config, secret_keys = {**dev_stack(), "backups:apps": json.dumps(apps)}, []
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



