"""Bringing an existing VolSync history over, and day-2 work as config (issue: adoption).

What is asserted is what the program emitted (under mocks) or what the plan and the history
rules decided from two configs; the e2e tests run the real mover on the same objects.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import ConfigError, stack_config_of
from components.history import ledger_of, quantity_bytes, refusals
from components.history_lock import HistoryLockProvider
from components.plan import plan_stack

from .conftest import dev_config, named, of_kind, run_config, with_changes

NAS = dev_config()["repositories"][0]
B2 = {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "volsync"},
      "credentials": {"accessKeyId": "id-0123", "secretAccessKey": "key-0123"}, "schedule": "daily",
      "retain": {"daily": 14}}
RADARR = {"name": "radarr", "namespace": "media", "capacity": "10Gi"}


def plan_of(**changes: Any):
    config = {**dev_config(), "schedulePins": {}, **changes}
    return plan_stack(stack_config_of({f"backups:{k}": json.dumps(v) for k, v in config.items()}))


def ledger(**changes: Any) -> dict[str, Any]:
    return ledger_of(plan_of(**changes))


def identities(run, kind: str) -> set[tuple[str, str, str]]:
    return {(r.inputs["metadata"]["name"], r.inputs["spec"]["kopia"]["username"], r.inputs["spec"]["kopia"]["hostname"])
            for r in of_kind(run, kind)}


# --------------------------------------------------------------------------- identity


def test_every_source_and_every_restore_path_use_the_apps_identity():
    run = run_config(with_changes(
        repositories=[NAS, B2],
        apps=[{**RADARR, "restore": {"previous": 1}}, {"name": "atuin", "namespace": "default", "identity": "atuin-src@default"}],
    ))
    assert identities(run, "ReplicationSource") == {
        ("radarr-nas", "radarr", "media"), ("radarr-b2", "radarr", "media"),
        ("atuin-nas", "atuin-src", "default"), ("atuin-b2", "atuin-src", "default"),
    }
    assert identities(run, "ReplicationDestination") == {
        ("radarr-bootstrap", "radarr", "media"), ("radarr-restore", "radarr", "media"), ("radarr-drill", "radarr", "media"),
        ("atuin-bootstrap", "atuin-src", "default"), ("atuin-drill", "atuin-src", "default"),
    }
    # The fork reads explicit fields before sourceIdentity; none is left to disagree with them.
    assert all("sourceIdentity" not in r.inputs["spec"]["kopia"] for r in of_kind(run, "ReplicationDestination"))


def test_two_apps_writing_one_identity_to_one_repository_is_a_config_error():
    with pytest.raises(ConfigError) as error:
        plan_of(apps=[RADARR, {"name": "radarr2", "namespace": "media", "identity": "radarr@media"}])
    (problem,) = [p for p in error.value.problems if "identity" in p]
    assert "backups:apps[1].identity" in problem and "backups:apps[0].name" in problem


@pytest.mark.parametrize("identity", ["radarr", "a b@c", "@media", "radarr@", "-x@media", "x@media;rm"])
def test_an_identity_must_be_user_at_host(identity):
    with pytest.raises(ConfigError) as error:
        plan_of(apps=[{**RADARR, "identity": identity}])
    assert any(p.startswith("backups:apps[0].identity:") for p in error.value.problems), error.value.problems


def test_restore_from_another_app_reads_that_apps_identity_or_the_default_of_a_removed_one():
    plan = plan_of(apps=[
        {"name": "atuin", "namespace": "default", "identity": "atuin-src@default"},
        {"name": "atuin2", "namespace": "default", "restore": {"from": {"namespace": "default", "app": "atuin"}}},
        {"name": "gone", "namespace": "default", "restore": {"from": {"namespace": "old", "app": "atuin"}}},
        {"name": "legacy", "namespace": "media", "restore": {"identity": "legacy-nas@media", "previous": 0}},
    ])
    assert [ap.restore.identity for ap in plan.apps[1:]] == [
        "atuin-src@default:/data", "atuin@old:/data", "legacy-nas@media:/data"]


def test_an_unchanged_restore_request_keeps_the_trigger_earlier_versions_gave_it():
    """Values from commit b5cfcc3 (before identities): upgrading must not run a restore again."""
    for restore, trigger in [
        ({"previous": 2}, "restore-536ae406"),
        ({"restoreAsOf": "2026-01-14T13:00:00+01:00"}, "restore-6b5a0cc5"),
        ({"from": {"namespace": "old", "app": "radarr"}, "previous": 1, "repository": "nas"}, "restore-cd68421e"),
    ]:
        (ap,) = plan_of(apps=[{**RADARR, "restore": restore}]).apps
        assert ap.restore.trigger == trigger


# --------------------------------------------------------------------------- the history lock


def test_changing_an_apps_identity_is_refused_unless_meant():
    before = ledger(apps=[RADARR])
    (problem,) = refusals(before, ledger(apps=[{**RADARR, "identity": "radarr-nas@media"}]))
    assert "backups:apps[0]" in problem and "'radarr@media'" in problem and "identity: radarr@media" in problem
    assert refusals(before, ledger(apps=[{**RADARR, "identity": "radarr-nas@media", "allowIdentityChange": True}])) == []
    assert refusals(before, ledger(apps=[{**RADARR, "identity": "radarr@media"}])) == []  # the default, spelt out


def test_renaming_an_app_without_its_identity_is_refused_and_with_it_passes():
    before = ledger(apps=[RADARR])
    (problem,) = refusals(before, ledger(apps=[{**RADARR, "name": "movies"}]))
    assert "identity: radarr@media on movies" in problem and "claimName: radarr" in problem
    kept = {**RADARR, "name": "movies", "identity": "radarr@media", "claimName": "radarr"}
    assert refusals(before, ledger(apps=[kept])) == []
    # Keeping the claim but not the identity: the claim's history changes.
    (problem,) = refusals(before, ledger(apps=[{**RADARR, "name": "movies", "claimName": "radarr"}]))
    assert "claim media/radarr has its history as 'radarr@media'" in problem


def test_removing_an_app_or_renaming_a_repository_in_place_is_not_refused():
    before = ledger(repositories=[NAS, B2], apps=[RADARR, {"name": "sonarr", "namespace": "media"}])
    assert refusals(before, ledger(repositories=[NAS, B2], apps=[RADARR])) == []
    renamed = [{**NAS, "name": "truenas"}, B2]  # same NFS export: the history is where it was
    assert refusals(before, ledger(repositories=renamed, apps=[RADARR, {"name": "sonarr", "namespace": "media"}])) == []


def test_moving_a_repository_elsewhere_is_refused():
    before = ledger(repositories=[NAS, B2], apps=[RADARR])
    moved = [NAS, {**B2, "s3": {**B2["s3"], "bucket": "volsync-new"}}]
    (problem,) = refusals(before, ledger(repositories=moved, apps=[RADARR]))
    assert "a repository moved" in problem and "volsync-new" in problem


def test_a_claim_grows_in_place_and_shrinks_only_by_being_made_again():
    before = ledger(apps=[RADARR])
    assert refusals(before, ledger(apps=[{**RADARR, "capacity": "20Gi"}])) == []
    (problem,) = refusals(before, ledger(apps=[{**RADARR, "capacity": "5Gi"}]))
    assert problem.startswith("backups:apps[0].capacity (radarr): claim media/radarr is 10Gi")
    assert "backupNow" in problem and "recreateClaim" in problem and "kubectl -n media delete pvc radarr" in problem
    assert refusals(before, ledger(apps=[{**RADARR, "capacity": "5Gi", "recreateClaim": "shrink-1"}])) == []
    assert quantity_bytes("10Gi") > quantity_bytes("10G") > quantity_bytes("9536Mi")


def test_the_lock_refuses_in_its_check_which_the_engine_runs_at_preview():
    provider = HistoryLockProvider()
    before, after = ledger(apps=[RADARR]), ledger(apps=[{**RADARR, "capacity": "5Gi"}])
    (failure,) = provider.check(before, after).failures
    assert failure.property == "claims" and "cannot shrink a claim" in failure.reason
    assert provider.check(before, before).failures == [] and provider.check({}, after).failures == []
    assert provider.diff("history", before, before).changes is False
    assert provider.diff("history", before, ledger(apps=[{**RADARR, "capacity": "20Gi"}])).changes is True


def test_the_stack_registers_its_history_ledger(dev_run):
    (lock,) = [r for r in dev_run.registrations if r.type == "pulumi-python:dynamic:Resource" and "claims" in r.inputs]
    claims = lock.inputs["claims"]
    assert set(claims) == {"media/radarr", "media/prowlarr", "media/sabnzbd", "default/bookstack-config"}
    assert claims["media/radarr"]["identity"] == "radarr@media" and claims["media/radarr"]["capacity"] == "10Gi"


# --------------------------------------------------------------------------- existingClaim


def test_an_existing_claim_is_backed_up_and_restored_into_but_never_made():
    run = run_config(with_changes(apps=[{"name": "home-assistant", "namespace": "home", "existingClaim": "ha-config",
                                         "restore": {"previous": 0}}]))
    assert not of_kind(run, "PersistentVolumeClaim")
    assert {r.inputs["metadata"]["name"] for r in of_kind(run, "ReplicationDestination")} == {
        "home-assistant-restore", "home-assistant-drill"}  # no bootstrap: nothing fills a claim made elsewhere
    source = named(run, "ReplicationSource", "home", "home-assistant-nas").inputs["spec"]
    assert source["sourcePVC"] == "ha-config"
    restore = named(run, "ReplicationDestination", "home", "home-assistant-restore").inputs["spec"]["kopia"]
    assert restore["destinationPVC"] == "ha-config" and restore["enableFileDeletion"] is True
    assert run.outputs["inventory"]["home/home-assistant"]["claimManaged"] is False


@pytest.mark.parametrize("extra, key", [({"claimName": "x"}, "claimName"), ({"recreateClaim": "t"}, "recreateClaim")])
def test_an_existing_claim_takes_no_key_that_makes_a_claim(extra, key):
    with pytest.raises(ConfigError) as error:
        plan_of(apps=[{**RADARR, "existingClaim": "radarr-config", **extra}])
    assert any(p.startswith("backups:apps[0]:") and key in p for p in error.value.problems), error.value.problems


def test_two_apps_on_one_claim_is_a_config_error():
    with pytest.raises(ConfigError) as error:
        plan_of(apps=[{**RADARR, "claimName": "shared"}, {"name": "b", "namespace": "media", "existingClaim": "shared"}])
    assert any("backups:apps[1].existingClaim" in p and "backups:apps[0].claimName" in p for p in error.value.problems)


# --------------------------------------------------------------------------- backupNow, recreateClaim


def test_backup_now_is_an_extra_manual_source_per_repository_and_leaves_the_schedule():
    plain = run_config(with_changes(repositories=[NAS, B2], apps=[RADARR]))
    now = run_config(with_changes(repositories=[NAS, B2], apps=[{**RADARR, "backupNow": "2026-11-24"}]))
    for repo in ("nas", "b2"):
        scheduled = named(now, "ReplicationSource", "media", f"radarr-{repo}").inputs["spec"]
        assert scheduled == named(plain, "ReplicationSource", "media", f"radarr-{repo}").inputs["spec"]
        extra = named(now, "ReplicationSource", "media", f"radarr-{repo}-now").inputs["spec"]
        assert extra["trigger"] == {"manual": "2026-11-24"}
        # Same history, same retention (Kopia's policy for the identity is set by every run).
        assert {k: v for k, v in extra["kopia"].items()} == scheduled["kopia"]
    assert len(of_kind(now, "ReplicationSource")) == 2 * len(of_kind(plain, "ReplicationSource"))


def test_backup_now_sources_are_not_watched_for_staleness():
    plan = plan_of(apps=[{**RADARR, "backupNow": "t1"}])
    assert all(not s.endswith("-now") for w in plan.alerts.repositories for s in w.sources)


def test_recreate_claim_makes_a_new_claim_filled_by_a_new_bootstrap():
    run = run_config(with_changes(apps=[{**RADARR, "capacity": "5Gi", "recreateClaim": "shrink-1"}]))
    (claim,) = of_kind(run, "PersistentVolumeClaim")
    (bootstrap,) = [r for r in of_kind(run, "ReplicationDestination") if "bootstrap" in r.name]
    generation = bootstrap.inputs["metadata"]["name"].removeprefix("radarr-bootstrap-")
    assert len(generation) == 6 and claim.name == f"media-radarr-volume-{generation}"
    assert claim.inputs["metadata"]["name"] == "radarr"  # the app mounts the same claim name
    assert claim.inputs["spec"]["dataSourceRef"]["name"] == f"radarr-bootstrap-{generation}"
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "5Gi"


# --------------------------------------------------------------------------- mirror copies, recoveries

MIRRORED = [{**NAS, "mirrorTo": "b2"}, B2]


def test_a_restore_reads_a_mirror_copy_with_the_copys_secret_in_the_apps_namespace():
    run = run_config(with_changes(repositories=MIRRORED, apps=[{**RADARR, "restore": {"previous": 0, "repository": "b2"}}]))
    restore = named(run, "ReplicationDestination", "media", "radarr-restore").inputs["spec"]["kopia"]
    assert restore["repository"] == "volsync-kopia-b2" and "moverVolumes" not in restore
    assert (restore["username"], restore["hostname"]) == ("radarr", "media")
    assert named(run, "Secret", "media", "volsync-kopia-b2")
    assert {r.inputs["metadata"]["name"] for r in of_kind(run, "ReplicationSource")} == {"radarr-nas"}  # nothing writes the copy


def test_a_restore_from_a_repository_that_is_no_copy_of_the_apps_is_refused():
    with pytest.raises(ConfigError) as error:
        plan_of(repositories=[NAS, B2], apps=[{**RADARR, "repositories": ["nas"], "restore": {"previous": 0, "repository": "b2"}}])
    assert any(p.startswith("backups:apps[0].restore.repository: media/radarr neither backs up to 'b2'") for p in error.value.problems)


def test_a_namespace_recovery_points_every_bootstrap_of_the_namespace_and_touches_no_live_claim():
    run = run_config(with_changes(
        repositories=MIRRORED,
        apps=[RADARR, {"name": "sonarr", "namespace": "media"}, {"name": "bookstack", "namespace": "default"}],
        recoveries=[{"namespace": "media", "repository": "b2", "restoreAsOf": "2026-11-20T03:00:00+01:00"}],
    ))
    for app in ("radarr", "sonarr"):
        kopia = named(run, "ReplicationDestination", "media", f"{app}-bootstrap").inputs["spec"]["kopia"]
        assert (kopia["repository"], kopia["restoreAsOf"], kopia["username"]) == ("volsync-kopia-b2", "2026-11-20T02:00:00Z", app)
    other = named(run, "ReplicationDestination", "default", "bookstack-bootstrap").inputs["spec"]["kopia"]
    assert other["repository"] == "volsync-kopia-nas" and "restoreAsOf" not in other
    assert not [r for r in of_kind(run, "ReplicationDestination") if r.inputs["spec"]["kopia"].get("destinationPVC")]


def test_a_recovery_names_a_namespace_with_apps_and_a_readable_repository():
    with pytest.raises(ConfigError) as error:
        plan_of(repositories=[NAS, B2], apps=[{**RADARR, "repositories": ["nas"]}],
                recoveries=[{"namespace": "media", "repository": "b2"}, {"namespace": "nowhere"}])
    problems = "\n".join(error.value.problems)
    assert "backups:recoveries[0].repository: media/radarr neither backs up to 'b2'" in problems
    assert "backups:recoveries[1].namespace: no app in backups:apps is in namespace 'nowhere'" in problems


# --------------------------------------------------------------------------- listing snapshots


def test_the_listing_command_names_the_apps_identity_in_each_readable_repository(capsys):
    import shlex

    from tools.snapshots import listing_pod, main

    plan = plan_of(repositories=MIRRORED, apps=[{**RADARR, "identity": "radarr-src@media"}])
    (ap,) = plan.apps
    pod = listing_pod(plan, ap, "b2")["spec"]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "volsync-kopia-b2"}}]
    assert pod["containers"][0]["command"][-1].endswith("kopia snapshot list --all radarr-src@media:/data")
    assert main(["--stack", "dev", "--app", "media/radarr"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "# media/radarr: radarr@media in nas (newest last = previous: 0)"
    assert shlex.split(printed[1])[:6] == ["kubectl", "-n", "media", "run", "kopia-ls-radarr", "--rm"]
    assert main(["--stack", "dev", "--app", "media/nothing"]) == 2
