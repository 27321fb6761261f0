"""Hostile and odd config (issue 15), one test per class the mutation fuzzer found.

Each drives the offline preview as a user would, or the plan, and asserts on what came out:
exit 2 with the key path for bad config, never a traceback, never a secret, never exit 3.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from components.admission import cel_string
from components.config import ConfigError, stack_config_of
from components.names import JobKind
from components.plan import plan_stack
from tools.offline import stack_file

from .conftest import dev_config, run_preview

SECRET = "hunter2-very-secret-password"
KEY = "AKIA-not-a-real-key-0123"
S3 = {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "volsync"},
      "credentials": {"accessKeyId": KEY, "secretAccessKey": SECRET}}
NAS = dev_config()["repositories"][0]


def stack(tmp_path: Path, **changes: Any) -> Path:
    """The dev stack with `backups:<key>` replaced (None removes it), written as YAML."""
    document = yaml.safe_load(stack_file("dev").read_text())
    for key, value in changes.items():
        if value is None:
            document["config"].pop(f"backups:{key}", None)
        else:
            document["config"][f"backups:{key}"] = value
    path = tmp_path / "Pulumi.lab.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def preview(path: Path, *args: str):
    result = run_preview("--config-file", str(path), *args)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode in (0, 1, 2), result.stderr  # 3 is a program bug, never a config
    return result


def refused(path: Path, *expected: str, args: tuple[str, ...] = ()) -> str:
    result = preview(path, *args)
    assert result.returncode == 2, result.stdout
    for text in expected:
        assert text in result.stderr, result.stderr
    return result.stderr


def problems(**changes: Any) -> list[str]:
    config = copy.deepcopy(dev_config())
    config.update(changes)
    values = {f"backups:{k}": json.dumps(v) if not isinstance(v, str) else v for k, v in config.items()}
    with pytest.raises(ConfigError) as caught:
        plan_stack(stack_config_of(values))
    return caught.value.problems


# -- secrets are never echoed --------------------------------------------------------------------


def test_a_list_key_written_as_a_mapping_names_the_key_and_echoes_no_secret(tmp_path):
    err = refused(stack(tmp_path, repositories={**S3, "password": SECRET}), "backups:repositories: a mapping is not a list")
    assert SECRET not in err and KEY not in err


def test_a_database_list_as_a_mapping_echoes_no_passphrase(tmp_path):
    db = {"name": "pg", "namespace": "db", "repositories": ["b2"], "encryption": {"passphrase": SECRET}}
    err = refused(stack(tmp_path, repositories=[NAS, S3], databases=db), "backups:databases: a mapping is not a list")
    assert SECRET not in err


def test_secret_fields_of_the_wrong_type_name_the_key_and_not_the_value(tmp_path):
    err = refused(stack(tmp_path, password={"externalSecret": SECRET}), "backups:password.externalSecret:")
    assert SECRET not in err and "lax-or-strict" not in err and "(external)" not in err


def test_a_yaml_syntax_error_names_the_line_and_quotes_nothing(tmp_path):
    path = stack(tmp_path)
    path.write_text(path.read_text().replace("backups:password: dev-only", "\tbackups:password: dev-only"))
    err = refused(path, "not valid YAML at line")
    assert "dev-only-shared-kopia-password" not in err


# -- the plan is keyed by kinds, not by marker strings ----------------------------------------------


def test_a_repository_named_restore_drill_is_an_ordinary_hourly_repository():
    repo = {**NAS, "name": "restore-drill"}
    values = {f"backups:{k}": json.dumps(v) if not isinstance(v, str) else v
              for k, v in {**dev_config(), "repositories": [repo], "schedulePins": {}}.items()}
    plan = plan_stack(stack_config_of(values))
    backups = {k: c for k, c in plan.schedules.items() if k.kind is JobKind.BACKUP}
    assert backups and all(c.endswith(" * * * *") for c in backups.values())
    assert [w.repository for w in plan.alerts.repositories] == ["restore-drill"]


def test_an_app_named_kopia_maintenance_keeps_its_backup_schedule():
    apps = [{"name": "kopia-maintenance", "namespace": "volsync-system"}]
    values = {f"backups:{k}": json.dumps(v) if not isinstance(v, str) else v
              for k, v in {**dev_config(), "apps": apps, "schedulePins": {}}.items()}
    plan = plan_stack(stack_config_of(values))
    (app,) = plan.apps
    assert app.sources[0].schedule.endswith(" * * * *")  # hourly, as its repository says
    assert plan.alerts.repositories[0].sources == ("kopia-maintenance-nas",)


# -- collisions are config errors naming both keys ------------------------------------------------


@pytest.mark.parametrize("changes, expected", [
    ({"repositories": [NAS, {**NAS, "name": "c", "primary": False, "nfs": {"server": "nas.home", "path": "/c"}},
                       {**NAS, "name": "b-c", "primary": False, "nfs": {"server": "nas.home", "path": "/b-c"}}],
      "apps": [{"name": "a", "namespace": "media", "repositories": ["b-c"]},
               {"name": "a-b", "namespace": "media", "repositories": ["c"]}]},
     "backups:apps[1].name: makes the ReplicationSource name 'a-b-c', which backups:apps[0].name also makes"),
    ({"apps": [{"name": "b-c", "namespace": "a"}, {"name": "c", "namespace": "a-b"}]},
     "backups:apps[1].name: makes the Pulumi BackupEnabledApp resource name 'a-b-c', which backups:apps[0].name"),
    ({"apps": [{"name": "one", "namespace": "media", "claimName": "data"},
               {"name": "two", "namespace": "media", "claimName": "data"}]},
     "backups:apps[1].claimName: makes the PersistentVolumeClaim name 'data', which backups:apps[0].claimName"),
    ({"repositories": [NAS, S3, {**S3, "name": "encryption", "s3": {**S3["s3"], "endpoint": "s3.eu-central-003.backblazeb2.com"}}],
      "databases": [{"name": "pg", "namespace": "db", "bucket": "pg-archive", "repositories": ["b2", "encryption"],
                     "encryption": {"passphrase": SECRET}}]},
     "makes the Secret name 'pgbackrest-pg-encryption'"),
    ({"repositories": [NAS, S3], "databases": [{"name": "pg", "namespace": "db", "repositories": ["b2", "b2"]}]},
     "backups:databases[0].repositories[1]: duplicate repository 'b2'"),
    ({"repositories": [NAS, S3], "databases": [{"name": "postgres", "namespace": "one", "repositories": ["b2"]},
                                               {"name": "postgres", "namespace": "two", "repositories": ["b2"]}]},
     "backups:databases[1].name: is the place s3://s3.us-east-005.backblazeb2.com/postgres that "
     "backups:databases[0] (one/postgres, in repository 'b2') already uses"),
    ({"repositories": [{**NAS, "mirrorTo": "b2"}, {**NAS, "name": "nas2", "primary": False,
                                                   "nfs": {"server": "nas2.home", "path": "/k"}, "mirrorTo": "b2"}, S3]},
     "backups:repositories[1].mirrorTo: backups:repositories[0].mirrorTo already mirrors into 'b2'"),
    ({"repositories": [NAS, {**NAS, "name": "a", "primary": False, "backend": "cephfs", "nfs": None,
                             "cephfs": {"volumeHandle": "h", "clusterID": "c", "fsName": "f"}},
                       {**NAS, "name": "a-b", "primary": False, "backend": "cephfs", "nfs": None,
                        "cephfs": {"volumeHandle": "h2", "clusterID": "c", "fsName": "f"}}],
      "apps": [{"name": "x", "namespace": "b-c", "repositories": ["a"]}, {"name": "y", "namespace": "c", "repositories": ["a-b"]}]},
     "backups:repositories[2].name: makes the Pulumi Secret resource name 'a-b-c', which backups:repositories[1].name also makes"),
])
def test_generated_names_that_collide_are_config_errors_naming_both_keys(changes, expected):
    changes = {k: ([{kk: vv for kk, vv in item.items() if vv is not None} for item in v] if isinstance(v, list) else v)
               for k, v in changes.items()}
    found = problems(**changes)
    assert any(expected in p for p in found), found


# -- limits ------------------------------------------------------------------------------------


def test_a_long_app_name_is_refused_for_its_destinations_too():
    found = problems(apps=[{"name": "a" * 45, "namespace": "media"}])
    assert any(f"'{'a' * 45}-bootstrap' (55 characters), longer than its limit of 51" in p for p in found), found


def test_a_long_repository_name_is_refused_for_its_service_and_cronjob():
    long = "r" * 58
    found = problems(repositories=[{**NAS, "name": long, "ui": {"enabled": True, "password": SECRET}, "mirrorTo": "b2"}, S3],
                     apps=[{"name": "x", "namespace": "media", "repositories": [long]}])
    assert any(f"Service name 'kopia-ui-{long}' (67 characters)" in p for p in found), found
    assert any("CronJob name 'kopia-mirror-" in p and "limit of 52" in p for p in found), found


# -- schedules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule, expected", [
    ("H/0 * * * *", "the step of 'H/0' must be 1 to 60"),
    ("0 0 31 2 *", "never runs"),
    ("0 H(0-100) * * *", "not 'H(0-100)' in the hour field"),
    ("0 H(20-30) * * *", "H(20-30) must lie within 0-23"),
    ("0 0 L * *", "'L' in the day-of-month field"),
    ("0 0 * * MON", "'MON' in the day-of-week field"),
    ("0 0 * * 1#1", "'1#1' in the day-of-week field"),
    ("0 0 3 * * *", "got 6 fields"),
    ("0  0 * * *", "is not a schedule"),
])
def test_schedules_the_controllers_would_refuse_or_never_run_are_config_errors(tmp_path, schedule, expected):
    refused(stack(tmp_path, apps=[{"name": "radarr", "namespace": "media", "schedule": schedule}]),
            "backups:apps[0].schedule:", expected)


def test_a_database_schedule_with_names_is_refused(tmp_path):
    db = {"name": "pg", "namespace": "db", "repositories": ["b2"], "schedule": {"full": ["0 0 3 * * SUN"]}}
    refused(stack(tmp_path, repositories=[NAS, S3], databases=[db]), "backups:databases[0].schedule.full[0]:")


# -- anchors, escaping, values the cluster refuses ------------------------------------------------


def test_a_trailing_newline_does_not_pass_a_pattern(tmp_path):
    refused(stack(tmp_path, apps=[{"name": "radarr\n", "namespace": "media"}]), "backups:apps[0].name: 'radarr\\n' is not a DNS-1123 label")


def test_text_pasted_into_cel_is_validated_and_escaped(tmp_path):
    refused(stack(tmp_path, admission={"jitterImage": 'busybox", command: ["rm"]'}), "backups:admission.jitterImage:")
    refused(stack(tmp_path, guardrails={"bannedStorageClasses": ['x"]) || true || (["']}), "backups:guardrails.bannedStorageClasses[0]:")
    hostile = 'a"b\\c\n\u00e9\U0001f600'
    assert celpy.Environment().program(celpy.Environment().compile(cel_string(hostile))).evaluate({}) == hostile


@pytest.mark.parametrize("changes, expected", [
    ({"repositories": [{**NAS, "retain": {"hourly": 2**31}}]}, "backups:repositories[0].retain.hourly: 2147483648 is above the maximum"),
    ({"apps": [{"name": "radarr", "namespace": "media", "runAsUser": 9007199254740993}]}, "backups:apps[0].runAsUser: 9007199254740993 is above"),
    ({"password": ""}, "backups:password: is empty"),
    ({"repositories": [NAS, {**S3, "credentials": {"accessKeyId": "", "secretAccessKey": SECRET}}]},
     "backups:repositories[1].credentials.accessKeyId: is empty"),
    ({"repositories": [{**NAS, "nfs": {"server": "", "path": "/k"}}]}, "backups:repositories[0].nfs.server: '' is not a host name"),
    ({"defaults": {"storageClass": "with space"}}, "backups:defaults.storageClass: 'with space' is not a DNS-1123 subdomain"),
    ({"alerts": {"labels": {"bad key!": "x"}}}, "'bad key!' is not a label key"),
    ({"apps": [{"name": "radarr", "namespace": "media", "restore": {"restoreAsOf": "2026-02-30T25:61:61Z"}}]},
     "backups:apps[0].restore.restoreAsOf: '2026-02-30T25:61:61Z' is not an RFC 3339 time"),
])
def test_values_the_cluster_would_refuse_are_config_errors(tmp_path, changes, expected):
    err = refused(stack(tmp_path, **changes), expected)
    assert SECRET not in err


def test_an_unquoted_time_stays_text_and_is_emitted_in_utc(tmp_path):
    path = stack(tmp_path)
    document = yaml.safe_load(path.read_text())
    document["config"]["backups:apps"][0]["restore"] = {"restoreAsOf": "PLACEHOLDER"}
    text = yaml.safe_dump(document).replace("PLACEHOLDER", "2026-01-14T13:00:00+01:00").replace("'2026", "2026").replace("00:00'", "00:00")
    path.write_text(text)
    assert "restoreAsOf: 2026-01-14T13:00:00+01:00\n" in text  # unquoted: YAML 1.1 would make it a datetime
    render = path.parent / "render"
    assert preview(path, "--render-dir", str(render)).returncode == 0
    restore = yaml.safe_load((render / "media" / "replicationdestination-radarr-restore.yaml").read_text())
    assert restore["spec"]["kopia"]["restoreAsOf"] == "2026-01-14T12:00:00Z"


# -- the command line and files ---------------------------------------------------------------------


def test_bad_paths_and_files_exit_2_with_a_message(tmp_path):
    assert run_preview("--config-file", str(tmp_path)).returncode == 2
    assert run_preview("--config-file", "").returncode == 2
    binary = tmp_path / "Pulumi.bin.yaml"
    binary.write_bytes(b"config:\n  backups:password: \xff\xfe\n")
    refused(binary, "not UTF-8")
    listing = tmp_path / "Pulumi.list.yaml"
    listing.write_text("- a\n- b\n")
    refused(listing, "not a stack file")
    numbers = tmp_path / "Pulumi.num.yaml"
    numbers.write_text("config: {1: x}\n")
    refused(numbers, "config key 1 is not `namespace:key`")
    duplicate = tmp_path / "Pulumi.dup.yaml"
    duplicate.write_text("config:\n  backups:password: a\n  backups:password: b\n")
    refused(duplicate, "duplicate key 'backups:password'")


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    bomb = tmp_path / "Pulumi.bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nconfig: {backups:apps: *i}\n")
    started = time.perf_counter()
    refused(bomb, "expands to more than")
    assert time.perf_counter() - started < 5


def test_output_paths_are_checked_before_anything_runs(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    result = run_preview("--config-file", str(stack_file("dev")), "--render-dir", str(afile))
    assert result.returncode == 2 and "is a file" in result.stderr and "passed" not in result.stdout
    result = run_preview("--config-file", str(stack_file("dev")), "--report", str(tmp_path / "missing" / "r.json"))
    assert result.returncode == 2 and "does not exist" in result.stderr and "passed" not in result.stdout


def test_a_policy_config_of_the_wrong_shape_is_refused(tmp_path):
    config = tmp_path / "pack.json"
    config.write_text(json.dumps({"no-banned-storage-class-for-backups": {"bannedStorageClasses": "ceph-filesystem"}}))
    result = run_preview("--policy-config", str(config))
    assert result.returncode == 2 and "bannedStorageClasses: 'ceph-filesystem' is not of type 'array'" in result.stderr


# -- policy gaps ----------------------------------------------------------------------------------


@pytest.mark.parametrize("second", ["/mnt/ssdtank/kopia/", "//mnt/ssdtank//kopia", "NAS.home", "nas.home.",
                                    "/mnt/ssdtank/kopia/apps"])
@pytest.mark.parametrize("password", ["another-password", None])
def test_two_spellings_of_one_target_are_one_place_with_one_owner(tmp_path, second, password):
    """Compared as the pack compares them (one function): with its own password the pack would
    have caught it, with the shared one nothing did, and two maintenances ran on one repository;
    and two apps could write one identity there. A path inside the other is the same danger."""
    other = {**NAS, "name": "nas2", "primary": False, **({"password": password} if password else {})}
    if second.startswith("/"):
        other["nfs"] = {"server": "nas.home", "path": second}
    else:
        other["nfs"] = {**NAS["nfs"], "server": second}
    apps = [{"name": "radarr", "namespace": "media", "repositories": ["nas"]},
            {"name": "radarr", "namespace": "media-two", "identity": "radarr@media", "repositories": ["nas2"]}]
    err = refused(stack(tmp_path, repositories=[NAS, other], apps=apps),
                  "backups:repositories[1].nfs: ", "nfs://nas.home/mnt/ssdtank/kopia that backups:repositories[0] (nas)")
    assert "another-password" not in err
