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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import labels, tree
from .database_plan import DatabasePlan, DatabaseRecoveryPlan
from .outputs import known
from .pgbackrest import (
    CNPG_API_VERSION,
    PLUGIN_API_VERSION,
    Bootstrap,
    ClusterPlugin,
    ClusterRef,
    ClusterSpec,
    ClusterStorage,
    ExternalCluster,
    PluginConfigSpec,
    PluginConfiguration,
    Recovery,
    RecoveryTarget,
    ScheduledBackupSpec,
    StorageConfig,
)
from .pgbackrest_check import PgBackRestCheck, PgBackRestCheckArgs
from .secret_values import SecretPlan
from .secrets import cluster_secret
from .stanza_lock import StanzaLock, StanzaLockArgs
from .tree import BucketPlan, Node
from .volsync import Spec


@dataclass(frozen=True)
class PgBackRestClusterBackupArgs:
    plan: DatabasePlan
    """The database, its repositories with their schedules, the check, a recovery, names."""
    bucket_providers: Mapping[str, aws.Provider] = field(default_factory=dict)
    """The aws providers by Pulumi name (`BucketPlan.provider`)."""


class PgBackRestClusterBackup(pulumi.ComponentResource):
    plugins: pulumi.Output[list[dict[str, Any]]]
    """The `spec.plugins` entry the CNPG Cluster needs to archive WAL through pgBackRest."""
    stanza_name: pulumi.Output[str]
    stanza: k8s.apiextensions.CustomResource
    check: PgBackRestCheck

    def __init__(
        self, name: str, args: PgBackRestClusterBackupArgs, opts: Optional[pulumi.ResourceOptions] = None
    ) -> None:
        super().__init__(tree.DATABASE, name, None, opts)
        plan = self._plan = args.plan
        db = plan.database
        StanzaLock(plan.stanza_lock.resource, StanzaLockArgs(db.name, db.namespace, db.stanza_name,
                                                             db.allow_stanza_rename, plan.key),
                   opts=pulumi.ResourceOptions(parent=self))
        if plan.encryption is not None:
            self._secret(plan.encryption)
        waits: list[pulumi.Resource] = []
        for target in plan.targets:
            waits.append(self._secret(target.credentials))
            if target.bucket is not None:
                self._bucket(target.bucket, args.bucket_providers[target.bucket.provider])
        self.stanza = self._object(plan.stanza.node, PLUGIN_API_VERSION, plan.stanza.spec, depends_on=waits)
        self.check = PgBackRestCheck(plan.check.component.resource, PgBackRestCheckArgs(
            plan=plan.check, database=db.name, stanza=plan.stanza.spec.stanza_configuration,
        ), opts=pulumi.ResourceOptions(parent=self, depends_on=waits))
        plugin = self._plugin_config()
        self._scheduled_backups(self.stanza)
        if plan.cluster is not None:
            self._cluster(plan.cluster, plugin, self.stanza)

        self.plugins = known([plugin.to_wire()])
        self.stanza_name = pulumi.Output.from_input(db.stanza_name)
        self.register_outputs({"plugins": self.plugins, "stanzaName": self.stanza_name})

    def _object(self, node: Node, api_version: str, spec: Spec, depends_on: Sequence[pulumi.Resource] = (),
                retain_on_delete: Optional[bool] = None) -> k8s.apiextensions.CustomResource:
        """One of the database's custom resources: the node's names, the database's labels."""
        return k8s.apiextensions.CustomResource(
            node.resource, api_version=api_version, kind=node.kind, metadata=self._metadata(node), spec=spec.to_wire(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on), retain_on_delete=retain_on_delete),
        )

    def _metadata(self, node: Node) -> k8s.meta.v1.ObjectMetaArgsDict:
        db = self._plan.database
        return {"name": node.name, "namespace": node.namespace, "labels": {**labels.MANAGED_BY, labels.DATABASE: db.name}}

    def _plugin_config(self) -> ClusterPlugin:
        """The PluginConfig (the WAL spool volume); returns the Cluster's plugin entry naming it."""
        plan = self._plan
        node = plan.plugin_config
        self._object(node, PLUGIN_API_VERSION, PluginConfigSpec(
            storage_config=StorageConfig(storage_class=plan.wal_spool_class, size=plan.database.wal_spool.size)))
        return ClusterPlugin(parameters={"stanzaRef": plan.stanza.node.name, "pluginConfigRef": node.name})

    def _scheduled_backups(self, stanza_cr: pulumi.Resource) -> None:
        """Per repository a full and a differential ScheduledBackup, each naming its repository."""
        for number, target in enumerate(self._plan.targets, start=1):
            for kind, schedule, node in target.scheduled():
                self._object(node, CNPG_API_VERSION, ScheduledBackupSpec(
                    cluster=ClusterRef(name=self._plan.cluster_name),
                    schedule=schedule,
                    plugin_configuration=PluginConfiguration(
                        parameters={"selectedRepository": str(number), "backupType": kind}
                    ),
                ), depends_on=[stanza_cr])

    def _cluster(self, node: Node, plugin: ClusterPlugin, stanza_cr: pulumi.Resource) -> None:
        """The CloudNative-PG Cluster (`manageCluster`): kept if Pulumi lets go of it."""
        plan = self._plan
        db = plan.database
        bootstrap, external = self._recovery(plan.recovery, stanza_cr)
        self._object(node, CNPG_API_VERSION, ClusterSpec(
            instances=db.instances,
            storage=ClusterStorage(size=db.storage_size, storage_class=plan.cluster_storage_class),
            plugins=(plugin,),
            bootstrap=bootstrap,
            external_clusters=external,
        ), depends_on=[stanza_cr], retain_on_delete=True)

    def _recovery(self, recovery: Optional[DatabaseRecoveryPlan], stanza_cr: pulumi.Resource
                  ) -> tuple[Optional[Bootstrap], tuple[ExternalCluster, ...]]:
        """CloudNative-PG's recovery bootstrap from a Stanza: the database's own, another database's,
        or, when the recovery names one repository, a Stanza of its own holding only that one."""
        if recovery is None:
            return None, ()
        if recovery.stanza is not None:
            self._object(recovery.stanza.node, PLUGIN_API_VERSION, recovery.stanza.spec, depends_on=[stanza_cr])
        target = RecoveryTarget(target_time=recovery.target_time) if recovery.target_time else None
        source = ExternalCluster(name=recovery.stanza_ref, plugin=PluginConfiguration(parameters={"stanzaRef": recovery.stanza_ref}))
        return Bootstrap(recovery=Recovery(source=source.name, recovery_target=target)), (source,)

    def _bucket(self, bucket: BucketPlan, provider: aws.Provider) -> None:
        aws.s3.Bucket(
            bucket.node.resource,
            bucket=bucket.bucket,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True, retain_on_delete=True),
        )

    def _secret(self, secret: SecretPlan) -> pulumi.Resource:
        """A Secret of the database's (S3 keys, the passphrase) as the plan filed its values."""
        return cluster_secret(secret.node, self._metadata(secret.node), secret.values, parent=self)
