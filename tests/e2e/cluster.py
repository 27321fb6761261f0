"""One rendered stack's Jobs against one NFS export, and the helpers the scenarios share."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Optional

from . import controller
from .conftest import Objects, secret_of
from .mover import MoverRun, run

SECRET = "volsync-kopia-nas"
EXPORT = "/mnt/repository"  # where every Job mounts the NFS export (moverVolumes mountPath)


def write_tree(root: Path, owner: int, files: dict[str, bytes], mode: int = 0o600) -> dict[str, bytes]:
    """The app's files, owned by the app's uid and private to it, as an app writes them."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
    for path in [root, *root.rglob("*")]:
        os.chown(path, owner, owner)
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class Cluster:
    """The Jobs of one rendered stack against one NFS export, each with a cache of its own."""

    def __init__(self, folders: Callable[[str], Path], objects: Objects) -> None:
        self.folders, self.objects = folders, objects
        self.export = folders("export")
        os.chmod(self.export, 0o777)  # an export every mover may write to: Kopia's own modes are the test

    def backup(self, namespace: str, source: str, data: Path) -> MoverRun:
        body = self.objects[("ReplicationSource", namespace, source)]
        job = controller.source_job(body, secret_of(self.objects, namespace, body["spec"]["kopia"]["repository"]))
        return run(job, {EXPORT: self.export}, data, self.folders(f"cache/src-{namespace}-{source}"))

    def restore(self, namespace: str, destination: str, target: Path) -> MoverRun:
        body = self.objects[("ReplicationDestination", namespace, destination)]
        job = controller.destination_job(body, secret_of(self.objects, namespace, body["spec"]["kopia"]["repository"]))
        return run(job, {EXPORT: self.export}, target, self.folders(f"cache/dst-{namespace}-{destination}"))

    def maintain(self) -> MoverRun:
        body = self.objects[("KopiaMaintenance", "volsync-system", "kopia-nas")]
        job = controller.maintenance_job(body, secret_of(self.objects, "volsync-system", SECRET))
        return run(job, {EXPORT: self.export}, None, self.folders("cache/maintenance"))


def backed_up_around_an_instant(cluster: Cluster, data: Path) -> datetime:
    """Two backups of radarr by the fork's mover, `before` then `after`, and the whole second
    between them: a restore as of it must pick `before`."""
    write_tree(data, 1000, {"version.txt": b"before\n"})
    ok(cluster.backup("media", "radarr-nas", data))
    cut = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(max(0.0, (cut - datetime.now(UTC)).total_seconds()) + 1.2)  # the next backup starts after `cut`
    write_tree(data, 1000, {"version.txt": b"after\n"})
    ok(cluster.backup("media", "radarr-nas", data))
    return cut


def ok(result: MoverRun) -> MoverRun:
    assert result.returncode == 0, result.output[-4000:]
    return result


def container_env(objects: Objects, namespace: str, container: dict,
                  key_of: Optional[Callable[[str, str, str], str]] = None) -> dict[str, str]:
    """A container's environment as kubelet builds it: envFrom Secrets, then env entries; a
    secretKeyRef through `key_of(namespace, secret, key)` when given (a Secret the program does
    not render itself), else from the rendered Secret."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        env.update(secret_of(objects, namespace, source["secretRef"]["name"]))
    for entry in container.get("env") or ():
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = (key_of(namespace, ref["name"], ref["key"]) if key_of
                                  else secret_of(objects, namespace, ref["name"])[ref["key"]])
    return env
