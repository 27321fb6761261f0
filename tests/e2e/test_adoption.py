"""Histories written by the seeds' own VolSync objects, read by this program's config; and
`backupNow`, with the real mover (entry.sh) and Kopia.

The "old layout" objects are written here as the seeds' Flux templates make them: a
ReplicationSource with no username or hostname, so VolSync names the history after the object
(`<name>@<namespace>`). The controller table (controller.py) derives each Job from them.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import pytest

from components.config import stack_config_of
from components.plan import StackPlan, plan_stack
from tools.offline import load_stack_file
from tools.snapshots import listing_command, listing_pod

from . import controller
from .cluster import EXPORT, Cluster, ok, tree, write_tree
from .conftest import STACKS, render, secret_of, stack_config
from .mover import MoverRun, run, run_container

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


def plan_of(**changes: Any) -> StackPlan:
    """The plan of the test stack with `backups:<key>` replaced, as the tools make it."""
    config, _, _ = load_stack_file(STACKS / f"Pulumi.{STACK}.yaml")
    config.update({f"backups:{key}": json.dumps(value) for key, value in changes.items()})
    return plan_stack(stack_config_of(config))


def listing(cluster: Cluster, plan: StackPlan, app: str, secret: Optional[tuple[str, dict[str, str]]] = None) -> MoverRun:
    """tools.snapshots' pod for `app` in nas, run as kubelet would start it; `secret` is the
    (name, data) of the Secret given with `--secret`, else the program's own is read."""
    ap = next(ap for ap in plan.apps if ap.app.name == app)
    command = shlex.split(listing_command(plan, ap, "nas", secret[0] if secret else None))
    assert command[:4] == ["kubectl", "-n", ap.app.namespace, "run"]
    pod = listing_pod(plan, ap, "nas", secret[0] if secret else None)["spec"]
    (container,) = pod["containers"]
    (source,) = container["envFrom"]
    name, data = secret or ("volsync-kopia-nas", secret_of(cluster.objects, ap.app.namespace, "volsync-kopia-nas"))
    assert source["secretRef"]["name"] == name
    env = {**data, **{e["name"]: e["value"] for e in container["env"]}, "PATH": "/opt/engine:/usr/bin:/bin", "HOME": "/tmp"}
    work = cluster.folders(f"ls-work-{len(list(cluster.folders('.').glob('ls-work-*')))}")
    security = pod["securityContext"]
    os.chown(work, security["runAsUser"], security["runAsGroup"])
    return run_container(container["command"], env, [(work, "/tmp/kopia"), (cluster.export, EXPORT)],
                         security["runAsUser"], security["runAsGroup"], (security["runAsGroup"], security["fsGroup"]))


def snapshots_listed(result: MoverRun) -> int:
    return sum(1 for line in result.output.splitlines() if line.strip().startswith("20"))


def test_the_printed_listing_command_lists_the_apps_snapshots(engine, folders):
    """tools.snapshots' pod, run as kubelet would start it: it names every snapshot of the app's
    history, so `previous: N` is counted from what it prints."""
    cluster = Cluster(folders, render(STACK, repositories=[KEEP_LATEST]))
    for version in (b"one\n", b"two\n"):
        write_tree(folders("pvc"), 1000, {"version.txt": version})
        ok(cluster.backup("media", "radarr-nas", folders("pvc")))
    write_tree(folders("pvc/sabnzbd"), 568, {"other.txt": b"another app\n"})
    ok(cluster.backup("media", "sabnzbd-nas", folders("pvc/sabnzbd")))
    result = ok(listing(cluster, plan_of(repositories=[KEEP_LATEST]), "radarr"))
    assert "radarr@media:/data" in result.output and "sabnzbd" not in result.output  # only the app's history
    assert snapshots_listed(result) == 2, result.output[-2000:]


#: Each seed's layout as README "Migrating" step 1 turns it into config: (seed, the old
#: ReplicationSource, its per-app Secret, the uid its movers ran as, the app as config).
SEEDS = [
    ("000", "prowlarr", "prowlarr-volsync-secret", 1000, {"name": "prowlarr", "namespace": "media", "existingClaim": "prowlarr"}),
    ("001", "atuin-src", "atuin-volsync-secret", 1000,
     {"name": "atuin", "namespace": "media", "existingClaim": "atuin-config", "identity": "atuin-src@media"}),
    ("003", "bazarr", "bazarr-volsync-secret", 1001,
     {"name": "bazarr", "namespace": "media", "existingClaim": "bazarr-config", "runAsUser": 1001, "runAsGroup": 1001,
      "fsGroup": 1001}),
]


@pytest.mark.parametrize("seed, old_source, old_secret, uid, app", SEEDS, ids=[s[0] for s in SEEDS])
def test_the_migration_guide_as_written(engine, folders, seed, old_source, old_secret, uid, app):
    """README "Migrating", step by step, on a history the seed's own ReplicationSource wrote."""
    name, claim = app["name"], app["existingClaim"]
    mover = {"runAsUser": uid, "runAsGroup": uid, "fsGroup": uid}
    defaults = {**stack_config(STACK)["defaults"], "mover": mover}
    # KEEP_LATEST: retention by hour would fold this test's backups, minutes apart, into one.
    step1 = {"defaults": defaults, "repositories": [KEEP_LATEST], "apps": [app]}
    objects = render(STACK, **step1)
    cluster = Cluster(folders, objects)
    data = write_tree(folders("pvc"), uid, DATA)
    # The seed's setup, before the migration: its source (named by its template, no identity
    # fields) and its per-app Secret with VolSync's keys, the same repository and password.
    seed_data = secret_of(objects, "media", "volsync-kopia-nas")
    old = flux_source(old_source, "media", claim, objects[("ReplicationSource", "media", f"{name}-nas")])
    ok(run(controller.source_job(old, seed_data), {EXPORT: cluster.export}, folders("pvc"), folders("cache/flux")))

    # Step 2: the check before anything changes, through the old Secret.
    checked = ok(listing(cluster, plan_of(**step1), name, (old_secret, seed_data)))
    assert snapshots_listed(checked) == 1 and f"{old['metadata']['name']}@media:/data" in checked.output, checked.output[-2000:]
    if uid != 1000:  # the default uid is refused, naming the owner and the key
        wrong = listing(cluster, plan_of(apps=[app]), name, (old_secret, seed_data))
        assert wrong.returncode != 0 and f"its files belong to uid {uid}; set backups:defaults.mover.runAsUser" in wrong.output

    # Step 4: `pulumi up`; each new source backs up once, into the same history (the app wrote
    # in between: Kopia folds identical snapshots into one line).
    data = {**data, **write_tree(folders("pvc"), uid, {"new.log": b"after the migration\n"})}
    ok(cluster.backup("media", f"{name}-nas", folders("pvc")))
    assert snapshots_listed(ok(listing(cluster, plan_of(**step1), name))) == 2

    # Step 7: managed. A fresh backup with the app scaled down, the claim deleted, then
    # `claimName` in place of `existingClaim`: the bootstrap fills the new claim from it.
    (folders("pvc") / "config.xml").write_bytes(b"<Config><Port>9697</Port></Config>\n")
    os.chown(folders("pvc") / "config.xml", uid, uid)
    now = render(STACK, **{**step1, "apps": [{**app, "backupNow": "migrate"}]})
    ok(Cluster(folders, now).backup("media", f"{name}-nas-now", folders("pvc")))
    managed = {k: v for k, v in app.items() if k != "existingClaim"} | {"claimName": claim}
    after = Cluster(folders, render(STACK, **{**step1, "apps": [managed]}))
    assert after.objects[("PersistentVolumeClaim", "media", claim)]["spec"]["dataSourceRef"]["name"] == f"{name}-bootstrap"
    restored = ok(after.restore("media", f"{name}-bootstrap", folders("claim")))
    assert not restored.restored_nothing
    assert tree(folders("claim")) == {**data, "config.xml": b"<Config><Port>9697</Port></Config>\n"}
