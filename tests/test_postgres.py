"""pgBackRest backups of the seed's two CloudNative-PG clusters to B2 and R2."""

from __future__ import annotations

import pytest

from components.stanza_lock import StanzaLockProvider
from tools.offline import load_stack_file, run_program

from .conftest import PROJECT_DIR, named, of_kind, run_config, with_changes


@pytest.fixture(scope="module")
def seed():
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    return run_program(config, secret_keys)


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
    assert backups["postgres18-cluster-b2-full"]["schedule"] == "0 0 3 * * 0"
    assert backups["postgres18-cluster-b2-diff"]["schedule"] == "0 0 3 * * 1-6"
    assert backups["postgres18-cluster-r2-diff"]["schedule"] == "0 0 4 * * 1-6"
    spec = backups["postgres18-cluster-r2-full"]
    assert (spec["method"], spec["target"], spec["cluster"]) == ("plugin", "primary", {"name": "postgres18-cluster"})
    assert spec["pluginConfiguration"] == {"name": "pgbackrest.dalibo.com", "parameters": {"selectedRepository": "2", "backupType": "full"}}


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
