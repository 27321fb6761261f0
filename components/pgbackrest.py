"""Typed specs of the CloudNative-PG and Dalibo pgBackRest plugin objects this program emits."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from .volsync import Spec

PLUGIN_API_VERSION = "pgbackrest.dalibo.com/v1"
CNPG_API_VERSION = "postgresql.cnpg.io/v1"
PLUGIN_NAME = "pgbackrest.dalibo.com"
#: The keys of the Secrets the plugin reads (its `secretRef`s and `cipherConfig`).
ACCESS_KEY = "ACCESS_KEY_ID"
SECRET_KEY = "ACCESS_SECRET_KEY"
ENCRYPTION_KEY = "ENCRYPTION_PASS"


class SecretKeyRef(Spec):
    name: str
    key: str


class S3SecretRef(Spec):
    access_key_id: SecretKeyRef
    secret_access_key: SecretKeyRef


class RetentionPolicy(Spec):
    full: int
    full_type: Literal["count", "time"] = "count"
    diff: int
    archive: int
    archive_type: Literal["full", "diff", "incr"]
    history: int


class CipherConfig(Spec):
    type: Literal["aes-256-cbc"] = "aes-256-cbc"
    encryption_pass: SecretKeyRef


class S3Repository(Spec):
    bucket: str
    endpoint: str
    region: str
    repo_path: str
    uri_style: Literal["host", "path"]
    verify_tls: bool = Field(alias="verifyTLS")
    retention_policy: RetentionPolicy
    secret_ref: S3SecretRef
    cipher_config: Optional[CipherConfig] = None


class Archive(Spec):
    # Async archiving spools WAL to the PluginConfig's volume and pushes in parallel.
    async_: bool = Field(default=True, alias="async")


class StanzaConfiguration(Spec):
    name: str
    archive: Archive = Archive()
    s3_repositories: tuple[S3Repository, ...]
    #: Copied verbatim into pgBackRest's environment (the plugin's ToEnv).
    custom_env_var: Optional[dict[str, str]] = None


class StanzaSpec(Spec):
    stanza_configuration: StanzaConfiguration


class StorageConfig(Spec):
    storage_class: str
    size: Optional[str] = None


class PluginConfigSpec(Spec):
    storage_config: StorageConfig


class ClusterRef(Spec):
    name: str


class PluginConfiguration(Spec):
    name: str = PLUGIN_NAME
    parameters: dict[str, str]


class ScheduledBackupSpec(Spec):
    cluster: ClusterRef
    schedule: str
    method: Literal["plugin"] = "plugin"
    target: Literal["primary", "prefer-standby"] = "primary"
    backup_owner_reference: Literal["none", "self", "cluster"] = "self"
    plugin_configuration: PluginConfiguration


class ClusterPlugin(Spec):
    name: str = PLUGIN_NAME
    enabled: bool = True
    is_wal_archiver: bool = Field(default=True, alias="isWALArchiver")
    parameters: dict[str, str]


class ClusterStorage(Spec):
    size: str
    storage_class: Optional[str] = None


class RecoveryTarget(Spec):
    target_time: str


class Recovery(Spec):
    source: str
    """The `externalClusters` entry to restore from."""
    recovery_target: Optional[RecoveryTarget] = None


class Bootstrap(Spec):
    recovery: Recovery


class ExternalCluster(Spec):
    name: str
    plugin: PluginConfiguration


class ClusterSpec(Spec):
    instances: int
    storage: ClusterStorage
    plugins: tuple[ClusterPlugin, ...]
    bootstrap: Optional[Bootstrap] = None
    external_clusters: tuple[ExternalCluster, ...] = ()
