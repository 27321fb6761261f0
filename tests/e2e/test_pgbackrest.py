"""pgBackRest for real: seed 002's rendered Stanza and ScheduledBackups back up a real PostgreSQL 15
to two TLS object stores standing for B2 and R2, and the rendered recovery restores it, to the
latest state and to a point in time, from either store; expiry keeps what the stanza says.

Every pgBackRest setting comes from the rendered objects through the plugin's mapping
(tests/e2e/pgbackrest.py); only what stands for the cluster (where the stores answer, the CA, the
data directory and the pod's paths) is the test's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.offline import revealed

from . import database as local
from .cluster import container_env
from .conftest import Objects
from .engine import kubernetes_objects
from .pgbackrest import backup_env, recovery_stanza, restore_env, stanza_env
from .promtool import promtool_alerts

SEED = Path(__file__).parents[2] / "examples" / "Pulumi.nfs-b2-r2.yaml"
NAMESPACE, DATABASE = "database", "postgres18-immich"  # seed 002's cluster the program manages


def seed(recovery: dict[str, Any] | None = None) -> Objects:
    """The seed's objects, with `recovery` set on the managed database when given."""
    overrides = {}
    if recovery is not None:
        databases = yaml.safe_load(SEED.read_text())["config"]["backups:databases"]
        for db in databases:
            if db["name"] == DATABASE:
                db["recovery"] = recovery
        overrides["backups:databases"] = json.dumps(databases)
    return {k: revealed(v) for k, v in kubernetes_objects(SEED, "nfs-b2-r2", overrides).items()}


def secrets_of(objects: Objects):  # type: ignore[no-untyped-def]
    """The kubelet's view of a Secret key: the rendered Secret's, or for one External Secrets
    writes, a value standing for the store's item (the key must be one the ExternalSecret maps)."""
    def lookup(namespace: str, name: str, key: str) -> str:
        if ("Secret", namespace, name) in objects:
            return str(objects[("Secret", namespace, name)]["stringData"][key])
        external = objects[("ExternalSecret", namespace, name)]
        assert key in {d["secretKey"] for d in external["spec"]["data"]}, (name, key)
        return f"e2e-{key}"
    return lookup


class Site:
    """What stands for the clouds and the cluster's DNS and trust: the stores and the CA."""

    def __init__(self, root: Path, endpoints: list[str]) -> None:
        self.root = root
        self.ca = local.make_ca(root, [h for e in endpoints for h in (e, f"*.{e}")])
        self.stores = {e: local.TlsStore(e, self.ca) for e in endpoints}

    def env(self, objects: Objects, stanza: str) -> dict[str, str]:
        """pgBackRest's environment for the Stanza object `stanza`, pointed at the local stores."""
        body = objects[("Stanza", NAMESPACE, stanza)]
        env = stanza_env(body, secrets_of(objects))
        for number, repository in enumerate(body["spec"]["stanzaConfiguration"]["s3Repositories"], start=1):
            env.update(self.stores[repository["endpoint"]].env(number, self.ca))
        return env

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


@pytest.fixture
def site(engine: Path) -> Iterator[Site]:
    missing = local.missing()
    if missing:
        pytest.fail("the pgBackRest tests need: " + "; ".join(missing))
    root = Path(tempfile.mkdtemp(prefix="pgbackrest-e2e-"))
    root.chmod(0o755)  # the postgres user reaches its folders below
    objects = seed()
    repositories = objects[("Stanza", NAMESPACE, DATABASE)]["spec"]["stanzaConfiguration"]["s3Repositories"]
    made = Site(root, [r["endpoint"] for r in repositories])
    try:
        yield made
    finally:
        made.close()
        shutil.rmtree(root, ignore_errors=True)


def b2_store(site: Site, objects: Objects) -> local.TlsStore:
    first = objects[("Stanza", NAMESPACE, DATABASE)]["spec"]["stanzaConfiguration"]["s3Repositories"][0]
    return site.stores[first["endpoint"]]


def backup(primary: local.Postgres, objects: Objects, repository: str, kind: str) -> None:
    """The Backup the ScheduledBackup `<db>-<repository>-<kind>` makes, run as the sidecar runs it."""
    scheduled = objects[("ScheduledBackup", NAMESPACE, f"{DATABASE}-{repository}-{kind}")]
    local.checked(primary.pgbackrest("backup", env=backup_env(scheduled)))


def info(primary: local.Postgres) -> dict[str, Any]:
    (stanza,) = json.loads(local.checked(primary.pgbackrest("info", "--output=json")))
    return dict(stanza)


def recovered(site: Site, objects: Objects, name: str) -> local.Postgres:
    """A new data directory restored as the rendered Cluster's recovery bootstrap describes, then
    started: PostgreSQL replays the archive to the target and promotes (the plugin's
    recovery_target_action). The copy archives nothing: it is the test's reader, not a primary."""
    cluster = objects[("Cluster", NAMESPACE, DATABASE)]
    env = site.env(objects, recovery_stanza(cluster))
    server = local.Postgres(site.root, name, env)
    local.owned_folder(site.root, f"{name}/data")
    local.checked(server.pgbackrest("restore", env=restore_env(cluster)))
    with (server.data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {server.port}\nunix_socket_directories = '{server.socket}'\narchive_mode = off\n"
                   "recovery_target_action = promote\n")
    return server


def rows(server: local.Postgres) -> tuple[int, int]:
    count, total = server.sql("SELECT count(*), coalesce(sum(id), 0) FROM media").split("|")
    return int(count), int(total)


def test_the_seed_stanza_backs_up_to_both_stores_and_restores_the_latest_and_a_point_in_time(site: Site) -> None:
    objects = seed()
    primary = local.Postgres(site.root, "primary", site.env(objects, DATABASE))
    primary.initdb()
    with local.running(primary):
        local.checked(primary.pgbackrest("stanza-create"))  # the plugin's EnsureStanzaExists
        primary.sql("CREATE TABLE media (id int PRIMARY KEY, note text)")
        primary.sql("INSERT INTO media SELECT i, 'first' FROM generate_series(1, 100) i")
        for repository in ("b2", "r2"):
            backup(primary, objects, repository, "full")
        primary.sql("INSERT INTO media SELECT i, 'second' FROM generate_series(101, 150) i")
        time.sleep(1.2)
        between = primary.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
        time.sleep(1.2)
        primary.sql("INSERT INTO media SELECT i, 'third' FROM generate_series(151, 175) i")
        for repository in ("b2", "r2"):
            backup(primary, objects, repository, "diff")
        primary.wait_archived()
        written = rows(primary)
        state = info(primary)
    assert written == (175, sum(range(1, 176)))
    per_repository = {n: [b["type"] for b in state["backup"] if b["database"]["repo-key"] == n] for n in (1, 2)}
    assert per_repository == {1: ["full", "diff"], 2: ["full", "diff"]}, state["backup"]
    assert sorted(a["database"]["repo-key"] for a in state["archive"]) == [1, 2]  # WAL went to both stores

    # The last case takes B2 away for good: it must stay last.
    cases = [({}, written), ({"restoreAsOf": between}, (150, sum(range(1, 151)))),
             ({"repository": "r2"}, written)]
    for number, (recovery, expected) in enumerate(cases):
        if recovery.get("repository") == "r2":
            b2_store(site, objects).down()  # B2 is gone: only R2 is read
        rendered = seed(recovery)
        with local.running(recovered(site, rendered, f"restored-{number}")) as copy:
            assert rows(copy) == expected, (recovery, between)


def segments(first: str, last: str) -> list[str]:
    """WAL segment names from `first` to `last` on one timeline (16 MiB segments: 256 per log)."""
    timeline, start, stop = first[:8], int(first[8:], 16), int(last[8:], 16)

    def name(n: int) -> str:
        return f"{timeline}{n >> 32:08X}{n & 0xFFFFFFFF:08X}"
    numbers = [(n >> 32) * 256 + (n & 0xFF) for n in (start, stop)]
    return [name(((k // 256) << 32) | (k % 256)) for k in range(numbers[0], numbers[1] + 1)]


def test_expiry_keeps_the_rendered_full_backups_and_the_wal_of_the_newest_seven(site: Site) -> None:
    """`full: 14` keeps 14 full backups; `walDays: 7` (archive 7, archiveType diff) keeps the WAL
    from the 7th newest full-or-differential backup on, and of each older backup only the
    segments that make it consistent: with one backup a day, 7 days of point-in-time recovery."""
    objects = seed()
    retention = objects[("Stanza", NAMESPACE, DATABASE)]["spec"]["stanzaConfiguration"]["s3Repositories"][0][
        "retentionPolicy"]
    assert (retention["full"], retention["archive"], retention["archiveType"]) == (14, 7, "diff")  # the seed's
    primary = local.Postgres(site.root, "primary", site.env(objects, DATABASE))
    primary.initdb()
    with local.running(primary):
        local.checked(primary.pgbackrest("stanza-create"))
        primary.sql("CREATE TABLE media (id int PRIMARY KEY, note text)")
        for day in range(retention["full"] + 2):
            primary.sql(f"INSERT INTO media VALUES ({day}, 'day')")
            primary.wait_archived()  # a segment of WAL between two backups, as a day's writes make
            backup(primary, objects, "b2", "full")  # pgBackRest expires after every backup
        primary.wait_archived()
        state = info(primary)
        listing = json.loads(local.checked(primary.pgbackrest(
            "repo-ls", "--repo=1", "--recurse", "--output=json", f"archive/{DATABASE}")))
    kept = [b for b in state["backup"] if b["database"]["repo-key"] == 1]
    assert len(kept) == retention["full"], [b["label"] for b in kept]
    archived = sorted({Path(p).name[:24] for p, entry in listing.items()
                       if entry["type"] == "file" and len(Path(p).name) > 24 and Path(p).name[:24].isalnum()})
    (archive,) = [a for a in state["archive"] if a["database"]["repo-key"] == 1]
    newest = kept[-retention["archive"]:]
    expected = set(segments(newest[0]["archive"]["start"], archive["max"]))
    for older in kept[:-retention["archive"]]:
        expected |= set(segments(older["archive"]["start"], older["archive"]["stop"]))
    assert archived == sorted(expected)
    assert len(archived) < len(segments(kept[0]["archive"]["start"], archive["max"]))  # something was expired


#: What CloudNative-PG's default `pg_stat_archiver` query reads (config/manager/default-monitoring.yaml):
#: its `last_archived_time` and `last_failed_time` columns are these epochs, -1 before the first.
ARCHIVER = ("SELECT coalesce(extract(epoch FROM last_archived_time), -1), coalesce(extract(epoch FROM last_failed_time), -1),"
            " failed_count FROM pg_stat_archiver")


def archiver(server: local.Postgres) -> dict[str, float]:
    """The archiver's readings, and the `.ready` files in pg_wal/archive_status that CloudNative-PG's
    collector counts for `cnpg_collector_pg_wal_archive_status{value="ready"}`."""
    archived, failed, failures = server.sql(ARCHIVER).split("|")
    ready = len(list((server.data / "pg_wal" / "archive_status").glob("*.ready")))
    return {"last_archived_time": float(archived), "last_failed_time": float(failed), "failed_count": float(failures),
            "ready": float(ready)}


def wait_for(condition: Any, what: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(1)


def test_the_wal_archiving_alerts_fire_while_a_store_is_down_and_clear_once_it_is_back(
        site: Site, tmp_path: Path) -> None:
    """The rendered PrometheusRule, evaluated by Prometheus's promtool on the archiver's real
    readings: healthy, while B2 refuses every connection, and after it is back. Only the time
    each reading is held on promtool's clock is the test's (its clock starts a minute after the
    healthy reading's last archival: epochs are shifted by one constant)."""
    objects = seed()
    primary = local.Postgres(site.root, "primary", site.env(objects, DATABASE))
    primary.initdb()
    with local.running(primary):
        local.checked(primary.pgbackrest("stanza-create"))
        primary.sql("CREATE TABLE media (id int PRIMARY KEY)")
        primary.wait_archived()
        healthy = archiver(primary)
        b2_store(site, objects).down()
        primary.sql("INSERT INTO media VALUES (1)")
        primary.sql("SELECT pg_switch_wal()")
        wait_for(lambda: archiver(primary)["failed_count"] > healthy["failed_count"], "archive-push never failed")
        failing = archiver(primary)
        b2_store(site, objects).up()
        wait_for(lambda: archiver(primary)["last_archived_time"] > failing["last_failed_time"], "archiving never recovered")
        recovered = archiver(primary)
    assert healthy["last_failed_time"] < healthy["last_archived_time"] < failing["last_failed_time"]
    assert healthy["ready"] == recovered["ready"] == 0 < failing["ready"]  # WAL waited only while B2 was down
    assert failing["last_archived_time"] == healthy["last_archived_time"]

    labels = {"namespace": NAMESPACE, "pod": f"{DATABASE}-1"}
    origin = healthy["last_archived_time"] - 60
    held = ((healthy, 9), (failing, 39), (recovered, 14))  # minutes 0-9, 10-49, 50-64

    def values(metric: str) -> str:
        # Epochs move with promtool's clock (-1, "never", stays); counts do not.
        shift = origin if metric.endswith("_time") else 0
        return " ".join(f"{reading[metric] - shift if reading[metric] >= 0 else -1}+0x{n}" for reading, n in held)
    series = {f"cnpg_pg_stat_archiver_{m}": values(m) for m in ("last_archived_time", "last_failed_time")}
    # `for: 5m` after the failure at 10m; cleared once the archiver succeeds again at 50m.
    promtool_alerts(tmp_path, objects, "PostgresWalArchivingFailing", labels, series,
                    {"9m": False, "12m": False, "16m": True, "45m": True, "55m": False})
    # Stalled: nothing archived for 30 minutes (from 32m) while WAL waits, `for: 10m`.
    waiting = {**series, 'cnpg_collector_pg_wal_archive_status{value="ready"}': values("ready")}
    promtool_alerts(tmp_path, objects, "PostgresWalArchivingStalled", labels, waiting,
                    {"25m": False, "35m": False, "43m": True, "49m": True, "55m": False})


def run_check(site: Site, objects: Objects, later: timedelta = timedelta()) -> subprocess.CompletedProcess[str]:
    """The backup check's container as kubelet would start it (its environment from the rendered
    Secrets, as the postgres user), against the local stores; `later` moves its clock on (a
    `date` that answers `+%s` that much later, the only thing of the check's that is the test's)."""
    cronjob = objects[("CronJob", NAMESPACE, f"pgbackrest-check-{DATABASE}")]
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = container_env(objects, NAMESPACE, container, secrets_of(objects))
    for key, value in list(env.items()):
        if key.endswith("_S3_ENDPOINT"):
            env.update(site.stores[value].env(int(key.removeprefix("PGBACKREST_REPO").split("_")[0]), site.ca))
    shim = local.owned_folder(site.root, f"clock-{int(later.total_seconds())}")
    (shim / "date").write_text(f'#!/bin/sh\nif [ "$*" = "+%s" ]; then echo $(( $(/bin/date +%s) + {int(later.total_seconds())} )); '
                               'else exec /bin/date "$@"; fi\n')
    (shim / "date").chmod(0o755)
    return local.as_postgres(container["command"], {**env, "PATH": f"{shim}:/usr/bin:/bin"})


def test_the_backup_check_fails_naming_each_repository_without_a_recent_full_or_backup(
        site: Site, tmp_path: Path) -> None:
    objects = seed()
    primary = local.Postgres(site.root, "primary", site.env(objects, DATABASE))
    primary.initdb()
    with local.running(primary):
        outcomes = {"no stanza": run_check(site, objects)}
        local.checked(primary.pgbackrest("stanza-create"))
        outcomes["nothing yet"] = run_check(site, objects)
        backup(primary, objects, "b2", "full")
        outcomes["b2 only"] = run_check(site, objects)
        backup(primary, objects, "r2", "full")
        outcomes["both"] = run_check(site, objects)
        outcomes["two days on"] = run_check(site, objects, timedelta(days=2))
        for repository in ("b2", "r2"):
            backup(primary, objects, repository, "diff")
        outcomes["eight days on"] = run_check(site, objects, timedelta(days=8))
        outcomes["diffs"] = run_check(site, objects)
    said = {case: (result.returncode, result.stdout + result.stderr) for case, result in outcomes.items()}
    assert said["no stanza"][0] != 0 and "b2 (repo1): stanza status error (missing stanza path)" in said["no stanza"][1], said
    assert said["nothing yet"][0] != 0 and "b2 (repo1): no full backup" in said["nothing yet"][1], said
    assert said["b2 only"][0] != 0 and "r2 (repo2): no full backup" in said["b2 only"][1], said
    assert "repo1" not in said["b2 only"][1], said
    assert said["both"] == (0, "every repository has a recent full backup and a recent backup (2)\n"), said
    # Daily backups (full on Sunday, differential on the other days): two days without any is stale,
    # a week's full is not yet; after eight days the full is stale too.
    two = said["two days on"]
    assert two[0] != 0 and "b2 (repo1): the newest backup of any type is" in two[1] and "newest full" not in two[1], said
    eight = said["eight days on"]
    assert eight[0] != 0 and "r2 (repo2): the newest full backup is" in eight[1], said
    assert said["diffs"][0] == 0, said

    # The alert on those outcomes as kube-state-metrics reports a CronJob whose runs at 0m, 20m
    # and 40m (a minute each) end as the real checks "nothing yet", "both" and "two days on" did.
    runs = [outcomes[case].returncode == 0 for case in ("nothing yet", "both", "two days on")]
    scheduled, succeeded, active = [], [], []
    for minute in range(60):
        run = min(minute // 20, 2)
        scheduled.append(str(run * 20 * 60))
        done = [r for r in range(run + 1) if runs[r] and (r < run or minute % 20 >= 1)]
        succeeded.append(str((done[-1] * 20 + 1) * 60) if done else "_")
        active.append("1" if minute % 20 == 0 else "0")
    promtool_alerts(tmp_path, objects, "PgBackRestBackupsStale",
                    {"namespace": NAMESPACE, "cronjob": f"pgbackrest-check-{DATABASE}"},
                    {"kube_cronjob_status_last_schedule_time": " ".join(scheduled),
                     "kube_cronjob_status_last_successful_time": " ".join(succeeded),
                     "kube_cronjob_status_active": " ".join(active)},
                    {"10m": False, "17m": True, "30m": False, "50m": False, "57m": True})
