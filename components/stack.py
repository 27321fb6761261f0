"""BackupStack: the whole backup stack, composed from one StackPlan.

Every decision (schedules, which repository each app uses, restore requests, access, identities,
names) is in the plan (`plan.py`, no Pulumi); this module only maps it to components, in the
order their dependencies need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import tree
from .admission import AdmissionGuardrails, AdmissionGuardrailsArgs
from .app import BackupEnabledApp, BackupEnabledAppArgs, inventory_entry
from .history import ledger_of
from .history_lock import HistoryLock, HistoryLockArgs
from .kopia import SharedKopiaRepository, SharedKopiaRepositoryArgs
from .kopia_jobs import (
    KopiaPod,
    KopiaWebUi,
    KopiaWebUiArgs,
    RepositoryMirror,
    RepositoryMirrorArgs,
    SnapshotCheck,
    SnapshotCheckArgs,
)
from .monitoring import BackupAlerts, BackupAlertsArgs
from .outputs import known
from .plan import BucketProviderPlan, StackPlan
from .postgres import PgBackRestClusterBackup, PgBackRestClusterBackupArgs


@dataclass(frozen=True)
class BackupStackArgs:
    plan: StackPlan
    """Every decision made from the validated config (`plan.plan_stack`)."""


class BackupStack(pulumi.ComponentResource):
    database_plugins: pulumi.Output[dict[str, Any]]
    """namespace/database -> the `spec.plugins` entry its CNPG Cluster needs."""
    inventory: pulumi.Output[dict[str, Any]]
    """namespace/app -> {claim, bootstrapFrom, repositories: {repo: {source, schedule, identity}}}."""
    repositories: dict[str, SharedKopiaRepository]
    apps: dict[str, BackupEnabledApp]
    """By `namespace/app`."""
    databases: dict[str, PgBackRestClusterBackup]
    """By `namespace/database`."""

    def __init__(
        self, name: str, args: BackupStackArgs, opts: Optional[pulumi.ResourceOptions] = None
    ) -> None:
        super().__init__(tree.STACK, name, None, opts)
        plan = self._plan = args.plan
        child = pulumi.ResourceOptions(parent=self)
        # Before anything else: under the real engine its diff stops a change that would orphan
        # a history or shrink a claim in place, before any object changes.
        # Parented to the stack only: it has its own (dynamic) provider, never the rendering one.
        HistoryLock(plan.history.resource, HistoryLockArgs(ledger_of(plan)), opts=pulumi.ResourceOptions(parent=self))
        if plan.render is not None:
            # Rendering mode: the provider writes manifests instead of talking to a cluster.
            provider = k8s.Provider(plan.render.node.resource, render_yaml_to_directory=plan.render.directory, opts=child)
            child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider})
        self._child = child
        self._bucket_providers = {p.node.resource: self._bucket_provider(p) for p in plan.bucket_providers}
        self.repositories = self._repositories()
        self._kopia_extras()
        self.apps = {f"{ap.app.namespace}/{ap.app.name}": BackupEnabledApp(ap.component.resource,
                                                                           BackupEnabledAppArgs(ap), opts=child)
                     for ap in plan.apps}
        self.databases = self._databases()
        self._guardrails()

        # Known now: one Output for the whole inventory, not one per app.
        self.inventory = known({f"{ap.app.namespace}/{ap.app.name}": inventory_entry(ap) for ap in plan.apps})
        # Each entry is a component's Output: from_input lifts them (known() is for plain data).
        self.database_plugins = pulumi.Output.from_input({key: db.plugins for key, db in self.databases.items()})
        self.register_outputs({"inventory": self.inventory, "databasePlugins": self.database_plugins})

    def _repositories(self) -> dict[str, SharedKopiaRepository]:
        return {
            rp.repository.name: SharedKopiaRepository(
                rp.component.resource,
                SharedKopiaRepositoryArgs(
                    plan=rp,
                    bucket_provider=self._bucket_providers[rp.bucket.provider] if rp.bucket is not None else None,
                ),
                opts=self._child,
            )
            for rp in self._plan.repositories
        }

    def _kopia_extras(self) -> None:
        """The optional web UI, snapshot check and mirror, after the Secrets they read exist."""
        for rp in self._plan.repositories:
            pod = KopiaPod.of(rp)
            after = pulumi.ResourceOptions.merge(
                self._child, pulumi.ResourceOptions(depends_on=[self.repositories[rp.repository.name]]))
            if rp.ui is not None:
                KopiaWebUi(rp.ui.component.resource, KopiaWebUiArgs(pod=pod, plan=rp.ui), opts=after)
            if rp.check is not None:
                SnapshotCheck(rp.check.component.resource, SnapshotCheckArgs(pod=pod, plan=rp.check), opts=after)
            if rp.mirror is not None:
                target = self.repositories[rp.mirror.target.name]
                RepositoryMirror(
                    rp.mirror.component.resource,
                    RepositoryMirrorArgs(source=pod, plan=rp.mirror),
                    opts=pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(depends_on=[target])),
                )

    def _databases(self) -> dict[str, PgBackRestClusterBackup]:
        """Every database's pgBackRest backup."""
        return {
            f"{dp.database.namespace}/{dp.database.name}": PgBackRestClusterBackup(
                dp.component.resource,
                PgBackRestClusterBackupArgs(
                    plan=dp,
                    bucket_providers={t.bucket.provider: self._bucket_providers[t.bucket.provider]
                                      for t in dp.targets if t.bucket is not None},
                ),
                opts=self._child,
            )
            for dp in self._plan.databases
        }

    def _guardrails(self) -> None:
        plan = self._plan
        AdmissionGuardrails(plan.guardrails.component.resource, AdmissionGuardrailsArgs(plan.guardrails),
                            opts=self._child)
        if plan.alerts.rule is not None:
            BackupAlerts(plan.alerts.rule.component.resource, BackupAlertsArgs(plan.alerts), opts=self._child)

    def _bucket_provider(self, plan: BucketProviderPlan) -> aws.Provider:
        """An aws provider configured for an S3-compatible store: custom endpoint, path-style
        addressing, and none of the AWS-only checks (STS account lookup, region list, EC2
        metadata) that such stores fail."""
        keys = plan.keys
        return aws.Provider(
            plan.node.resource,
            region=plan.region,
            # External credentials never pass through Pulumi: the provider then reads
            # AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the environment of `pulumi up`.
            access_key=pulumi.Output.secret(keys[0].get_secret_value()) if keys else None,
            secret_key=pulumi.Output.secret(keys[1].get_secret_value()) if keys else None,
            endpoints=[aws.ProviderEndpointArgs(s3=plan.endpoint)],
            s3_use_path_style=True,
            skip_credentials_validation=True,
            skip_metadata_api_check=True,
            skip_region_validation=True,
            skip_requesting_account_id=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
