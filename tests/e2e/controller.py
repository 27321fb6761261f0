"""What the VolSync fork's controller (v0.17.11) gives a Kopia mover Job, from its objects.

The module proxy does not serve github.com/perfectra1n/volsync (its go.mod says
github.com/backube/volsync, and the proxy answers 403 for the fork's versions), so the fork's own
Go code cannot be linked into a test binary. This module is the mapping written down instead,
from `internal/controller/mover/kopia/mover.go` and `builder.go` (ReplicationSource and
-Destination movers) and `internal/controller/kopiamaintenance_controller.go` (maintenance Jobs)
at tag v0.17.11. Every row names the Go function it comes from; `tests/test_mover_env.py` has a
test per field.

Only the fields this program sets are mapped, plus the ones whose absence matters (a key the
controller reads from the Secret is copied only when the Secret has it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

#: mover.go constants.
SOURCE_DATA, DESTINATION_DATA, CACHE, MOVER_VOLUMES = "/data", "/restore/data", "/cache", "/mnt"

#: buildRepositoryEnvironmentVariables + buildAWSEnvironmentVariables (and the other backends'
#: builders): keys copied from the repository Secret when it has them. KOPIA_PASSWORD is required;
#: KOPIA_REPOSITORY is taken from the Secret unless a PVC in moverVolumes makes it a filesystem URL.
SECRET_KEYS = (
    "KOPIA_PASSWORD", "KOPIA_MANUAL_CONFIG", "KOPIA_REPOSITORY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION",
    "AWS_PROFILE", "AWS_S3_ENDPOINT", "KOPIA_S3_BUCKET", "KOPIA_S3_ENDPOINT", "KOPIA_S3_DISABLE_TLS",
    "AWS_S3_DISABLE_TLS",
)
#: addRetentionPolicyEnvVars: spec.kopia.retain.<key> -> KOPIA_RETAIN_<KEY>.
RETAIN_KEYS = ("hourly", "daily", "weekly", "monthly", "yearly", "latest")
#: builder.go: maxUsernameLength.
MAX_USERNAME = 50


@dataclass(frozen=True)
class MoverJob:
    """One mover container as the controller builds it: environment, arguments, identity, mounts."""

    env: dict[str, str]
    args: tuple[str, ...]
    """`backup` or `restore` (determineJobActions); none for maintenance (DIRECTION says it)."""
    data_path: Optional[str]
    """Where the data volume is mounted: /data (source), /restore/data (destination)."""
    run_as_user: int
    run_as_group: Optional[int]
    fs_group: Optional[int]
    supplemental_groups: tuple[int, ...] = ()
    repository_mounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """/mnt/<mountPath> -> the volume source (nfs or persistentVolumeClaim) of spec moverVolumes."""

    @property
    def groups(self) -> tuple[int, ...]:
        """The process's groups: the primary one, fsGroup and supplementalGroups (kubelet)."""
        found = [g for g in (self.run_as_group, self.fs_group, *self.supplemental_groups) if g is not None]
        return tuple(dict.fromkeys(found))


def sanitize_username(name: str) -> str:
    """builder.go sanitizeForIdentifier(allowUnderscore=true, allowDots=false), then the length
    cut of generateUsername."""
    kept = re.sub(r"[^A-Za-z0-9_-]", "", name).strip("-_")
    return (kept or "volsync-default")[:MAX_USERNAME]


def sanitize_hostname(name: str) -> str:
    """builder.go sanitizeForHostname: letters, digits, '-' and '.'; '_' becomes '-'."""
    kept = re.sub(r"[^A-Za-z0-9.-]", "", name.replace("_", "-")).strip("-.")
    return kept or "volsync-default"


def source_job(source: Mapping[str, Any], secret: Mapping[str, str]) -> MoverJob:
    """The Job of a ReplicationSource (builder.go createSourceMover, mover.go ensureJob)."""
    meta, kopia = source["metadata"], source["spec"]["kopia"]
    env = _common(kopia, secret, SOURCE_DATA)
    if kopia.get("compression"):
        env["KOPIA_COMPRESSION"] = kopia["compression"]  # addSourceEnvVars
    if kopia.get("parallelism") is not None:
        env["KOPIA_PARALLELISM"] = str(kopia["parallelism"])
    if kopia.get("sourcePathOverride"):
        env["KOPIA_SOURCE_PATH_OVERRIDE"] = kopia["sourcePathOverride"]
    for key in RETAIN_KEYS:  # addRetentionPolicyEnvVars
        if (kopia.get("retain") or {}).get(key) is not None:
            env[f"KOPIA_RETAIN_{key.upper()}"] = str(kopia["retain"][key])
    _additional_args(kopia, env)
    # addIdentityEnvironmentVariables with generateUsername/generateHostname
    env["KOPIA_OVERRIDE_USERNAME"] = kopia.get("username") or sanitize_username(meta["name"])
    env["KOPIA_OVERRIDE_HOSTNAME"] = kopia.get("hostname") or sanitize_hostname(meta["namespace"])
    return _job(kopia.get("moverSecurityContext"), env, ("backup",), SOURCE_DATA, kopia)


def destination_job(destination: Mapping[str, Any], secret: Mapping[str, str]) -> MoverJob:
    """The Job of a ReplicationDestination (builder.go FromDestination, mover.go
    addDestinationEnvVars)."""
    meta, kopia = destination["metadata"], destination["spec"]["kopia"]
    env = _common(kopia, secret, DESTINATION_DATA)
    for key, name in (("restoreAsOf", "KOPIA_RESTORE_AS_OF"), ("shallow", "KOPIA_SHALLOW"), ("previous", "KOPIA_PREVIOUS")):
        if kopia.get(key) is not None:
            env[name] = str(kopia[key])
    if kopia.get("enableFileDeletion"):
        env["KOPIA_ENABLE_FILE_DELETION"] = "true"
    _additional_args(kopia, env)
    identity = kopia.get("sourceIdentity") or {}
    namespace = identity.get("sourceNamespace") or meta["namespace"]
    env["KOPIA_OVERRIDE_USERNAME"] = kopia.get("username") or sanitize_username(identity.get("sourceName") or meta["name"])
    env["KOPIA_OVERRIDE_HOSTNAME"] = kopia.get("hostname") or sanitize_hostname(namespace)
    env["KOPIA_DISCOVER_SNAPSHOTS"] = "true"
    return _job(kopia.get("moverSecurityContext"), env, ("restore",), DESTINATION_DATA, kopia)


def maintenance_job(maintenance: Mapping[str, Any], secret: Mapping[str, str]) -> MoverJob:
    """A KopiaMaintenance's Job (kopiamaintenance_controller.go ensureMaintenanceJob): the whole
    repository Secret as environment (envFrom), DIRECTION=maintenance, identity maintenance@volsync
    (entry.sh's default: the controller sets no override), spec.podSecurityContext (default
    uid/fsGroup 1000)."""
    spec = maintenance["spec"]
    env = {key: str(value) for key, value in secret.items()}
    env.update({"DIRECTION": "maintenance", "DATA_DIR": SOURCE_DATA, "KOPIA_CACHE_DIR": CACHE})
    security = spec.get("podSecurityContext") or {"runAsUser": 1000, "fsGroup": 1000}
    return MoverJob(
        env=env, args=(), data_path=None,
        run_as_user=int(security.get("runAsUser", 1000)),
        run_as_group=security.get("runAsGroup"), fs_group=security.get("fsGroup"),
        supplemental_groups=tuple(security.get("supplementalGroups") or ()),
        repository_mounts=_mounts(spec),
    )


def _common(kopia: Mapping[str, Any], secret: Mapping[str, str], data_dir: str) -> dict[str, str]:
    """buildBasicEnvironmentVariables, buildRepositoryEnvironmentVariables, the backends' builders."""
    env = {"DATA_DIR": data_dir, "KOPIA_CACHE_DIR": CACHE}
    if "KOPIA_PASSWORD" not in secret:
        raise ValueError("the repository Secret has no KOPIA_PASSWORD: the controller refuses it")
    for key in SECRET_KEYS:
        if key in secret:
            env[key] = str(secret[key])
    claims = [v for v in kopia.get("moverVolumes") or () if "persistentVolumeClaim" in v["volumeSource"]]
    if claims:  # the first PVC in moverVolumes is the repository, whatever the Secret says
        env["KOPIA_REPOSITORY"] = f"filesystem://{MOVER_VOLUMES}/{claims[0]['mountPath']}"
    return env


def _additional_args(kopia: Mapping[str, Any], env: dict[str, str]) -> None:
    if kopia.get("additionalArgs"):  # addAdditionalArgsEnvVar
        env["KOPIA_ADDITIONAL_ARGS"] = "|VOLSYNC_ARG_SEP|".join(kopia["additionalArgs"])


def _mounts(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """utils.UpdatePodTemplateSpecWithMoverVolumes: each at /mnt/<mountPath>."""
    return {f"{MOVER_VOLUMES}/{v['mountPath']}": v["volumeSource"] for v in spec.get("moverVolumes") or ()}


def _job(security: Optional[Mapping[str, Any]], env: dict[str, str], args: tuple[str, ...], data: str,
         kopia: Mapping[str, Any]) -> MoverJob:
    """configureSecurityContext: moverSecurityContext is the pod's security context."""
    security = security or {}
    return MoverJob(
        env=env, args=args, data_path=data,
        run_as_user=int(security.get("runAsUser", 0)),
        run_as_group=security.get("runAsGroup"), fs_group=security.get("fsGroup"),
        supplemental_groups=tuple(security.get("supplementalGroups") or ()),
        repository_mounts=_mounts(kopia),
    )
