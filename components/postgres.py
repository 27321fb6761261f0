"""PgBackRestClusterBackup: a CloudNative-PG cluster backed up with Dalibo's pgBackRest plugin.

One Stanza per database with one `s3Repositories` entry per configured repository (pgBackRest
archives WAL to all of them at once), a bucket and a credentials Secret per repository, the
PluginConfig for the WAL spool, and per repository a weekly full and a daily differential
ScheduledBackup that name the repository they write to.

Archive retention: pgBackRest counts WAL retention in backups, not days. With one backup a day
on every repository (the weekly full plus differentials on the other six days), keeping the WAL
of the last N full-or-differential backups (`archiveType: diff`, `archive: N`) keeps N days of
WAL. That is the closest honest mapping of "N days of WAL"; it stretches if backups fail, which
is the safe direction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from . import labels, names
from .config import Database, ExternalSecretRef, Repository
from .outputs import known
from .pgbackrest import (
    CNPG_API_VERSION,
    PLUGIN_API_VERSION,
    Bootstrap,
    CipherConfig,
    ClusterPlugin,
    ClusterRef,
    ClusterSpec,
    ClusterStorage,
    ExternalCluster,
    PluginConfigSpec,
    PluginConfiguration,
    Recovery,
    RecoveryTarget,
    RetentionPolicy,
    S3Repository,
    S3SecretRef,
    ScheduledBackupSpec,
    SecretKeyRef,
    StanzaConfiguration,
    StanzaSpec,
    StorageConfig,
)
from .pgbackrest_check import PgBackRestCheck, PgBackRestCheckArgs
from .plan import DatabaseRecoveryPlan, DatabaseTarget, RepositoryLimits
from .secrets import cluster_secret, put_secret
from .stanza_lock import StanzaLock

ACCESS_KEY = "ACCESS_KEY_ID"
SECRET_KEY = "ACCESS_SECRET_KEY"
ENCRYPTION_KEY = "ENCRYPTION_PASS"


@dataclass(frozen=True)
class PgBackRestClusterBackupArgs:
    database: Database
    key: str
    """The database's config key path (`backups:databases[N]`), for the stanza guard's message."""
    repositories: tuple[DatabaseTarget, ...]
    """In the order of `database.repositories`: pgBackRest numbers them repo1, repo2, ..."""
    wal_storage_class: str
    bucket_providers: Mapping[str, aws.Provider] = field(default_factory=dict)
    """repository name -> the aws provider its bucket is made with; absent: the bucket is not managed."""
    recovery: Optional[DatabaseRecoveryPlan] = None
    """The managed Cluster's bootstrap from a backup (`recovery`), if any."""
    check_schedule: str = ""
    check_limits: tuple[RepositoryLimits, ...] = ()
    """How old each repository's newest full and newest backup may be (the backup check)."""


class PgBackRestClusterBackup(pulumi.ComponentResource):
    plugins: pulumi.Output[list[dict[str, Any]]]
    """The `spec.plugins` entry the CNPG Cluster needs to archive WAL through pgBackRest."""
    stanza_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: PgBackRestClusterBackupArgs, opts: Optional[pulumi.ResourceOptions] = None
    ) -> None:
        super().__init__("backups:postgres:PgBackRestClusterBackup", name, None, opts)
        self._prefix, self._args = name, args
        db = args.database
        stanza = db.stanza_name
        StanzaLock(
            names.child(name, "stanza-lock"), db.name, db.namespace, stanza, db.allow_stanza_rename, args.key,
            opts=pulumi.ResourceOptions(parent=self),
        )

        if db.encryption:
            self._encryption_secret()
        waits: list[pulumi.Resource] = []
        for target in args.repositories:
            waits += self._credentials(target.repository)
            self._bucket(target.repository)
        repositories = tuple(t.repository for t in args.repositories)
        stanza_cr = self._stanza("stanza", db.name, db, repositories, waits)
        PgBackRestCheck(names.child(name, "check"), PgBackRestCheckArgs(
            namespace=db.namespace, database=db.name, stanza=stanza,
            repositories=tuple(s3_entry(db, repo) for repo in repositories),
            limits=args.check_limits, schedule=args.check_schedule,
        ), opts=pulumi.ResourceOptions(parent=self, depends_on=waits))
        plugin_config_name = names.plugin_config(db.name)
        k8s.apiextensions.CustomResource(
            names.child(name, "plugin-config"),
            api_version=PLUGIN_API_VERSION,
            kind="PluginConfig",
            metadata=self._metadata(plugin_config_name),
            spec=PluginConfigSpec(
                storage_config=StorageConfig(
                    storage_class=db.wal_spool.storage_class or args.wal_storage_class, size=db.wal_spool.size
                )
            ).to_wire(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        plugin = ClusterPlugin(parameters={"stanzaRef": db.name, "pluginConfigRef": plugin_config_name})

        for number, target in enumerate(args.repositories, start=1):
            for kind, schedule in (("full", target.full_schedule), ("diff", target.diff_schedule)):
                k8s.apiextensions.CustomResource(
                    names.child(name, target.repository.name, kind),
                    api_version=CNPG_API_VERSION,
                    kind="ScheduledBackup",
                    metadata=self._metadata(names.scheduled_backup(db.name, target.repository.name, kind)),
                    spec=ScheduledBackupSpec(
                        cluster=ClusterRef(name=db.name),
                        schedule=schedule,
                        plugin_configuration=PluginConfiguration(
                            parameters={"selectedRepository": str(number), "backupType": kind}
                        ),
                    ).to_wire(),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[stanza_cr]),
                )

        if db.manage_cluster:
            bootstrap, external = self._recovery(args.recovery, stanza_cr)
            k8s.apiextensions.CustomResource(
                names.child(name, "cluster"),
                api_version=CNPG_API_VERSION,
                kind="Cluster",
                metadata=self._metadata(db.name),
                spec=ClusterSpec(
                    instances=db.instances,
                    storage=ClusterStorage(size=db.storage_size, storage_class=args.wal_storage_class),
                    plugins=(plugin,),
                    bootstrap=bootstrap,
                    external_clusters=external,
                ).to_wire(),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[stanza_cr], retain_on_delete=True),
            )

        self.plugins = known([plugin.to_wire()])
        self.stanza_name = pulumi.Output.from_input(stanza)
        self.register_outputs({"plugins": self.plugins, "stanzaName": self.stanza_name})

    def _metadata(self, name: str) -> k8s.meta.v1.ObjectMetaArgsDict:
        db = self._args.database
        return {"name": name, "namespace": db.namespace, "labels": {**labels.MANAGED_BY, labels.DATABASE: db.name}}

    def _stanza(self, child: str, name: str, source: Database, repositories: tuple[Repository, ...],
                waits: list[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
        """A Stanza object `name` for `source`'s stanza in `repositories` (pgBackRest's repo1, repo2, ...)."""
        entries = tuple(s3_entry(source, repo) for repo in repositories)
        # The plugin drops `retentionPolicy.history` (its field is tagged `ENV:` instead of `env:`),
        # so the seed's "30 days of history" reaches pgBackRest only as its own variable.
        history = {f"PGBACKREST_REPO{n}_RETENTION_HISTORY": str(source.retention.history_days)
                   for n in range(1, len(entries) + 1)}
        return k8s.apiextensions.CustomResource(
            names.child(self._prefix, child),
            api_version=PLUGIN_API_VERSION,
            kind="Stanza",
            metadata=self._metadata(name),
            spec=StanzaSpec(stanza_configuration=StanzaConfiguration(
                name=source.stanza_name, s3_repositories=entries, custom_env_var=history,
            )).to_wire(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=waits),
        )

    def _recovery(self, recovery: Optional[DatabaseRecoveryPlan], stanza_cr: pulumi.Resource
                  ) -> tuple[Optional[Bootstrap], tuple[ExternalCluster, ...]]:
        """CloudNative-PG's recovery bootstrap from a Stanza: the database's own, another database's,
        or, when the recovery names one repository, a Stanza of its own holding only that one."""
        if recovery is None:
            return None, ()
        if recovery.only is not None:
            self._stanza("recovery-stanza", recovery.stanza_ref, recovery.source, (recovery.only,), [stanza_cr])
        target = RecoveryTarget(target_time=recovery.target_time) if recovery.target_time else None
        source = ExternalCluster(name=recovery.stanza_ref, plugin=PluginConfiguration(parameters={"stanzaRef": recovery.stanza_ref}))
        return Bootstrap(recovery=Recovery(source=source.name, recovery_target=target)), (source,)

    def _bucket(self, repo: Repository) -> None:
        provider = self._args.bucket_providers.get(repo.name)
        if provider is not None:
            aws.s3.Bucket(
                names.child(self._prefix, repo.name, "bucket"),
                bucket=self._args.database.bucket_name,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True, retain_on_delete=True),
            )

    def _credentials(self, repo: Repository) -> list[pulumi.Resource]:
        """The repository's S3 keys in the database namespace, under the plugin's key names."""
        db = self._args.database
        name = names.pgbackrest_credentials(db.name, repo.name)
        credentials = repo.credentials
        assert credentials is not None
        secret, external = {}, {}
        if credentials.external_secret is not None:
            # The same item the Kopia repository reads its keys from, same field names.
            ref = credentials.external_secret
            external = {ACCESS_KEY: ref.model_copy(update={"property": "AWS_ACCESS_KEY_ID"}),
                        SECRET_KEY: ref.model_copy(update={"property": "AWS_SECRET_ACCESS_KEY"})}
        else:
            assert credentials.access_key_id is not None and credentials.secret_access_key is not None
            secret = {ACCESS_KEY: credentials.access_key_id, SECRET_KEY: credentials.secret_access_key}
        made = cluster_secret(
            names.child(self._prefix, repo.name, "credentials"), self._metadata(name), {}, secret, external, parent=self
        )
        return [made]

    def _encryption_secret(self) -> None:
        db = self._args.database
        assert db.encryption is not None
        name = names.pgbackrest_encryption(db.name)
        secret: dict[str, SecretStr] = {}
        external: dict[str, ExternalSecretRef] = {}
        put_secret(ENCRYPTION_KEY, db.encryption.passphrase, secret, external)
        cluster_secret(names.child(self._prefix, "encryption"), self._metadata(name), {}, secret, external, parent=self)


def s3_entry(db: Database, repo: Repository) -> S3Repository:
    """`db`'s stanza in `repo`, as the plugin's `s3Repositories` entry: bucket, path, retention,
    and the Secrets the database's component renders for its credentials and passphrase."""
    s3 = repo.s3
    assert s3 is not None and repo.region is not None
    secret_name, retention = names.pgbackrest_credentials(db.name, repo.name), db.retention
    return S3Repository(
        bucket=db.bucket_name,
        endpoint=s3.host,
        region=repo.region,
        repo_path=f"/{db.name}",
        # Garage (and most self-hosted stores) only serve path-style URLs.
        uri_style="path" if repo.backend == "garage" else "host",
        verify_tls=True,
        retention_policy=RetentionPolicy(
            full=retention.full,
            diff=retention.diff,
            archive=retention.wal_days,
            archive_type="diff",
            history=retention.history_days,
        ),
        secret_ref=S3SecretRef(
            access_key_id=SecretKeyRef(name=secret_name, key=ACCESS_KEY),
            secret_access_key=SecretKeyRef(name=secret_name, key=SECRET_KEY),
        ),
        cipher_config=(
            CipherConfig(encryption_pass=SecretKeyRef(name=names.pgbackrest_encryption(db.name), key=ENCRYPTION_KEY))
            if db.encryption else None
        ),
    )
