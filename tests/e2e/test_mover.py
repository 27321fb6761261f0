"""Backups and restores with the real mover: the fork's entry.sh, Kopia 0.22.3, the Job's uid.

Every Job's environment is what the controller derives (controller.py) from the objects the
program renders for tests/e2e/stacks/Pulumi.mover.yaml; every restore is compared byte for byte.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from backup_contract import TARGET_ANNOTATION

from components.config import ConfigError
from tools.offline import load_stack_file, run_program
from tools.policy import run_policies

from ..conftest import registration
from .cluster import Cluster, backed_up_around_an_instant, ok, tree, write_tree
from .conftest import STACKS, render, stack_config

STACK = "mover"
NAS = stack_config(STACK)["repositories"][0]

RADARR = {"config.xml": b"<Config><Port>7878</Port></Config>\n", "radarr.db": os.urandom(64 * 1024),
          "MediaCover/1/poster.jpg": os.urandom(200 * 1024)}
SABNZBD = {"sabnzbd.ini": b"[misc]\nport = 8080\n", "admin/history1.db": os.urandom(32 * 1024)}


@pytest.fixture
def cluster(engine: Path, folders: Callable[[str], Path]) -> Cluster:
    return Cluster(folders, render(STACK))


def test_two_apps_with_different_uids_share_one_filesystem_repository_with_maintenance(cluster, folders):
    """Seed 000's layout: both apps' movers and the maintenance Job write one filesystem
    repository. Kopia writes its files 0600 and directories 0700, so they only can when they run
    as one uid (the repository's), reading each app's data through its group."""
    radarr = write_tree(folders("pvc/radarr"), 1000, RADARR)
    sabnzbd = write_tree(folders("pvc/sabnzbd"), 568, SABNZBD)
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))
    ok(cluster.backup("media", "sabnzbd-nas", folders("pvc/sabnzbd")))
    ok(cluster.maintain())
    (folders("pvc/sabnzbd") / "sabnzbd.ini").write_bytes(b"[misc]\nport = 9090\n")
    ok(cluster.backup("media", "sabnzbd-nas", folders("pvc/sabnzbd")))  # after maintenance rewrote the indexes
    owners = {p.stat().st_uid for p in cluster.export.rglob("*")}
    assert owners == {1000}, owners  # one repository uid, whoever's data it holds
    ok(cluster.restore("media", "radarr-bootstrap", folders("restored/radarr")))
    ok(cluster.restore("media", "sabnzbd-bootstrap", folders("restored/sabnzbd")))
    assert tree(folders("restored/radarr")) == radarr
    assert tree(folders("restored/sabnzbd")) == {**sabnzbd, "sabnzbd.ini": b"[misc]\nport = 9090\n"}


def test_each_app_reads_only_its_own_identity(cluster, folders):
    write_tree(folders("pvc/radarr"), 1000, RADARR)
    write_tree(folders("pvc/sabnzbd"), 568, SABNZBD)
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))
    ok(cluster.backup("media", "sabnzbd-nas", folders("pvc/sabnzbd")))
    ok(cluster.restore("media", "sabnzbd-bootstrap", folders("restored")))
    assert tree(folders("restored")) == SABNZBD


def test_a_bootstrap_with_nothing_in_the_repository_is_an_empty_volume_and_says_so(cluster, folders):
    """A first deploy: the mover finds no snapshot, exits 0, and hands over an empty volume. The
    only trace is in its output, which the controller keeps in the destination's
    status.latestMoverStatus.logs (its log filter keeps "No snapshots found" lines)."""
    result = ok(cluster.restore("media", "radarr-bootstrap", folders("restored")))
    assert result.restored_nothing and tree(folders("restored")) == {}
    assert "No snapshots found for radarr@media:/data" in result.output


#: Two backups a few seconds apart fall into one hour, and `hourly: 24` keeps one snapshot per
#: hour (do_retention runs after every backup): scenarios that need two snapshots keep the latest 5.
KEEP_LATEST = {**NAS, "retain": {"latest": 5, "hourly": 24, "daily": 7}}


def _with_restore(folders, restore: dict[str, Any], app: dict[str, Any] | None = None) -> Cluster:
    apps = stack_config(STACK)["apps"]
    target = {**(app or apps[0]), "restore": restore}
    return Cluster(folders, render(STACK, repositories=[KEEP_LATEST],
                                   apps=[*apps, target] if app else [target, apps[1]]))


def test_previous_n_restores_the_snapshot_before_the_latest(engine, folders):
    cluster = _with_restore(folders, {"previous": 1})
    write_tree(folders("pvc/radarr"), 1000, {"version.txt": b"one\n"})
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))
    write_tree(folders("pvc/radarr"), 1000, {"version.txt": b"two\n"})
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))
    ok(cluster.restore("media", "radarr-restore", folders("restored")))
    assert tree(folders("restored")) == {"version.txt": b"one\n"}


def test_restore_as_of_a_time_with_an_offset_restores_the_snapshot_taken_before_it(engine, folders):
    """The mover compares restoreAsOf as a string with Kopia's UTC `...Z` times: given as
    `+01:00`, it must reach the mover in UTC or the comparison picks the wrong snapshot."""
    probe = Cluster(folders, render(STACK, repositories=[KEEP_LATEST]))
    cut = backed_up_around_an_instant(probe, folders("pvc/radarr"))
    local = cut.astimezone(timezone(timedelta(hours=1))).isoformat()  # 2026-...T10:00:01+01:00
    cluster = _with_restore(folders, {"restoreAsOf": local})
    cluster.export = probe.export
    ok(cluster.restore("media", "radarr-restore", folders("restored")))
    assert tree(folders("restored")) == {"version.txt": b"before\n"}
    assert cluster.objects[("ReplicationDestination", "media", "radarr-restore")]["spec"]["kopia"]["restoreAsOf"].endswith("Z")


def test_a_rebuilt_app_in_another_namespace_restores_from_the_old_one(engine, folders):
    moved = {"name": "radarr", "namespace": "rebuilt"}
    cluster = _with_restore(folders, {"from": {"namespace": "media", "app": "radarr"}}, app=moved)
    write_tree(folders("pvc/radarr"), 1000, RADARR)
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))
    ok(cluster.restore("rebuilt", "radarr-restore", folders("restored")))
    assert tree(folders("restored")) == RADARR


def test_a_restore_into_the_live_claim_removes_files_the_snapshot_does_not_have(engine, folders):
    """Seed 003: a stale SQLite -wal beside the restored database corrupts it on open."""
    cluster = _with_restore(folders, {"previous": 0})
    write_tree(folders("pvc/radarr"), 1000, {"radarr.db": b"good database\n"})
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))
    live = folders("live")
    write_tree(live, 1000, {"radarr.db": b"newer, broken\n", "radarr.db-wal": b"stale write-ahead log\n"})
    ok(cluster.restore("media", "radarr-restore", live))
    assert tree(live) == {"radarr.db": b"good database\n"}


def test_a_drill_restores_the_latest_snapshot_into_a_scratch_volume(cluster, folders):
    write_tree(folders("pvc/radarr"), 1000, RADARR)
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))
    drill = cluster.objects[("ReplicationDestination", "media", "radarr-drill")]["spec"]["kopia"]
    assert drill["cleanupTempPVC"] and drill["cleanupCachePVC"]
    ok(cluster.restore("media", "radarr-drill", folders("scratch")))
    assert tree(folders("scratch")) == RADARR


# -- the seeds' failures, reproduced and refused ---------------------------------------------------


def test_a_second_password_on_the_shared_repository_fails_and_the_pack_refuses_it(cluster, folders):
    """Seed 000: a password per app. The repository keeps the first one; the second app's mover
    cannot open it. The policy pack stops the config that would do this before it reaches a cluster."""
    write_tree(folders("pvc/radarr"), 1000, RADARR)
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))
    other = Cluster(folders, render(STACK, repositories=[{**NAS, "password": "a-second-password"}]))
    other.export = cluster.export
    result = other.backup("media", "radarr-nas", folders("pvc/radarr"))
    assert result.returncode != 0 and "invalid repository password" in result.output.lower()
    # The same mistake as config, a second entry for the one export with its own password, is
    # refused before anything is built: one place, one owner (the pack's own normalisation).
    second = {**NAS, "name": "nas2", "primary": False, "password": "a-second-password"}
    config, secret_keys, _ = load_stack_file(STACKS / f"Pulumi.{STACK}.yaml")
    with pytest.raises(ConfigError) as refused:
        run_program({**config, "backups:repositories": json.dumps([NAS, second])}, secret_keys)
    assert refused.value.problems[0].startswith("backups:repositories[1].nfs: is the place")
    assert "a-second-password" not in str(refused.value)
    # Written by hand beside the program's objects, as seed 000 did, the pack refuses it.
    target = f"nfs://{NAS['nfs']['server']}{NAS['nfs']['path']}"
    hand_written = registration("kubernetes:core/v1:Secret", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "radarr-volsync-backup", "namespace": "media", "annotations": {TARGET_ANNOTATION: target}},
        "stringData": {"KOPIA_PASSWORD": "a-second-password", "KOPIA_REPOSITORY": "filesystem:///mnt/repository"},
    }, secret_fields=("stringData",))
    report = run_policies(run_program(config, secret_keys).as_engine_sees_it() + [hand_written])
    assert [v.policy for v in report.mandatory] == ["kopia-shared-password"]
