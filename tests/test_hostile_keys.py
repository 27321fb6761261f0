"""Hostile input, second round (issue 29): the adoption and day-2 keys, one test per class the
mutation fuzzer found. Each failed before its fix; each asserts on the config check's problems
(key path and message), on the warnings, or on what the program rendered."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components.config import ConfigError, stack_config_of
from components.history import ledger_of, refusals
from components.plan import plan_stack

from .conftest import dev_config, named, run_config, with_changes

NAS = dev_config()["repositories"][0]
KEYS = {"accessKeyId": "AKIA-not-a-real-key-0123", "secretAccessKey": "hunter2-very-secret-key"}
B2 = {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "volsync"},
      "credentials": KEYS}


def _values(config: dict[str, Any]) -> dict[str, Any]:
    return {f"backups:{k}": json.dumps(v) if not isinstance(v, str) else v for k, v in config.items()}


def problems(**changes: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        plan_stack(stack_config_of(_values(with_changes(**changes))))
    return caught.value.problems


def warnings(**changes: Any) -> tuple[str, ...]:
    return stack_config_of(_values(with_changes(**changes))).warnings


def only(found: list[str], *expected: str) -> str:
    (problem,) = found
    for text in expected:
        assert text in problem, problem
    return problem


# -- one physical place, one owner ------------------------------------------------------------------


def test_a_database_in_the_bucket_a_kopia_mirror_syncs_with_delete_is_refused():
    nas = {**NAS, "mirrorTo": "b2"}
    database = {"name": "postgres", "namespace": "db", "bucket": "volsync", "repositories": ["b2"]}
    only(problems(repositories=[nas, B2], databases=[database]),
         "backups:databases[0].bucket: is the place s3://s3.us-east-005.backblazeb2.com/volsync that "
         "backups:repositories[1] (b2) already uses", "sync-to --delete")


def test_a_database_whose_default_bucket_is_a_repository_bucket_is_refused_at_its_name():
    database = {"name": "volsync", "namespace": "db", "repositories": ["b2"]}
    only(problems(repositories=[NAS, B2], databases=[database]), "backups:databases[0].name: is the place")


@pytest.mark.parametrize("endpoint", ["S3.us-east-005.backblazeb2.com", "s3.us-east-005.backblazeb2.com:443",
                                      "https://s3.us-east-005.backblazeb2.com/"])
def test_two_repositories_in_one_bucket_spelled_two_ways_are_refused(endpoint):
    twin = {**B2, "name": "b2-too", "s3": {**B2["s3"], "endpoint": endpoint}}
    problem = only(problems(repositories=[NAS, B2, twin]), "backups:repositories[2].s3: is the place "
                   "s3://s3.us-east-005.backblazeb2.com/volsync that backups:repositories[1] (b2)")
    assert KEYS["secretAccessKey"] not in problem


def test_two_databases_in_one_bucket_are_two_owners_of_it():
    databases = [{"name": "one", "namespace": "db", "bucket": "pg-archive", "repositories": ["b2"]},
                 {"name": "two", "namespace": "db", "bucket": "pg-archive", "repositories": ["b2"]}]
    only(problems(repositories=[NAS, B2], databases=databases), "backups:databases[1].bucket: is the place")


def test_distinct_places_pass():
    databases = [{"name": "one", "namespace": "db", "bucket": "pg-one", "repositories": ["b2"]}]
    other = {**NAS, "name": "nas2", "primary": False, "nfs": {"server": "nas.home", "path": "/mnt/ssdtank/kopia2"}}
    plan_stack(stack_config_of(_values(with_changes(repositories=[NAS, other, B2], databases=databases))))


def test_the_history_ledger_compares_places_so_a_respelt_export_still_guards_the_identity():
    """An identity change together with a new spelling of the same export orphaned the history
    unrefused: the ledger held raw spellings, and the two did not intersect."""
    before = plan_stack(stack_config_of(_values(dev_config())))
    respelt = {**NAS, "nfs": {"server": "NAS.home", "path": "/mnt/ssdtank/kopia/"}}
    apps = copy.deepcopy(dev_config()["apps"])
    apps[0]["identity"] = "radarr-nas@media"
    after = plan_stack(stack_config_of(_values(with_changes(repositories=[respelt], apps=apps))))
    (problem,) = refusals(ledger_of(before), ledger_of(after))
    assert problem.startswith("backups:apps[0] (radarr)"), problem


# -- dates at the edges -----------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
@pytest.mark.parametrize("key", ["restore", "recoveries"])
def test_a_time_outside_the_calendar_in_utc_is_refused_with_its_key(moment, key):
    if key == "restore":
        apps = copy.deepcopy(dev_config()["apps"])
        apps[0]["restore"] = {"restoreAsOf": moment}
        found, path = problems(apps=apps), "backups:apps[0].restore.restoreAsOf: "
    else:
        found, path = problems(recoveries=[{"namespace": "media", "restoreAsOf": moment}]), "backups:recoveries[0].restoreAsOf: "
    only(found, path, "outside the years 0001-9999 in UTC")


def test_a_year_before_1000_is_written_with_four_digits():
    apps = copy.deepcopy(dev_config()["apps"])
    apps[0]["restore"] = {"restoreAsOf": "0999-06-01T01:00:00+01:00"}
    run = run_config(with_changes(apps=apps))
    restore = named(run, "ReplicationDestination", "media", "radarr-restore")
    assert restore.inputs["spec"]["kopia"]["restoreAsOf"] == "0999-06-01T00:00:00Z"


# -- defaults validated where they are derived -------------------------------------------------------


def test_a_database_default_bucket_is_judged_as_a_bucket():
    database = {"name": "pg", "namespace": "db", "repositories": ["b2"]}
    only(problems(repositories=[NAS, B2], databases=[database]),
         "backups:databases[0].name: is also the default bucket, and 'pg' is not a valid S3 bucket name", "set bucket")


@pytest.mark.parametrize("host", ["Kopia.home.example", "kopia.home.example.", "192.168.1.10", "::1"])
def test_an_ingress_host_the_api_server_refuses_is_refused(host):
    ui = {"enabled": True, "password": "ui-password-1", "ingress": {"host": host, "tlsSecret": "kopia-tls"}}
    found = problems(repositories=[{**NAS, "ui": ui}])
    only(found, "backups:repositories[0].ui.ingress.host: ", "is not an Ingress host")


def test_a_wildcard_ingress_host_is_accepted():
    ui = {"enabled": True, "password": "ui-password-1", "ingress": {"host": "*.home.example", "tlsSecret": "kopia-tls"}}
    plan_stack(stack_config_of(_values(with_changes(repositories=[{**NAS, "ui": ui}]))))


# -- the scrubber scrubs values, not words ---------------------------------------------------------


def test_an_external_secret_property_named_password_leaves_key_paths_readable():
    apps = copy.deepcopy(dev_config()["apps"])
    apps[0]["capacity"] = "ten gigs"
    found = problems(password={"externalSecret": {"store": "vault", "key": "backups", "property": "password"}}, apps=apps)
    assert "backups:apps[0].capacity: 'ten gigs' is not a positive Kubernetes quantity (like 5Gi)" in found, found
    assert not any("[secret]" in p for p in found), found


def test_a_secret_value_is_still_scrubbed_wherever_it_appears():
    apps = copy.deepcopy(dev_config()["apps"])
    apps[0]["capacity"] = "dev-only-shared-kopia-password"  # a user pasted the password into the wrong key
    found = problems(apps=apps)
    assert found == ["backups:apps[0].capacity: '[secret]' is not a positive Kubernetes quantity (like 5Gi)"], found


# -- config that would do nothing -------------------------------------------------------------------


def test_a_recovery_of_a_namespace_whose_apps_all_have_existing_claims_is_refused():
    apps = [{"name": "radarr", "namespace": "media", "existingClaim": "radarr-config"}]
    only(problems(apps=apps, recoveries=[{"namespace": "media", "previous": 1}], schedulePins={}),
         "backups:recoveries[0].namespace: every app in 'media' has an existingClaim", "restore nothing")


def test_a_recovery_that_skips_an_existing_claim_says_so():
    apps = [{"name": "radarr", "namespace": "media", "existingClaim": "radarr-config"},
            {"name": "sonarr", "namespace": "media"}]
    notes = [w for w in warnings(apps=apps, recoveries=[{"namespace": "media", "previous": 1}], schedulePins={})
             if w.startswith("backups:recoveries[0]")]
    assert notes == ["backups:recoveries[0]: does not restore backups:apps[0] (radarr), whose existingClaim no "
                     "bootstrap restore fills; use its restore key"], notes


def test_mirror_and_ui_settings_that_nothing_uses_are_noted():
    nas = {**NAS, "mirror": {"suspend": False}, "ui": {"ingress": {"host": "kopia.home.example", "tlsSecret": "t"}}}
    notes = [w for w in warnings(repositories=[nas]) if w.startswith("backups:repositories[0]")]
    assert notes == ["backups:repositories[0].mirror: does nothing without mirrorTo",
                     "backups:repositories[0].ui: ingress set, but the web UI is off (ui.enabled: false)"], notes


# -- two small inconsistencies -----------------------------------------------------------------------


def test_backup_now_takes_a_counter_as_the_readme_says():
    apps = copy.deepcopy(dev_config()["apps"])
    apps[0]["backupNow"] = 2
    run = run_config(with_changes(apps=apps))
    source = named(run, "ReplicationSource", "media", "radarr-nas-now")
    assert source.inputs["spec"]["trigger"] == {"manual": "2"}


@pytest.mark.parametrize("cron, runs", [
    ("0 0 31 2 0-6", True),    # both day fields restricted: either match, so every day of February
    ("0 0 31 2 */2", True),    # robfig/cron: a stepped star is a plain range, so again either
    ("0 0 31 2 *", False),     # a starred day of week leaves it to the 31st of February: never
    ("0 0 31 2 */1", False),   # */1 is a star
    ("0 0 * 2 1", True),
])
def test_a_cron_never_runs_only_as_robfig_cron_reads_it(cron, runs):
    apps = copy.deepcopy(dev_config()["apps"])
    apps[0]["schedule"] = cron
    if runs:
        plan_stack(stack_config_of(_values(with_changes(apps=apps))))
    else:
        only(problems(apps=apps), "backups:apps[0].schedule: ", "never runs")


# -- after review: the edges of the fixes above ----------------------------------------------------


def test_two_databases_may_share_a_bucket_that_neither_manages_under_their_own_paths():
    b2 = {**B2, "manageBucket": False}
    databases = [{"name": "one", "namespace": "db", "bucket": "pg-archive", "repositories": ["b2"]},
                 {"name": "two", "namespace": "db", "bucket": "pg-archive", "repositories": ["b2"]}]
    plan_stack(stack_config_of(_values(with_changes(repositories=[NAS, b2], databases=databases))))
    same_path = [{**databases[0], "namespace": "other"}, databases[0]]
    only(problems(repositories=[NAS, b2], databases=same_path), "backups:databases[1].bucket: is the place",
         "pgBackRest would write both archives to one path")


def test_a_ledger_written_with_raw_spellings_is_compared_as_places():
    """A ledger in state from before places: the same export, once spelt with a trailing slash."""
    before = ledger_of(plan_stack(stack_config_of(_values(dev_config()))))
    for claim in before["claims"].values():
        claim["locations"] = [f"{t.replace('nas.home', 'NAS.home')}/" for t in claim["locations"]]
    after = ledger_of(plan_stack(stack_config_of(_values(dev_config()))))
    assert refusals(before, after) == []
    apps = copy.deepcopy(dev_config()["apps"])
    apps[0]["identity"] = "radarr-nas@media"
    changed = ledger_of(plan_stack(stack_config_of(_values(with_changes(apps=apps)))))
    (problem,) = refusals(before, changed)
    assert problem.startswith("backups:apps[0] (radarr)"), problem


def test_a_password_pasted_into_an_external_secret_reference_is_not_echoed():
    found = problems(password={"externalSecret": {"store": "Hunter2-Pasted-Password!", "key": "kopia"}})
    assert found and not any("Hunter2" in p for p in found), found
    only(found, "backups:password.externalSecret.store: ")


@pytest.mark.parametrize("host", ["010.1.1.1", "*." + "a" * 62 + "." + "b" * 62 + "." + "c" * 62 + "." + "d" * 63])
def test_ingress_hosts_the_api_server_reads_as_addresses_or_too_long_are_refused(host):
    ui = {"enabled": True, "password": "ui-password-1", "ingress": {"host": host, "tlsSecret": "kopia-tls"}}
    only(problems(repositories=[{**NAS, "ui": ui}]), "backups:repositories[0].ui.ingress.host: ")


# -- credentials inside a value ---------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["https://AKIA9LEAK:Leak3dS3cret@s3.example.com", "AKIA9LEAK:Leak3dS3cret@s3.example.com:3900",
                                      "http://Leak3dS3cret@10.0.0.5:3900"])
def test_an_endpoint_with_credentials_in_it_is_refused_without_quoting_it(endpoint):
    found = problems(repositories=[NAS, {**B2, "s3": {**B2["s3"], "endpoint": endpoint}}])
    problem = only(found, "backups:repositories[1].s3.endpoint: has credentials in it")
    assert "Leak3dS3cret" not in problem and "AKIA9LEAK" not in problem


@pytest.mark.parametrize("change", [
    {"admission": {"jitterImage": "robot:Leak3dS3cret@registry.home/busybox:1.37 x"}},
    {"repositories": [{**NAS, "nfs": {"server": "https://robot:Leak3dS3cret@nas.home", "path": "/k"}}]},
    {"alerts": {"namespace": "ops:Leak3dS3cret@x"}},
    {"repositories": [{**NAS, "nfs": {"server": "https://AKIA9:wJal/Leak3dS3cret@nas.home", "path": "/k"}}]},
    {"admission": {"jitterImage": "robot:wJal/Leak3dS3cret@registry.home/busybox x"}},
])
def test_no_message_quotes_a_value_that_carries_credentials(change):
    (problem,) = problems(**change)
    assert "Leak3dS3cret" not in problem and "(a value with credentials in it, not shown)" in problem, problem


def test_an_identity_and_an_image_digest_are_still_quoted_back():
    (problem,) = problems(apps=[{"name": "radarr", "namespace": "media", "identity": "radarr@Media Server"}])
    assert "'radarr@Media Server'" in problem, problem
    (problem,) = problems(admission={"jitterImage": "busybox:1.37@sha256:0123 x"})
    assert "'busybox:1.37@sha256:0123 x'" in problem, problem
