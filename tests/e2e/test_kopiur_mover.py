"""The move to Kopiur keeps every history: what the fork's entry.sh wrote, Kopiur's commands read.

The fork's mover (entry.sh, real Kopia 0.22.3) backs an app up under `<app>@<namespace>:/data`
from the objects the program renders for tests/e2e/stacks/Pulumi.mover.yaml; then the same
config rendered with `mover: kopiur` gives the SnapshotPolicy and Restores, and the kopia
commands Kopiur builds for them (kopiur.py, with its table) run against that repository under
the movers' uid: the listing finds the fork's snapshots, the populator Restore restores the
newest, a Kopiur backup continues the same history (the fork's restore reads it back), and a
restore into the live claim reads `previous` and `restoreAsOf` as Kopiur does. Kopiur itself is
in no registry this project builds from; its commands are run instead of its binary. Last, the
rendered Kopiur alerts are judged by promtool.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cluster import Cluster, backed_up_around_an_instant, ok, tree, write_tree
from .conftest import Objects, render, secret_of, stack_config
from .kopiur import KopiurJob, backup_job, listing_job, pick, restore_job
from .mover import MoverRun, run_container, set_volume_ownership
from .promtool import promtool_alerts

STACK = "mover"
#: Two backups a few seconds apart share an hour: keep the latest 5 so each scenario has them all.
NAS = {**stack_config(STACK)["repositories"][0], "retain": {"latest": 5, "hourly": 24, "daily": 7}}


def on_kopiur(**changes: Any) -> Objects:
    return render(STACK, mover="kopiur", repositories=[NAS], **changes)


class Kopiur:
    """Kopiur's commands for one rendered stack, against the export the fork's movers wrote."""

    def __init__(self, objects: Objects, export: Path, folders: Callable[[str], Path]) -> None:
        self.objects, self.export, self.folders = objects, export, folders

    def _repository(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.objects[("ClusterRepository", "", spec["repository"]["name"])]["spec"]

    def _secrets(self, namespace: str, repository: dict[str, Any]) -> list[dict[str, str]]:
        """The movers' envFrom: the password Secret, by name, in the mover's own namespace."""
        return [secret_of(self.objects, namespace, repository["encryption"]["passwordSecretRef"]["name"])]

    def _run(self, job: KopiurJob, volumes: dict[str, Path], stdout: Path | None = None) -> MoverRun:
        """The job's commands in one container; with `stdout`, the last one's output is kept there."""
        binds = [(volumes[role], job.mounts[role]) for role in volumes]
        for role, path in volumes.items():
            if role != "repository":  # kubelet's fsGroup handling; an NFS export gets none
                set_volume_ownership(path, job.fs_group)
        commands = [" ".join(shlex.quote(part) for part in command) for command in job.commands]
        if stdout is not None:
            stdout.parent.chmod(0o777)
            binds.append((stdout.parent, "/out"))
            commands[-1] += f" > /out/{stdout.name}"
        return run_container(["bash", "-c", " && ".join(commands)], {**job.env, "PATH": "/opt/engine:/usr/bin:/bin"},
                             binds, job.run_as_user, job.run_as_group, job.groups)

    def backup(self, namespace: str, policy: str, data: Path) -> MoverRun:
        body = self.objects[("SnapshotPolicy", namespace, policy)]
        repository = self._repository(body["spec"])
        return self._run(backup_job(body, repository, self._secrets(namespace, repository)),
                         {"repository": self.export, "data": data})

    def listing(self, namespace: str, restore: str) -> list[dict[str, Any]]:
        body = self.objects[("Restore", namespace, restore)]
        repository = self._repository(body["spec"])
        out = self.folders(f"out-{time.monotonic_ns()}") / "listing.json"
        ok(self._run(listing_job(body, repository, self._secrets(namespace, repository)), {"repository": self.export}, out))
        return json.loads(out.read_text())

    def restore(self, namespace: str, restore: str, target: Path) -> str:
        """Pick as the mover does, then restore; returns the snapshot id restored."""
        body = self.objects[("Restore", namespace, restore)]
        repository = self._repository(body["spec"])
        chosen = pick(body, json.dumps(self.listing(namespace, restore)))
        assert chosen is not None, f"no snapshot for {restore}: onMissingSnapshot {body['spec']['policy']}"
        ok(self._run(restore_job(body, repository, self._secrets(namespace, repository), chosen),
                     {"repository": self.export, "restore": target}))
        return chosen


def only(objects: Objects, kind: str, namespace: str, prefix: str) -> str:
    (name,) = [n for k, ns, n in objects if (k, ns) == (kind, namespace) and n.startswith(prefix)]
    return name


def test_kopiur_reads_restores_and_continues_the_history_the_fork_wrote(engine, folders):
    fork = Cluster(folders, render(STACK, repositories=[NAS]))
    write_tree(folders("pvc/radarr"), 1000, {"version.txt": b"one\n", "radarr.db": b"first\n"})
    ok(fork.backup("media", "radarr-nas", folders("pvc/radarr")))
    write_tree(folders("pvc/radarr"), 1000, {"version.txt": b"two\n"})
    ok(fork.backup("media", "radarr-nas", folders("pvc/radarr")))
    kopiur = Kopiur(on_kopiur(), fork.export, folders)

    # The bootstrap Restore's identity lists exactly the fork's two snapshots of radarr.
    listed = kopiur.listing("media", "radarr-bootstrap")
    assert len(listed) == 2
    assert {(s["source"]["userName"], s["source"]["host"], s["source"]["path"]) for s in listed} == {("radarr", "media", "/data")}
    # ...and restores the newest, as a rebuilt claim would be filled.
    kopiur.restore("media", "radarr-bootstrap", folders("filled"))
    assert tree(folders("filled")) == {"version.txt": b"two\n", "radarr.db": b"first\n"}

    # A Kopiur backup joins that history: three snapshots, and the fork's own restore reads it.
    write_tree(folders("pvc/radarr"), 1000, {"version.txt": b"three\n"})
    ok(kopiur.backup("media", "radarr-nas", folders("pvc/radarr")))
    assert len(kopiur.listing("media", "radarr-bootstrap")) == 3
    ok(fork.restore("media", "radarr-bootstrap", folders("by-the-fork")))
    assert tree(folders("by-the-fork"))["version.txt"] == b"three\n"
    # The other app's history is its own.
    assert kopiur.listing("media", "sabnzbd-bootstrap") == []


def test_a_kopiur_restore_into_the_live_claim_reads_previous_and_as_of_as_the_fork_did(engine, folders):
    fork = Cluster(folders, render(STACK, repositories=[NAS]))
    cut = backed_up_around_an_instant(fork, folders("pvc/radarr"))
    apps = stack_config(STACK)["apps"]

    def restored(request: dict[str, Any]) -> dict[str, bytes]:
        objects = on_kopiur(apps=[{**apps[0], "restore": request}, apps[1]])
        live = folders(f"live-{len(list(folders('.').iterdir()))}")
        write_tree(live, 1000, {"version.txt": b"live\n", "radarr.db-wal": b"stale write-ahead log\n"})
        Kopiur(objects, fork.export, folders).restore("media", only(objects, "Restore", "media", "radarr-restore-"), live)
        return tree(live)

    # Files the snapshot lacks go (enableFileDeletion: --delete-extra), as with the fork.
    assert restored({"previous": 0}) == {"version.txt": b"after\n"}
    assert restored({"previous": 1}) == {"version.txt": b"before\n"}
    local = cut.astimezone().isoformat()  # the config's time in any offset; Kopiur gets UTC
    assert restored({"restoreAsOf": local}) == {"version.txt": b"before\n"}


def test_a_new_app_under_kopiur_starts_empty(engine, folders):
    """onMissingSnapshot: Continue on the bootstrap: no snapshot, nothing picked, an empty claim."""
    fork = Cluster(folders, render(STACK, repositories=[NAS]))
    write_tree(folders("pvc/sabnzbd"), 568, {"sabnzbd.ini": b"[misc]\n"})
    ok(fork.backup("media", "sabnzbd-nas", folders("pvc/sabnzbd")))  # the repository exists, radarr has nothing
    objects = on_kopiur()
    restore = objects[("Restore", "media", "radarr-bootstrap")]
    assert restore["spec"]["policy"] == {"onMissingSnapshot": "Continue"}
    listed = Kopiur(objects, fork.export, folders).listing("media", "radarr-bootstrap")
    assert listed == [] and pick(restore, json.dumps(listed)) is None


def test_kopiurs_backup_alerts_fire_on_a_stale_or_failing_policy_and_clear(tmp_path):
    """The rendered Kopiur rules, judged by promtool on series shaped as Kopiur exports them
    (metrics.rs): per policy the end time of its newest succeeded snapshot, and the failures since.
    promtool's clock starts at 0; the values are the test's."""
    objects = on_kopiur()
    # An hourly schedule: stale after two missed runs and an hour (3h), then `for: 10m`. A backup
    # ends at minute 1 and the next only at minute 200 (late); from then its end time is the newest.
    series = {"kopiur_policy_last_backup_success_timestamp_seconds": f"60+0x199 {200 * 60}+0x60"}
    promtool_alerts(tmp_path, objects, "BackupStaleNas", {"namespace": "media", "policy": "radarr-nas"}, series,
                    {"150m": False, "185m": False, "192m": True, "199m": True, "205m": False})
    failing = {"kopiur_snapshot_consecutive_failures": "0+0x9 1+0x9 2+0x9 0+0x9"}
    promtool_alerts(tmp_path, objects, "KopiurBackupFailing", {"namespace": "media", "name": "radarr-nas"}, failing,
                    {"9m": False, "14m": False, "16m": True, "29m": True, "31m": False})
    # A failed maintenance Job of Kopiur's (`<repo>-f-<slot>`, kept an hour, then gone).
    failed = {"kube_job_status_failed": "0+0x9 1+0x19 _x20"}
    promtool_alerts(tmp_path, objects, "KopiaMaintenanceFailure",
                    {"namespace": "volsync-system", "job_name": "nas-f-1764723600"}, failed,
                    {"9m": False, "13m": False, "16m": True, "29m": True, "40m": False})
