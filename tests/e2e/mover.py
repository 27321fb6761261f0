"""Run the fork's real mover script with real Kopia, as the controller's Job would run it.

Each run gets a private mount namespace (`unshare -m`) and a small root of its own: the host's
/usr, /etc and /dev, the Job's volumes bound where the pod has them (/data or /restore/data,
/cache, /mnt/<mountPath> for moverVolumes), `entry.sh` at /mover-kopia/entry.sh and Kopia from
.engine/bin on PATH. The script then runs with exactly the Job's environment (`env -i`), under
the Job's uid and groups (`setpriv`), so paths, identity and file permissions are the ones a
cluster would see. Needs root (mount namespaces, chroot, uid changes); tests fail, with that
reason, where it is missing.

Before each run the harness does what kubelet does for a volume with fsGroup (volume ownership
management, pkg/volume/volume_linux.go SetVolumeOwnership): group set to fsGroup, group
read/write added, directories setgid. NFS volumes get none of that, as in a cluster.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .controller import DESTINATION_DATA, MoverJob

PROJECT_DIR = Path(__file__).resolve().parents[2]
ENGINE_BIN = PROJECT_DIR / ".engine" / "bin"
ENTRY_SH = PROJECT_DIR.parent / "shared" / "volsync-mover" / "entry.sh"


@dataclass(frozen=True)
class MoverRun:
    returncode: int
    output: str

    @property
    def restored_nothing(self) -> bool:
        """The mover's own words when it found no snapshot: it still exits 0 (do_restore)."""
        return "=== No data will be restored ===" in self.output


def set_volume_ownership(volume: Path, fs_group: Optional[int]) -> None:
    """kubelet's fsGroup handling of a volume that supports ownership management."""
    if fs_group is None:
        return
    for path in [volume, *volume.rglob("*")]:
        if path.is_symlink():
            continue
        os.chown(path, -1, fs_group)
        mode = path.stat().st_mode
        extra = (stat.S_IRGRP | stat.S_IWGRP | stat.S_IXGRP | stat.S_ISGID) if path.is_dir() else (stat.S_IRGRP | stat.S_IWGRP)
        os.chmod(path, stat.S_IMODE(mode) | extra)


def run(job: MoverJob, volumes: Mapping[str, Path], data: Optional[Path], cache: Path,
        timeout: float = 180) -> MoverRun:
    """Run `job`: `volumes` maps each of its repository mounts (/mnt/<mountPath>) to a host folder,
    `data` is the data volume (None for maintenance), `cache` the cache volume."""
    missing = set(job.repository_mounts) - set(volumes)
    if missing:
        raise ValueError(f"no host folder for the Job's volumes {sorted(missing)}")
    for path in (data, cache):
        if path is not None:
            set_volume_ownership(path, job.fs_group)
    for mount, source in job.repository_mounts.items():
        if "persistentVolumeClaim" in source:  # a PVC gets fsGroup; an NFS export does not
            set_volume_ownership(volumes[mount], job.fs_group)
    restore_parent = cache.parent / f"{cache.name}-restore"  # the Job's `restore` emptyDir
    binds: list[tuple[Path, str]] = [(cache, "/cache"), (ENTRY_SH, "/mover-kopia/entry.sh")]
    if data is not None and job.data_path == DESTINATION_DATA:
        restore_parent.mkdir(exist_ok=True)
        set_volume_ownership(restore_parent, job.fs_group)
        binds += [(restore_parent, "/restore"), (data, DESTINATION_DATA)]
    elif data is not None:
        binds.append((data, job.data_path or "/data"))
    binds += [(volumes[mount], mount) for mount in job.repository_mounts]
    env = {**job.env, "PATH": "/opt/engine:/usr/bin:/bin", "HOME": "/tmp"}
    try:
        return run_container(["bash", "/mover-kopia/entry.sh", *job.args], env, binds,
                             job.run_as_user, job.run_as_group, job.groups, timeout=timeout)
    finally:
        shutil.rmtree(restore_parent, ignore_errors=True)


def run_container(command: list[str], env: Mapping[str, str], binds: list[tuple[Path, str]], uid: int,
                  gid: Optional[int], groups: tuple[int, ...], isolated_network: bool = False,
                  timeout: float = 180) -> MoverRun:
    """`command` in its own mount namespace and root, with `binds`, exactly `env`, as `uid` with
    `groups`; with `isolated_network`, also in a network namespace that has only loopback (a
    server there is reachable from nowhere else)."""
    binds = [*binds, (ENGINE_BIN, "/opt/engine")]
    identity = ["setpriv", f"--reuid={uid}", f"--regid={gid if gid is not None else 0}",
                f"--groups={','.join(str(g) for g in groups) or str(gid or 0)}"]
    script = _namespace_script(binds, identity + ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *command],
                               loopback=isolated_network)
    namespaces = ["unshare", "-m", *(["-n"] if isolated_network else []), "--propagation", "private"]
    done = subprocess.run([*namespaces, "bash", "-c", script], capture_output=True, text=True, timeout=timeout)
    return MoverRun(done.returncode, done.stdout + done.stderr)


def _namespace_script(binds: list[tuple[Path, str]], command: list[str], loopback: bool = False) -> str:
    lines = [
        "set -e",
        *(["ip link set lo up"] if loopback else []),
        'R=$(mktemp -d); chmod 755 "$R"',
        'for d in bin lib lib64 sbin; do ln -s "usr/$d" "$R/$d"; done',
        'for d in usr etc dev; do mkdir "$R/$d"; mount --rbind "/$d" "$R/$d"; done',
        'mkdir -p "$R/proc" "$R/tmp" && chmod 1777 "$R/tmp" && mount -t proc proc "$R/proc"',
    ]
    for source, target in binds:
        make = "touch" if source.is_file() else "mkdir -p"
        lines.append(f'mkdir -p "$R{os.path.dirname(target)}" && {make} "$R{target}" && mount --bind {shlex.quote(str(source))} "$R{target}"')
    lines.append('exec chroot "$R" ' + " ".join(shlex.quote(part) for part in command))
    return "\n".join(lines)
