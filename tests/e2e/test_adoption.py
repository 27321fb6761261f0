"""Histories written by the seeds' own VolSync objects, read by this program's config; and
`backupNow`, with the real mover (entry.sh) and Kopia.

The "old layout" objects are written here as the seeds' Flux templates make them: a
ReplicationSource with no username or hostname, so VolSync names the history after the object
(`<name>@<namespace>`). The controller table (controller.py) derives each Job from them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from . import controller
from .cluster import EXPORT, Cluster, ok, tree, write_tree
from .conftest import render, secret_of, stack_config
from .mover import run

STACK = "mover"
NAS = stack_config(STACK)["repositories"][0]
KEEP_LATEST = {**NAS, "retain": {"latest": 5, "hourly": 24, "daily": 7}}
DATA = {"config.xml": b"<Config><Port>9696</Port></Config>\n", "prowlarr.db": b"indexers\n" * 4096}


def flux_source(name: str, namespace: str, claim: str, like: dict[str, Any]) -> dict[str, Any]:
    """The seed templates' ReplicationSource: named by the template, no identity fields, the same
    repository (Secret and NFS mount) and mover identity as this program's."""
    body = copy.deepcopy(like)
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["sourcePVC"] = claim
    for key in ("username", "hostname"):
        body["spec"]["kopia"].pop(key)
    return body


@pytest.mark.parametrize("seed, old_source, app", [
    # Seed 000: ReplicationSource `prowlarr` in media -> history prowlarr@media, the new default.
    ("000", "prowlarr", {"name": "prowlarr", "namespace": "media"}),
    # Seed 001: `<app>-src` sources and `<app>-config` claims -> identity given in config.
    ("001", "atuin-src", {"name": "atuin", "namespace": "media", "claimName": "atuin-config",
                          "identity": "atuin-src@media"}),
    # Seed 003: `<app>-config` claims made by the ResourceSet, kept as existing claims at first.
    ("003", "bazarr", {"name": "bazarr", "namespace": "media", "existingClaim": "bazarr-config"}),
])
def test_a_history_written_by_the_seed_layout_is_what_the_new_config_restores(engine: Path, folders: Callable[[str], Path],
                                                                            seed, old_source, app):
    restore = {"restore": {"previous": 0}} if "existingClaim" in app else {}
    objects = render(STACK, apps=[{**app, **restore}])
    cluster = Cluster(folders, objects)
    claim = app.get("existingClaim") or app.get("claimName") or app["name"]
    ours = objects[("ReplicationSource", "media", f"{app['name']}-nas")]
    old = flux_source(old_source, "media", claim, ours)
    secret = secret_of(objects, "media", ours["spec"]["kopia"]["repository"])

    data = write_tree(folders("pvc"), 1000, DATA)
    job = controller.source_job(old, secret)
    assert job.env["KOPIA_OVERRIDE_USERNAME"] == old_source  # VolSync's default: the object's name
    ok(run(job, {EXPORT: cluster.export}, folders("pvc"), folders("cache/flux")))

    # The new config's first restore of the claim reads the old history (an existing claim has
    # no bootstrap; its restore into the live claim is the same read).
    reader = "bootstrap" if "existingClaim" not in app else "restore"
    result = ok(cluster.restore("media", f"{app['name']}-{reader}", folders("restored")))
    assert not result.restored_nothing and tree(folders("restored")) == data
    # And the program's sources write on in the same history: one more snapshot, same identity.
    (folders("pvc") / "config.xml").write_bytes(b"<Config><Port>9697</Port></Config>\n")
    ok(cluster.backup("media", f"{app['name']}-nas", folders("pvc")))
    listing = ok(cluster.restore("media", f"{app['name']}-drill", folders("drill")))
    assert tree(folders("drill"))["config.xml"].endswith(b"9697</Port></Config>\n"), listing.output[-2000:]


def test_the_previous_default_identity_would_have_restored_an_empty_volume(engine, folders):
    """Why the default changed: a history written by the seeds' `prowlarr` source is invisible
    to a destination that reads `prowlarr-nas@media` (this program's identity before)."""
    objects = render(STACK, apps=[{"name": "prowlarr", "namespace": "media"}])
    cluster = Cluster(folders, objects)
    ours = objects[("ReplicationSource", "media", "prowlarr-nas")]
    secret = secret_of(objects, "media", ours["spec"]["kopia"]["repository"])
    write_tree(folders("pvc"), 1000, DATA)
    ok(run(controller.source_job(flux_source("prowlarr", "media", "prowlarr", ours), secret),
           {EXPORT: cluster.export}, folders("pvc"), folders("cache/flux")))
    before = copy.deepcopy(objects[("ReplicationDestination", "media", "prowlarr-bootstrap")])
    before["spec"]["kopia"].update(username="prowlarr-nas", hostname="media")
    result = ok(run(controller.destination_job(before, secret), {EXPORT: cluster.export},
                    folders("restored"), folders("cache/old")))
    assert result.restored_nothing and tree(folders("restored")) == {}


def test_backup_now_adds_a_snapshot_to_the_apps_own_history(engine, folders):
    app = {"name": "radarr", "namespace": "media", "backupNow": "2026-11-24", "restore": {"previous": 1}}
    cluster = Cluster(folders, render(STACK, repositories=[KEEP_LATEST], apps=[app]))
    extra = cluster.objects[("ReplicationSource", "media", "radarr-nas-now")]["spec"]
    assert extra["trigger"] == {"manual": "2026-11-24"}
    write_tree(folders("pvc"), 1000, {"version.txt": b"scheduled\n"})
    ok(cluster.backup("media", "radarr-nas", folders("pvc")))
    write_tree(folders("pvc"), 1000, {"version.txt": b"now\n"})
    ok(cluster.backup("media", "radarr-nas-now", folders("pvc")))
    ok(cluster.restore("media", "radarr-bootstrap", folders("latest")))
    ok(cluster.restore("media", "radarr-restore", folders("previous")))
    assert tree(folders("latest")) == {"version.txt": b"now\n"}  # the extra backup is the latest
    assert tree(folders("previous")) == {"version.txt": b"scheduled\n"}  # the one before it, same history


def test_the_printed_listing_command_lists_the_apps_snapshots(engine, folders):
    """tools.snapshots' pod, run as kubelet would start it: it names every snapshot of the app's
    history, so `previous: N` is counted from what it prints."""
    import os
    import shlex

    from components.config import stack_config_of
    from components.plan import plan_stack
    from tools.offline import load_stack_file
    from tools.snapshots import listing_command, listing_pod

    from .conftest import STACKS
    from .mover import run_container

    cluster = Cluster(folders, render(STACK, repositories=[KEEP_LATEST]))
    for version in (b"one\n", b"two\n"):
        write_tree(folders("pvc"), 1000, {"version.txt": version})
        ok(cluster.backup("media", "radarr-nas", folders("pvc")))
    write_tree(folders("pvc/sabnzbd"), 568, {"other.txt": b"another app\n"})
    ok(cluster.backup("media", "sabnzbd-nas", folders("pvc/sabnzbd")))
    config, _, _ = load_stack_file(STACKS / f"Pulumi.{STACK}.yaml")
    config["backups:repositories"] = __import__("json").dumps([KEEP_LATEST])
    plan = plan_stack(stack_config_of(config))
    radarr = next(ap for ap in plan.apps if ap.app.name == "radarr")
    command = shlex.split(listing_command(plan, radarr, "nas"))
    assert command[:4] == ["kubectl", "-n", "media", "run"]
    pod = listing_pod(plan, radarr, "nas")["spec"]
    (container,) = pod["containers"]
    env = {**secret_of(cluster.objects, "media", "volsync-kopia-nas"),
           **{e["name"]: e["value"] for e in container["env"]}, "PATH": "/opt/engine:/usr/bin:/bin", "HOME": "/tmp"}
    work = folders("ls-work")
    security = pod["securityContext"]
    os.chown(work, security["runAsUser"], security["runAsGroup"])
    result = run_container(container["command"], env, [(work, "/tmp/kopia"), (cluster.export, EXPORT)],
                           security["runAsUser"], security["runAsGroup"], (security["runAsGroup"], security["fsGroup"]))
    assert result.returncode == 0, result.output[-2000:]
    assert "radarr@media:/data" in result.output and "sabnzbd" not in result.output  # only the app's history
    assert sum(1 for line in result.output.splitlines() if line.strip().startswith("20")) == 2, result.output[-2000:]
