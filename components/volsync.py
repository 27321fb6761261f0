"""Typed specs of the VolSync (Kopia-mover fork) custom resources this program emits.

Only the fields we set are modelled, with the CRD's camelCase names as aliases. A spec is
validated when it is built, before it becomes a resource, and `to_wire()` drops unset fields so
the object carries exactly what we decided. The conformance tests check every rendered object
against the upstream CRD schemas in ../shared/crds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from .labels import VOLSYNC_GROUP

if TYPE_CHECKING:
    from .config import MoverIdentity

API_VERSION = f"{VOLSYNC_GROUP}/v1alpha1"

#: Where a `moverVolumes` entry with mountPath `repository` appears in the mover pod; a
#: filesystem Kopia repository must be addressed there.
REPOSITORY_MOUNT = "repository"
FILESYSTEM_REPOSITORY_URL = f"filesystem:///mnt/{REPOSITORY_MOUNT}"

CopyMethod = Literal["Snapshot", "Clone", "Direct", "None"]


class Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The spec as the CRD spells it, without unset fields or empty lists."""
        wire: dict[str, Any] = _drop_empty(self.model_dump(by_alias=True, exclude_none=True))
        return wire


def _drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_empty(v) for k, v in value.items() if v != [] and v != ()}
    if isinstance(value, (list, tuple)):
        return [_drop_empty(v) for v in value]
    return value


class NfsVolumeSource(Spec):
    server: str
    path: str
    read_only: Optional[bool] = None


class ClaimVolumeSource(Spec):
    claim_name: str
    read_only: Optional[bool] = None


class MoverVolumeSource(Spec):
    nfs: Optional[NfsVolumeSource] = None
    persistent_volume_claim: Optional[ClaimVolumeSource] = None


class MoverVolume(Spec):
    mount_path: str
    volume_source: MoverVolumeSource


class PodSecurityContext(Spec):
    run_as_user: int
    run_as_group: int
    fs_group: int
    run_as_non_root: Optional[bool] = None


def security_context_for(identity: MoverIdentity) -> PodSecurityContext:
    """The pod-level context a mover runs with: the identity (uid, gid, fsGroup) that can read
    the app's files, and non-root unless the identity is root."""
    return PodSecurityContext(
        run_as_user=identity.run_as_user,
        run_as_group=identity.run_as_group,
        fs_group=identity.fs_group,
        run_as_non_root=identity.run_as_user != 0,
    )


class Trigger(Spec):
    schedule: Optional[str] = None
    manual: Optional[str] = None


class Retain(Spec):
    latest: int
    hourly: int
    daily: int
    weekly: int
    monthly: int
    yearly: int


class KopiaSourceOptions(Spec):
    repository: str
    username: str
    hostname: str
    """The Kopia identity of the snapshots; VolSync's default is `<source name>@<namespace>`."""
    copy_method: CopyMethod
    compression: str
    retain: Retain
    mover_security_context: PodSecurityContext
    cache_capacity: str
    cache_storage_class_name: Optional[str] = None
    storage_class_name: Optional[str] = None
    volume_snapshot_class_name: Optional[str] = None
    mover_volumes: tuple[MoverVolume, ...] = ()


class ReplicationSourceSpec(Spec):
    source_pvc: str = Field(alias="sourcePVC")
    trigger: Trigger
    kopia: KopiaSourceOptions


class KopiaDestinationOptions(Spec):
    """Either `destination_pvc` (restore into an existing claim) or capacity + accessModes."""

    repository: str
    username: str
    hostname: str
    """The history to read: explicit fields win over `sourceIdentity` in the fork (builder.go)."""
    copy_method: CopyMethod
    capacity: Optional[str] = None
    access_modes: Optional[tuple[str, ...]] = None
    storage_class_name: Optional[str] = None
    volume_snapshot_class_name: Optional[str] = None
    destination_pvc: Optional[str] = Field(default=None, alias="destinationPVC")
    enable_file_deletion: Optional[bool] = None
    cleanup_temp_pvc: Optional[bool] = Field(default=None, alias="cleanupTempPVC")
    cleanup_cache_pvc: Optional[bool] = Field(default=None, alias="cleanupCachePVC")
    mover_security_context: PodSecurityContext
    cache_capacity: str
    cache_storage_class_name: Optional[str] = None
    mover_volumes: tuple[MoverVolume, ...] = ()
    previous: Optional[int] = None
    restore_as_of: Optional[str] = None

    @model_validator(mode="after")
    def _one_destination(self) -> KopiaDestinationOptions:
        provisioned = self.capacity is not None and self.access_modes is not None
        if (self.destination_pvc is not None) == provisioned:
            raise ValueError("set destinationPVC, or capacity and accessModes, not both or neither")
        return self


class ReplicationDestinationSpec(Spec):
    trigger: Trigger
    kopia: KopiaDestinationOptions


class MaintenanceRepository(Spec):
    repository: str


class KopiaMaintenanceSpec(Spec):
    repository: MaintenanceRepository
    trigger: Trigger
    mover_volumes: tuple[MoverVolume, ...] = ()
    pod_security_context: Optional[PodSecurityContext] = None
    cache_capacity: Optional[str] = None
    cache_storage_class_name: Optional[str] = None
