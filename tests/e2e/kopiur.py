"""What Kopiur (0.10.x) runs for a SnapshotPolicy and a Restore, from its objects.

Kopiur is in no registry this project builds from (a Rust operator, AGPL-3.0), so its mover
cannot run here. This module is the mapping written down instead, read from
github.com/home-operations/kopiur: the controller's job builders (`crates/controller/src/
snapshot/build.rs`, `expand.rs`, `restore/mod.rs`, `restore/plan.rs`), the mover
(`crates/mover/src/main.rs`, `jobs.rs`), the kopia argv builder (`crates/kopia/src/client/
mod.rs`, `selection.rs`) and the identity rules (`crates/api/src/identity.rs`), at the commits
the search index held in December 2026 (the newest after release 0.10.8). Real Kopia then runs
exactly these commands against a repository the fork's entry.sh wrote (test_kopiur_mover.py).

| object field | what Kopiur does with it | the fork (entry.sh, controller.py) |
|---|---|---|
| `SnapshotPolicy.identity.username`/`hostname` + `sources[0].sourcePathOverride` | `snapshot create <override> --override-source user@host:<override>` (identity.rs: the source path is the override) | `KOPIA_OVERRIDE_USERNAME`/`HOSTNAME`, path `/data` |
| `sources[0].pvc` + `sourcePathOverride` | the claim mounted at the override (read-only; the test binds it writable): mount path and recorded path are one (build.rs) | mounted at `/data` |
| no `sourcePathOverride` | mounted and recorded at `/pvc/<claim>`: a new history | - |
| `compression.compressor` | `policy set user@host:<path> --compression <c>` before each backup | `KOPIA_COMPRESSION` |
| `retention.keep*` | not kopia's: `policy set user@host --keep-<tier> 2147483647` on every backup; the operator prunes Snapshot objects, newest first by end time, keeping the union of the tiers set (an unset tier keeps none, no `retention` never prunes) | `KOPIA_RETAIN_*` as kopia's own policy |
| (every backup) | `--tags kopiur:config:<policy>`, `--no-auto-maintenance` | kopia's auto-maintenance off, `maintenance@volsync` owns it |
| backend `filesystem.path` + `volume.nfs` | the export mounted at `path`; `repository connect filesystem --path <path>` | `/mnt/<moverVolumes.mountPath>` |
| backend `s3` | `repository connect s3 --bucket [--endpoint] [--prefix] [--region] [--disable-tls]`, the prefix passed as written | `KOPIA_REPOSITORY` s3 URL |
| `encryption.passwordSecretRef` + `s3.auth.secretRef` | `envFrom` of both Secrets, in the mover's own namespace: `KOPIA_PASSWORD`, `AWS_*` | the repository Secret's keys |
| `mover.podSecurityContext` | the mover pod's security context | `moverSecurityContext` |
| `Restore.source.identity{username, hostname, sourcePath}` | `snapshot list --json user@host:<sourcePath>` | `snapshot list` of `user@host:/data` |
| `identity.offset` | index into that list sorted newest first by **endTime** (0, the default, is the newest; past the end: no snapshot) | `KOPIA_PREVIOUS`, newest first by start time |
| `identity.asOf` | keeps snapshots with **endTime** at or before it, then the offset | `KOPIA_RESTORE_AS_OF`, compared with **startTime** as a string |
| `policy.onMissingSnapshot` | `Continue`: the target stays empty, the run succeeds; `Fail`: the run fails (after `waitTimeout`) | no snapshot: an empty volume, exit 0 |
| `target.populator` / `target.pvcRef` | the (prime or named) claim mounted read-write at `/restore`; `snapshot restore <id> /restore` | `/restore/data` |
| `options.enableFileDeletion` | `--delete-extra` (never `--no-delete-extra`) | `KOPIA_ENABLE_FILE_DELETION` |

The one difference that can pick another snapshot: `asOf` against the end time where the fork
compared the start time, so a snapshot running across the given instant is the one restored by
the fork and the one before it by Kopiur.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

#: restore/mod.rs: where the target claim is mounted in a restore Job.
RESTORE_MOUNT = "/restore"
#: mover main.rs: kopia's create-time retention disabled at the identity scope (KOPIA_KEEP_MAX).
KEEP_MAX = str(2**31 - 1)
#: The kopia tiers Kopiur pins at every backup.
KOPIA_TIERS = ("latest", "hourly", "daily", "weekly", "monthly", "annual")


@dataclass(frozen=True)
class KopiurJob:
    """One Kopiur mover run: its shell commands, environment, identity and mounts."""

    commands: tuple[tuple[str, ...], ...]
    env: dict[str, str]
    run_as_user: int
    run_as_group: Optional[int]
    groups: tuple[int, ...]
    fs_group: Optional[int]
    mounts: dict[str, str]
    """Where each volume is mounted, by role: `repository`, `data`, `restore`."""


def _identity(security: Mapping[str, Any]) -> tuple[int, Optional[int], tuple[int, ...], Optional[int]]:
    """uid, gid, the process's groups (kubelet: the primary one, fsGroup, supplementalGroups), fsGroup."""
    gid, fs_group = security.get("runAsGroup"), security.get("fsGroup")
    groups = tuple(dict.fromkeys(g for g in (gid, fs_group, *(security.get("supplementalGroups") or ())) if g is not None))
    return int(security["runAsUser"]), gid, groups, fs_group


def connect(repository: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, str]]:
    """`repository connect` for the ClusterRepository's backend, and where its volume goes."""
    backend = repository["backend"]
    if "filesystem" in backend:
        path = backend["filesystem"]["path"]
        return ("kopia", "repository", "connect", "filesystem", f"--path={path}", "--no-auto-maintenance"), \
            {"repository": path}
    s3 = backend["s3"]
    argv = ["kopia", "repository", "connect", "s3", f"--bucket={s3['bucket']}"]
    for key in ("endpoint", "prefix", "region"):
        if s3.get(key):
            argv.append(f"--{key}={s3[key]}")
    if (s3.get("tls") or {}).get("disableTls"):
        argv.append("--disable-tls")
    return (*argv, "--no-auto-maintenance"), {}


def environment(secrets: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """jobs.rs/creds.rs: the password Secret, then the backend's auth Secret, as `envFrom`."""
    env = {"KOPIA_CHECK_FOR_UPDATES": "false", "HOME": "/tmp"}
    for secret in secrets:
        env.update({k: str(v) for k, v in secret.items()})
    return env


def backup_job(policy: Mapping[str, Any], repository: Mapping[str, Any], secrets: Sequence[Mapping[str, str]]) -> KopiurJob:
    """A SnapshotPolicy's backup run (build.rs, main.rs, client/mod.rs)."""
    spec, name = policy["spec"], policy["metadata"]["name"]
    (source,) = spec["sources"]
    path = source.get("sourcePathOverride") or f"/pvc/{source['pvc']['name']}"
    identity = f"{spec['identity']['username']}@{spec['identity']['hostname']}"
    attach, mounts = connect(repository)
    commands = [attach]
    if (spec.get("compression") or {}).get("compressor"):
        commands.append(("kopia", "policy", "set", f"{identity}:{path}", f"--compression={spec['compression']['compressor']}"))
    commands.append(("kopia", "policy", "set", identity, *(f"--keep-{tier}={KEEP_MAX}" for tier in KOPIA_TIERS)))
    commands.append(("kopia", "snapshot", "create", path, "--json", f"--override-source={identity}:{path}",
                     f"--tags=kopiur:config:{name}", "--no-auto-maintenance"))
    return KopiurJob(tuple(commands), environment(secrets), *_identity(spec["mover"]["podSecurityContext"]),
                     mounts={**mounts, "data": path})


def listing_job(restore: Mapping[str, Any], repository: Mapping[str, Any], secrets: Sequence[Mapping[str, str]]) -> KopiurJob:
    """The mover's first step for a Restore by identity: the identity's snapshots, as JSON."""
    identity = restore["spec"]["source"]["identity"]
    source = f"{identity['username']}@{identity['hostname']}" + (f":{identity['sourcePath']}" if identity.get("sourcePath") else "")
    attach, mounts = connect(repository)
    return KopiurJob((attach, ("kopia", "snapshot", "list", "--json", source)), environment(secrets),
                     *_identity(restore["spec"]["mover"]["podSecurityContext"]), mounts=mounts)


def pick(restore: Mapping[str, Any], listing: str) -> Optional[str]:
    """selection.rs: newest first by end time, `asOf` keeps those ending at or before it, then
    `offset` (default 0); None when nothing is left (onMissingSnapshot decides what follows)."""
    identity = restore["spec"]["source"]["identity"]
    snapshots = sorted(json.loads(listing) or [], key=lambda s: _time(s["endTime"]), reverse=True)
    if identity.get("asOf"):
        cutoff = _time(identity["asOf"])
        snapshots = [s for s in snapshots if _time(s["endTime"]) <= cutoff]
    offset = max(0, int(identity.get("offset") or 0))
    return snapshots[offset]["id"] if offset < len(snapshots) else None


def restore_job(restore: Mapping[str, Any], repository: Mapping[str, Any], secrets: Sequence[Mapping[str, str]],
                snapshot: str) -> KopiurJob:
    """`snapshot restore <id> /restore` with the options' flags (client/mod.rs restore_args)."""
    spec = restore["spec"]
    attach, mounts = connect(repository)
    flags = ("--delete-extra",) if (spec.get("options") or {}).get("enableFileDeletion") else ()
    return KopiurJob((attach, ("kopia", "snapshot", "restore", snapshot, RESTORE_MOUNT, *flags)),
                     environment(secrets), *_identity(spec["mover"]["podSecurityContext"]),
                     mounts={**mounts, "restore": RESTORE_MOUNT})


def _time(value: str) -> datetime:
    """Kopia's RFC 3339 times carry nanoseconds; Python's parser takes microseconds. UTC only
    (`...Z`): Kopia's times are, and so is every `asOf` the program renders."""
    head, dot, rest = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + (("." + rest[:6]) if dot else "") + "+00:00")
