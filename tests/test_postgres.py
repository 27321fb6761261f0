"""pgBackRest backups of the seed's two CloudNative-PG clusters to B2 and R2."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError
from components.stanza_lock import StanzaLockProvider
from tests.e2e.pgbackrest import stanza_env
from tools.offline import load_stack_file, revealed

from .conftest import PROJECT_DIR, named, of_kind, program_run, run_config, with_changes


@pytest.fixture(scope="module")
def seed():
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    return program_run(config, secret_keys)


def test_one_stanza_per_cluster_with_b2_and_r2(seed):
    stanzas = {r.inputs["metadata"]["name"]: r.inputs["spec"]["stanzaConfiguration"] for r in of_kind(seed, "Stanza")}
    assert set(stanzas) == {"postgres18-cluster", "postgres18-immich"}
    stanza = stanzas["postgres18-cluster"]
    assert stanza["name"] == "postgres18-cluster" and stanza["archive"] == {"async": True}
    b2, r2 = stanza["s3Repositories"]
    assert (b2["endpoint"], b2["region"], b2["bucket"]) == ("s3.us-east-005.backblazeb2.com", "us-east-005", "postgres-cluster")
    assert (r2["region"], r2["uriStyle"], r2["verifyTLS"]) == ("auto", "host", True)
    # 14 full, 30 diff; "7 days of WAL" = WAL of the last 7 full-or-diff backups at one a day.
    assert b2["retentionPolicy"] == {"full": 14, "fullType": "count", "diff": 30, "archive": 7, "archiveType": "diff", "history": 30}
    assert b2["secretRef"]["accessKeyId"] == {"name": "pgbackrest-postgres18-cluster-b2", "key": "ACCESS_KEY_ID"}
    assert "cipherConfig" not in b2


def test_scheduled_backups_per_repository_b2_at_three_r2_at_four(seed):
    backups = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in of_kind(seed, "ScheduledBackup")
               if r.inputs["metadata"]["name"].startswith("postgres18-cluster")}
    assert set(backups) == {f"postgres18-cluster-{repo}-{kind}" for repo in ("b2", "r2") for kind in ("full", "diff")}
    for repo, hour in (("b2", "3"), ("r2", "4")):
        full, diff = (backups[f"postgres18-cluster-{repo}-{kind}"]["schedule"].split() for kind in ("full", "diff"))
        assert (full[0], full[2], full[5]) == ("0", hour, "0") and (diff[0], diff[2], diff[5]) == ("0", hour, "1-6")
        assert full[1] == diff[1] and full[3:5] == diff[3:5] == ["*", "*"]  # one minute a day, fulls on Sunday
    spec = backups["postgres18-cluster-r2-full"]
    assert (spec["method"], spec["target"], spec["cluster"]) == ("plugin", "primary", {"name": "postgres18-cluster"})
    assert spec["pluginConfiguration"] == {"name": "pgbackrest.dalibo.com", "parameters": {"selectedRepository": "2", "backupType": "full"}}


def schedules(run) -> dict[str, str]:
    return {r.inputs["metadata"]["name"]: r.inputs["spec"]["schedule"] for r in of_kind(run, "ScheduledBackup")}


def test_clusters_sharing_a_store_start_at_minutes_of_their_own_that_adding_one_does_not_move(seed):
    """Seed 002's two clusters both back up to B2 at 03:00: they now start apart in that hour,
    and a third cluster takes a minute without moving theirs (nothing to pin)."""
    before = schedules(seed)
    for repo in ("b2", "r2"):
        minutes = {before[f"{db}-{repo}-full"].split()[1] for db in ("postgres18-cluster", "postgres18-immich")}
        assert len(minutes) == 2, before
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    databases = json.loads(config["backups:databases"])
    third = {"name": "postgres18-paperless", "namespace": "database", "repositories": ["b2", "r2"], "bucket": "paperless"}
    after = schedules(program_run({**config, "backups:databases": json.dumps([third, *databases])}, secret_keys))
    assert {k: v for k, v in after.items() if "paperless" not in k} == before


def test_history_days_reach_pgbackrest_through_the_variable_the_plugin_passes_on(seed):
    """The plugin drops `retentionPolicy.history` (its tag is `ENV:`, not `env:`): through the
    plugin's own mapping (tests/e2e/pgbackrest.py) the seed's 30 days reach pgBackRest only as
    `customEnvVar`, for every repository of every Stanza, and no field is left unmapped."""
    for stanza in of_kind(seed, "Stanza"):
        env = stanza_env(revealed(stanza.inputs), lambda namespace, name, key: "value")
        count = len(stanza.inputs["spec"]["stanzaConfiguration"]["s3Repositories"])
        assert {k: v for k, v in env.items() if k.endswith("_RETENTION_HISTORY")} == {
            f"PGBACKREST_REPO{n}_RETENTION_HISTORY": "30" for n in range(1, count + 1)}
        assert env["PGBACKREST_REPO2_RETENTION_ARCHIVE"] == "7" and env["PGBACKREST_ARCHIVE_ASYNC"] == "y"


def immich(**recovery) -> dict:
    """Seed 002's managed cluster's Cluster, Stanzas and every other object, with `recovery`."""
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    databases = json.loads(config["backups:databases"])
    for db in databases:
        if db["name"] == "postgres18-immich":
            db["recovery"] = recovery
    run = program_run({**config, "backups:databases": json.dumps(databases)}, secret_keys)
    return {(r.inputs["kind"], r.inputs["metadata"]["name"]): r.inputs for r in run.registrations if "kind" in r.inputs}


def test_a_recovery_renders_the_clusters_bootstrap_from_its_stanza_latest_or_as_of_a_time():
    latest = immich()[("Cluster", "postgres18-immich")]["spec"]
    (external,) = latest["externalClusters"]
    assert latest["bootstrap"] == {"recovery": {"source": external["name"]}}
    assert external["plugin"] == {"name": "pgbackrest.dalibo.com", "parameters": {"stanzaRef": "postgres18-immich"}}
    # pgBackRest refuses RFC 3339 targets: PostgreSQL's spelling, in UTC.
    as_of = immich(restoreAsOf="2026-01-14T13:00:00+01:00")[("Cluster", "postgres18-immich")]["spec"]["bootstrap"]
    assert as_of["recovery"]["recoveryTarget"] == {"targetTime": "2026-01-14 12:00:00+00"}


def test_a_recovery_from_one_repository_reads_a_stanza_holding_only_that_one():
    objects = immich(repository="r2")
    spec = objects[("Cluster", "postgres18-immich")]["spec"]
    ref = spec["externalClusters"][0]["plugin"]["parameters"]["stanzaRef"]
    assert ref != "postgres18-immich"
    own, recovery = (objects[("Stanza", n)]["spec"]["stanzaConfiguration"] for n in ("postgres18-immich", ref))
    assert recovery["name"] == own["name"]  # the same pgBackRest stanza
    assert recovery["s3Repositories"] == [own["s3Repositories"][1]]  # R2 alone, as repo1
    assert recovery["customEnvVar"] == {"PGBACKREST_REPO1_RETENTION_HISTORY": "30"}


def test_a_recovery_from_another_database_reads_its_stanza():
    spec = immich(**{"from": "postgres18-cluster"})[("Cluster", "postgres18-immich")]["spec"]
    assert spec["externalClusters"][0]["plugin"]["parameters"] == {"stanzaRef": "postgres18-cluster"}
    assert spec["plugins"][0]["parameters"]["stanzaRef"] == "postgres18-immich"  # it archives to its own


def test_the_backup_check_allows_each_repository_its_schedules_longest_gap_and_six_hours(seed):
    """Weekly fulls with daily differentials: a full may be 7 days 6 hours old, any backup 1 day
    6 hours. A monthly full (the 1st, 6-field) is judged over months, not the first two weeks
    (which measured 14 days)."""
    from datetime import timedelta

    from components.config import stack_config_of
    from components.plan import plan_stack

    config, _, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    plan = plan_stack(stack_config_of(config))
    limits = {(dp.database.name, limit.name): (limit.full, limit.any) for dp in plan.databases for limit in dp.check.limits}
    assert limits[("postgres18-cluster", "r2")] == (timedelta(days=7, hours=6), timedelta(days=1, hours=6))
    databases = json.loads(config["backups:databases"])
    databases[0]["schedule"] = {"full": ["0 0 3 1 * *", "0 0 4 1 * *"]}
    monthly = plan_stack(stack_config_of({**config, "backups:databases": json.dumps(databases)}))
    full, any_ = monthly.databases[0].check.limits[0].full, monthly.databases[0].check.limits[0].any
    # The differentials still run Monday to Saturday: with the full monthly, Sundays have none.
    assert full == timedelta(days=31, hours=6) and any_ == timedelta(days=2, hours=6)


def test_wal_spool_has_a_storage_class(seed):
    config = named(seed, "PluginConfig", "database", "postgres18-cluster-pgbackrest").inputs["spec"]
    assert config["storageConfig"]["storageClass"] == "ceph-block"


def test_buckets_and_credentials_per_database_and_repository(seed):
    buckets = [r for r in seed.registrations if r.type == "aws:s3/bucket:Bucket" and "postgres" in r.name]
    assert sorted(b.inputs["bucket"] for b in buckets) == ["postgres-cluster"] * 2 + ["postgres-immich"] * 2
    assert all(b.protect and b.retain_on_delete for b in buckets)
    credentials = named(seed, "ExternalSecret", "database", "pgbackrest-postgres18-cluster-b2").inputs["spec"]
    assert {d["secretKey"]: d["remoteRef"] for d in credentials["data"]} == {
        "ACCESS_KEY_ID": {"key": "backblaze", "property": "AWS_ACCESS_KEY_ID"},
        "ACCESS_SECRET_KEY": {"key": "backblaze", "property": "AWS_SECRET_ACCESS_KEY"},
    }


def test_the_cluster_plugin_entry_is_an_output_and_manage_cluster_wires_it(seed):
    plugin = {"name": "pgbackrest.dalibo.com", "enabled": True, "isWALArchiver": True,
              "parameters": {"stanzaRef": "postgres18-cluster", "pluginConfigRef": "postgres18-cluster-pgbackrest"}}
    assert seed.outputs["databasePlugins"]["database/postgres18-cluster"] == [plugin]
    clusters = of_kind(seed, "Cluster")
    assert [c.inputs["metadata"]["name"] for c in clusters] == ["postgres18-immich"]  # manageCluster: true only
    assert clusters[0].inputs["spec"]["plugins"][0]["parameters"]["stanzaRef"] == "postgres18-immich"
    assert clusters[0].retain_on_delete
    assert "bootstrap" not in clusters[0].inputs["spec"]  # a first deploy starts empty


def test_encryption_adds_cipher_config_from_a_secret():
    b2 = {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "volsync"},
          "credentials": {"accessKeyId": "id", "secretAccessKey": "key"}}
    config = with_changes(repositories=[{"name": "nas", "backend": "nfs", "nfs": {"server": "n", "path": "/k"}}, b2],
                          databases=[{"name": "pg", "namespace": "database", "bucket": "pg-archive", "repositories": ["b2"],
                                      "encryption": {"passphrase": "correct horse"}}])
    run = run_config(config)
    (stanza,) = of_kind(run, "Stanza")
    repo = stanza.inputs["spec"]["stanzaConfiguration"]["s3Repositories"][0]
    assert repo["cipherConfig"] == {"type": "aes-256-cbc", "encryptionPass": {"name": "pgbackrest-pg-encryption", "key": "ENCRYPTION_PASS"}}
    secret = named(run, "Secret", "database", "pgbackrest-pg-encryption")
    assert type(secret.inputs["stringData"]).__name__ == "Secret"


def test_renaming_a_stanza_is_stopped_unless_allowed():
    provider = StanzaLockProvider()
    olds = {"database": "pg", "namespace": "database", "stanza": "main", "allowRename": False, "key": "backups:databases[0]"}
    (failure,) = provider.check(olds, {**olds, "stanza": "pg-new"}).failures
    assert failure.property == "stanza" and "orphans every backup" in failure.reason
    assert failure.reason.startswith("backups:databases[0].stanza (database/pg)")
    assert provider.check(olds, {**olds, "stanza": "pg-new", "allowRename": True}).failures == []
    assert provider.check({}, olds).failures == []  # the first up: nothing to compare with
    assert provider.diff("database/pg", olds, {**olds, "stanza": "pg-new", "allowRename": True}).changes
    assert not provider.diff("database/pg", olds, dict(olds)).changes


def test_every_database_registers_its_stanza_lock(seed):
    locks = [r for r in seed.registrations if r.type == "pulumi-python:dynamic:Resource" and "stanza" in r.inputs]
    assert sorted(lock.inputs["stanza"] for lock in locks) == ["postgres18-cluster", "postgres18-immich"]


def test_the_backup_checks_image_is_a_default_key():
    """The check runs pgBackRest against the repositories the plugin writes: its image is
    `defaults.pgbackrestImage`, the plugin's sidecar unless set (a mirror of it, a newer one)."""
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")

    def images(values: dict[str, str]) -> set[str]:
        run = program_run(values, secret_keys)
        checks = [r.inputs for r in run.registrations if r.type.endswith(":CronJob")
                  and r.inputs["metadata"]["name"].startswith("pgbackrest-check-")]
        assert len(checks) == 2  # one per database
        return {c["image"] for check in checks for c in check["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]}

    assert images(config) == {"docker.io/dalibo/cnpg-pgbackrest-sidecar:0.0.3"}
    defaults = {**json.loads(config.get("backups:defaults", "{}")), "pgbackrestImage": "registry.home/pgbackrest-sidecar:0.0.4"}
    assert images({**config, "backups:defaults": json.dumps(defaults)}) == {"registry.home/pgbackrest-sidecar:0.0.4"}


def _with_database_names(*names: str, manage: bool = False) -> dict:
    """The seed's stack with its databases renamed (the first two; a third copies the second)."""
    config, _, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    databases = json.loads(config["backups:databases"])
    databases = [{**databases[min(i, 1)], "name": name, "manageCluster": manage,
                  **({"bucket": f"pg-{i}"} if i > 1 else {})} for i, name in enumerate(names)]
    for db in databases:
        db.pop("recovery", None)
    return {**config, "backups:databases": json.dumps(databases)}


def test_a_database_name_cloudnative_pg_accepts_gets_a_backup_check():
    """CloudNative-PG takes Cluster names up to 50 characters; `pgbackrest-check-<db>` holds 35 of
    them within a CronJob's 52. Longer ones keep the prefix the alert selects by, and a digest of
    the whole name keeps two that start alike apart."""
    short, long_a, long_b = "pg", "a" * 30 + "-media-postgres-eu1", "a" * 30 + "-media-postgres-eu2"
    assert (len(long_a), len(long_b)) == (49, 49)
    _, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    run = program_run(_with_database_names(short, long_a, long_b), secret_keys)
    checks = {r.inputs["metadata"]["name"] for r in of_kind(run, "CronJob")
              if r.inputs["metadata"]["name"].startswith("pgbackrest-check-")}
    assert "pgbackrest-check-pg" in checks
    assert len(checks) == 3 and all(len(n) <= 52 for n in checks), checks
    assert {n for n in checks if n != "pgbackrest-check-pg"} == {n for n in checks if n.startswith("pgbackrest-check-aaaa")}


def test_a_managed_cluster_name_longer_than_cloudnative_pg_allows_is_refused():
    _, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    with pytest.raises(ConfigError) as error:
        program_run(_with_database_names("pg", "b" * 51, manage=True), secret_keys)
    assert "backups:databases[1]" in str(error.value) and "limit of 50" in str(error.value), error.value
