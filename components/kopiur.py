"""Typed specs of the Kopiur custom resources this program emits (`kopiur.home-operations.com/v1alpha1`).

Only the fields we set are modelled, with the CRD's camelCase names; `to_wire()` drops unset
fields. The conformance tests check every rendered object against Kopiur's CRDs in
../shared/crds/kopiur (release 0.10.7/0.10.8), and `make e2e` has a real API server accept them.
"""

from __future__ import annotations

from typing import Literal, Optional

from backup_contract import KOPIUR_GROUP
from pydantic import Field

from .volsync import PodSecurityContext, Spec

API_VERSION = f"{KOPIUR_GROUP}/v1alpha1"


class SecretRef(Spec):
    name: str
    namespace: Optional[str] = None
    key: Optional[str] = None


class S3Auth(Spec):
    secret_ref: SecretRef


class S3Tls(Spec):
    disable_tls: Optional[bool] = None


class S3Backend(Spec):
    bucket: str
    endpoint: str
    region: Optional[str] = None
    tls: Optional[S3Tls] = None
    auth: S3Auth


class NfsVolume(Spec):
    server: str
    path: str


class ClaimVolume(Spec):
    name: str


class FilesystemVolume(Spec):
    nfs: Optional[NfsVolume] = None
    pvc: Optional[ClaimVolume] = None


class FilesystemBackend(Spec):
    path: str
    volume: FilesystemVolume


class Backend(Spec):
    s3: Optional[S3Backend] = None
    filesystem: Optional[FilesystemBackend] = None


class Encryption(Spec):
    password_secret_ref: SecretRef


class Cron(Spec):
    cron: str
    jitter: Optional[str] = None
    """A Go duration: Kopiur delays each run by up to this much."""


class MaintenanceSchedule(Spec):
    quick: Cron
    full: Cron


class RepositoryMaintenance(Spec):
    enabled: bool
    namespace: Optional[str] = None
    schedule: Optional[MaintenanceSchedule] = None
    takeover_policy: Optional[Literal["Never", "PromptCondition", "Force"]] = None
    mover: Optional[Mover] = None


class Catalog(Spec):
    adoption: Literal["Adopt", "Ignore"]
    """`Adopt`: a discovered snapshot whose identity is a live policy's joins that policy's
    history, and its retention prunes it; otherwise it stays forever."""


class AllowedNamespaces(Spec):
    list_: tuple[str, ...] = Field(alias="list")


class Create(Spec):
    enabled: bool
    """Create the repository when it does not exist yet (idempotent: an existing one is connected)."""


class ServerSecretRef(Spec):
    name: str
    username_key: str
    password_key: str


class ServerAuth(Spec):
    secret_ref: ServerSecretRef
    """The login, from a Secret in the server's namespace (Kopiur reads the username from it)."""


class ServerService(Spec):
    port: int


class RepositoryServer(Spec):
    """Kopiur's web UI: `kopia server start --insecure --ui` in a Deployment `<repo>-kopia-ui`
    with a Service of that name (port `http`), in `namespace`; TLS is the Ingress's."""

    namespace: str
    auth: ServerAuth
    read_only: bool
    service: ServerService
    pod_security_context: PodSecurityContext


class ClusterRepositorySpec(Spec):
    allowed_namespaces: AllowedNamespaces
    backend: Backend
    encryption: Encryption
    maintenance: RepositoryMaintenance
    catalog: Catalog
    create: Create
    mode: Literal["ReadWrite", "ReadOnly"]
    server: Optional[RepositoryServer] = None


class RepositoryRef(Spec):
    kind: Literal["Repository", "ClusterRepository"]
    name: str


class ReplicationSync(Spec):
    delete_extra: bool
    """`sync-to --delete`: blobs only the copy has are pruned, so it stays an exact copy."""


class RepositoryReplicationSpec(Spec):
    source_ref: RepositoryRef
    destination: Backend
    schedule: Cron
    suspend: bool
    sync: ReplicationSync
    mover: Mover


class Identity(Spec):
    username: str
    hostname: str


class PvcSource(Spec):
    name: str


class Source(Spec):
    pvc: PvcSource
    source_path_override: str
    """The path the snapshots are recorded under; also where the PVC is mounted in the mover."""


class Retention(Spec):
    keep_latest: int
    keep_hourly: int
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    keep_annual: int


class Cache(Spec):
    capacity: Optional[str] = None
    storage_class_name: Optional[str] = None


class Mover(Spec):
    pod_security_context: PodSecurityContext
    cache: Optional[Cache] = None


class DeepVerification(Spec):
    schedule: Cron
    capacity: Optional[str] = None
    storage_class_name: Optional[str] = None


class Verification(Spec):
    deep: DeepVerification


class Compression(Spec):
    compressor: str
    """A kopia compressor name (`zstd-fastest`)."""


class PodSelector(Spec):
    match_labels: dict[str, str]


class WorkloadExec(Spec):
    pod_selector: PodSelector
    container: Optional[str] = None
    command: tuple[str, ...]
    timeout: Optional[str] = None
    continue_on_failure: bool


class HttpRequest(Spec):
    url: str
    method: str
    timeout: Optional[str] = None
    continue_on_failure: bool


class HookStep(Spec):
    """Exactly one of the two."""

    workload_exec: Optional[WorkloadExec] = None
    http_request: Optional[HttpRequest] = None


class Hooks(Spec):
    before_snapshot: tuple[HookStep, ...] = ()
    after_snapshot: tuple[HookStep, ...] = ()


class SnapshotPolicySpec(Spec):
    repository: RepositoryRef
    identity: Identity
    sources: tuple[Source, ...]
    copy_method: Literal["Snapshot", "Clone", "Direct"]
    retention: Retention
    volume_snapshot_class_name: Optional[str] = None
    compression: Optional[Compression] = None
    mover: Mover
    verification: Optional[Verification] = None
    hooks: Optional[Hooks] = None


class PolicyRef(Spec):
    name: str


class SnapshotScheduleSpec(Spec):
    policy_ref: PolicyRef
    schedule: Cron


class IdentitySource(Spec):
    username: str
    hostname: str
    source_path: str
    offset: Optional[int] = None
    as_of: Optional[str] = None


class RestoreSource(Spec):
    identity: IdentitySource


class RestoreTarget(Spec):
    """Exactly one of the two (the CRD's CEL rule)."""

    populator: Optional[dict[str, str]] = None
    """`{}`: the PVC whose `dataSourceRef` names this Restore is filled."""
    pvc_ref: Optional[ClaimVolume] = None
    """An existing claim, written into (a restore into the app's live claim)."""


class RestorePolicy(Spec):
    on_missing_snapshot: Literal["Fail", "Continue"]


class RestoreOptions(Spec):
    enable_file_deletion: Optional[bool] = None
    """kopia's `--delete-extra`: files the snapshot does not have are removed from the target."""


class RestoreSpec(Spec):
    repository: RepositoryRef
    source: RestoreSource
    target: RestoreTarget
    policy: RestorePolicy
    options: Optional[RestoreOptions] = None
    mover: Optional[Mover] = None


class SnapshotSpec(Spec):
    policy_ref: PolicyRef


RepositoryMaintenance.model_rebuild()
RepositoryReplicationSpec.model_rebuild()
