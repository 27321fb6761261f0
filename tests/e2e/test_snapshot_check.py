"""The snapshot check, run for real: it fails, naming the identity, exactly when a restore of that
identity would find nothing (and, as the mover scenarios show, succeed with an empty volume)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .cluster import EXPORT, Cluster, container_env, ok, write_tree
from .conftest import Objects, render, stack_config
from .mover import MoverRun, run_container


def check(objects: Objects, cluster: Cluster, folders: Callable[[str], Path]) -> MoverRun:
    """The CronJob's container as kubelet would start it, against the cluster's repository."""
    cronjob = objects[("CronJob", "volsync-system", "kopia-check-nas")]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {**container_env(objects, "volsync-system", container), "PATH": "/opt/engine:/usr/bin:/bin", "HOME": "/tmp"}
    work = folders("check-work")
    security = pod["securityContext"]
    os.chown(work, security["runAsUser"], security["runAsGroup"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    return run_container(container["command"], env, [(work, mounts["work"]), (cluster.export, EXPORT)],
                         security["runAsUser"], security["runAsGroup"], (security["runAsGroup"], security["fsGroup"]))


def test_the_check_passes_once_every_app_has_a_snapshot(engine: Path, folders: Callable[[str], Path]) -> None:
    objects = render("mover")
    cluster = Cluster(folders, objects)
    empty = check(objects, cluster, folders)  # no repository yet: the check fails, it never passes
    assert empty.returncode != 0 and "repository not initialized" in empty.output, empty.output[-2000:]
    write_tree(folders("pvc/radarr"), 1000, {"radarr.db": b"data\n"})
    write_tree(folders("pvc/sabnzbd"), 568, {"sabnzbd.ini": b"data\n"})
    ok(cluster.backup("media", "radarr-nas", folders("pvc/radarr")))
    half = check(objects, cluster, folders)  # sabnzbd would restore an empty volume
    assert half.returncode != 0 and "no snapshot for: sabnzbd@media:/data" in half.output, half.output[-2000:]
    ok(cluster.backup("media", "sabnzbd-nas", folders("pvc/sabnzbd")))
    done = check(objects, cluster, folders)
    assert done.returncode == 0 and "every expected identity has a snapshot (2)" in done.output, done.output[-2000:]


def test_a_restore_from_an_identity_with_no_history_fails_the_check(engine: Path, folders: Callable[[str], Path]) -> None:
    apps = stack_config("mover")["apps"]
    typo = {"name": "radarr", "namespace": "rebuilt", "restore": {"from": {"namespace": "medai", "app": "radarr"}}}
    objects = render("mover", apps=[*apps, typo])
    cluster = Cluster(folders, objects)
    for app, uid in (("radarr", 1000), ("sabnzbd", 568)):
        write_tree(folders(f"pvc/{app}"), uid, {"data": b"x\n"})
        ok(cluster.backup("media", f"{app}-nas", folders(f"pvc/{app}")))
    write_tree(folders("pvc/rebuilt"), 1000, {"data": b"x\n"})
    ok(cluster.backup("rebuilt", "radarr-nas", folders("pvc/rebuilt")))
    result = check(objects, cluster, folders)
    assert result.returncode != 0 and "no snapshot for: radarr@medai:/data" in result.output, result.output[-2000:]
    restore = cluster.restore("rebuilt", "radarr-restore", folders("restored"))
    assert restore.returncode == 0 and restore.restored_nothing  # what the check warned of


def test_a_repository_another_uid_wrote_is_named_with_its_owner_and_the_key_that_fixes_it(
    engine: Path, folders: Callable[[str], Path],
) -> None:
    """Seed 003's movers run as 1001; this program's default is 1000. A repository the seed wrote
    is 0600 to 1001, so every mover of the new config would fail with `permission denied`: the
    check (and `tools.snapshots`, which connects the same way) says whose it is and what to set."""
    defaults = stack_config("mover")["defaults"]
    seed_way = render("mover", defaults={**defaults, "mover": {"runAsUser": 1001, "runAsGroup": 1001, "fsGroup": 1001}})
    seeded = Cluster(folders, seed_way)
    for app in ("radarr", "sabnzbd"):
        write_tree(folders(f"pvc/{app}"), 1001, {"data": b"x\n"})
        ok(seeded.backup("media", f"{app}-nas", folders(f"pvc/{app}")))
    default = render("mover")
    refused = check(default, Cluster(folders, default), folders)
    assert refused.returncode != 0, refused.output[-2000:]
    assert ("uid 1000 cannot read the repository: its files belong to uid 1001; set "
            "backups:defaults.mover.runAsUser to that uid") in refused.output, refused.output[-2000:]
    assert check(seed_way, Cluster(folders, seed_way), folders).returncode == 0


def test_a_repository_directory_closed_to_the_movers_uid_is_named_with_its_owner(
    engine: Path, folders: Callable[[str], Path],
) -> None:
    """A 0700 export of another uid hides even the format blob: said as such, not as a missing
    repository."""
    objects = render("mover")
    cluster = Cluster(folders, objects)
    os.chown(cluster.export, 1001, 1001)
    os.chmod(cluster.export, 0o700)
    refused = check(objects, cluster, folders)
    assert refused.returncode != 0, refused.output[-2000:]
    assert ("uid 1000 cannot read the repository: its directory belongs to uid 1001; set "
            "backups:defaults.mover.runAsUser to that uid") in refused.output, refused.output[-2000:]
