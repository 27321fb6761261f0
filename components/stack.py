"""BackupStack: the whole backup stack, composed from one StackPlan.

Every decision (schedules, which repository each app uses, restore requests, names) is in the
plan (`plan.py`, no Pulumi); this module only maps it to components.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import names
from .admission import AdmissionGuardrails, AdmissionGuardrailsArgs
from .app import BackupEnabledApp, BackupEnabledAppArgs, BackupTarget, Reader, inventory_entry
from .backends import RepositoryAccess, access_of
from .config import Repository
from .history import ledger_of
from .history_lock import HistoryLock
from .kopia import SharedKopiaRepository, SharedKopiaRepositoryArgs
from .kopia_jobs import KopiaPod, KopiaWebUi, RepositoryMirror, RepositoryMirrorArgs, SnapshotCheck, SnapshotCheckArgs
from .monitoring import BackupAlerts, BackupAlertsArgs
from .outputs import known
from .plan import AppPlan, StackPlan, mover_identity
from .postgres import PgBackRestClusterBackup, PgBackRestClusterBackupArgs
from .schedule import stable_hash


@dataclass(frozen=True)
class BackupStackArgs:
    plan: StackPlan
    """The validated config and every decision made from it (`plan.plan_stack`)."""


class BackupStack(pulumi.ComponentResource):
    database_plugins: pulumi.Output[dict[str, Any]]
    """namespace/database -> the `spec.plugins` entry its CNPG Cluster needs."""
    inventory: pulumi.Output[dict[str, Any]]
    """namespace/app -> {claim, bootstrapFrom, repositories: {repo: {source, schedule, identity}}}."""

    def __init__(
        self, name: str, args: BackupStackArgs, opts: Optional[pulumi.ResourceOptions] = None
    ) -> None:
        super().__init__("backups:stack:BackupStack", name, None, opts)
        plan = args.plan
        config = plan.config
        child = pulumi.ResourceOptions(parent=self)
        if config.kubernetes.render_yaml_to:
            # Rendering mode: the provider writes manifests instead of talking to a cluster.
            provider = k8s.Provider(
                "render",
                render_yaml_to_directory=config.kubernetes.render_yaml_to,
                opts=child,
            )
            child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider})

        self._plan, self._child = plan, child
        self._access: dict[str, RepositoryAccess] = {
            r.name: access_of(r, config.password_of(r)) for r in config.repositories
        }
        self._s3_providers: dict[tuple[str, Optional[str], str], aws.Provider] = {}

        # Before anything else: under the real engine its diff stops a change that would orphan
        # a history or shrink a claim in place, before any object changes.
        # Parented to the stack only: it has its own (dynamic) provider, never the rendering one.
        HistoryLock("history", ledger_of(plan), opts=pulumi.ResourceOptions(parent=self))
        repositories = self._repositories()
        self._kopia_extras(repositories)
        inventory = self._apps()
        databases = self._databases()
        self._guardrails()

        self.inventory = known(inventory)
        # Each entry is a component's Output: from_input lifts them (known() is for plain data).
        self.database_plugins = pulumi.Output.from_input(databases)
        self.register_outputs({"inventory": self.inventory, "databasePlugins": self.database_plugins})

    def _repositories(self) -> dict[str, SharedKopiaRepository]:
        config = self._plan.config
        return {
            rp.repository.name: SharedKopiaRepository(
                rp.repository.name,
                SharedKopiaRepositoryArgs(
                    repository=rp.repository,
                    access=self._access[rp.repository.name],
                    bucket_provider=(
                        self._bucket_provider(rp.repository)
                        if rp.repository.s3 and rp.repository.manage_bucket else None
                    ),
                    namespaces=rp.namespaces,
                    maintained=rp.maintained,
                    maintenance_schedule=rp.maintenance_schedule,
                    maintenance_identity=config.defaults.mover,
                    cache=config.defaults.cache,
                ),
                opts=self._child,
            )
            for rp in self._plan.repositories
        }

    def _kopia_extras(self, repositories: dict[str, SharedKopiaRepository]) -> None:
        """The optional web UI and mirror, after the Secrets they read exist."""
        config = self._plan.config
        for rp in self._plan.repositories:
            repo = rp.repository
            pod = KopiaPod(repo, self._access[repo.name], names.repository_secret(repo.name), config.defaults.mover,
                           config.defaults.kopia_image)
            after = pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=[repositories[repo.name]]))
            if repo.ui.enabled:
                KopiaWebUi(names.child(repo.name, "ui"), pod, opts=after)
            if rp.has_check:
                SnapshotCheck(
                    names.child(repo.name, "check"),
                    SnapshotCheckArgs(pod=pod, identities=rp.expected_identities, schedule=rp.check_schedule),
                    opts=after,
                )
            if repo.mirror_to and rp.mirror_schedule:
                target = config.repository(repo.mirror_to)
                RepositoryMirror(
                    names.child(repo.name, "mirror"),
                    RepositoryMirrorArgs(
                        source=pod,
                        target=target,
                        target_secret_name=names.repository_secret(target.name),
                        schedule=rp.mirror_schedule,
                    ),
                    opts=pulumi.ResourceOptions.merge(
                        after, pulumi.ResourceOptions(depends_on=[repositories[target.name]])
                    ),
                )

    def _apps(self) -> dict[str, dict[str, object]]:
        """Every app's component; returns the inventory (known now: one Output, not one per app)."""
        inventory: dict[str, dict[str, object]] = {}
        for ap in self._plan.apps:
            app_args = self._app_args(ap)
            BackupEnabledApp(ap.component, app_args, opts=self._child)
            inventory[f"{ap.app.namespace}/{ap.app.name}"] = inventory_entry(app_args)
        return inventory

    def _app_args(self, ap: AppPlan) -> BackupEnabledAppArgs:
        config = self._plan.config
        targets = tuple(
            BackupTarget(
                **vars(source),
                secret_name=names.repository_secret(source.repository),
                mover_volumes=self._access[source.repository].mover_volumes,
            )
            for source in ap.sources
        )
        readers = {
            name: Reader(
                secret_name=names.repository_secret(name),
                mover_volumes=self._access[name].mover_volumes,
                mover=mover_identity(config, ap.volume, config.repository(name)),
            )
            for name in ap.readable
        }
        return BackupEnabledAppArgs(
            plan=ap, targets=targets, readers=readers,
            compression=config.defaults.compression, cache=config.defaults.cache,
        )

    def _databases(self) -> dict[str, pulumi.Output[list[dict[str, object]]]]:
        """Every database's pgBackRest backup; returns the Cluster plugin entries."""
        config = self._plan.config
        plugins: dict[str, pulumi.Output[list[dict[str, object]]]] = {}
        for dp in self._plan.databases:
            db = dp.database
            backup = PgBackRestClusterBackup(
                dp.component,
                PgBackRestClusterBackupArgs(
                    database=db,
                    key=dp.key,
                    repositories=dp.targets,
                    wal_storage_class=config.defaults.storage_class,
                    bucket_providers={
                        t.repository.name: self._bucket_provider(t.repository)
                        for t in dp.targets if t.repository.manage_bucket
                    },
                    recovery=dp.recovery,
                    check_schedule=dp.check_schedule,
                    check_limits=dp.check_limits,
                ),
                opts=self._child,
            )
            plugins[f"{db.namespace}/{db.name}"] = backup.plugins
        return plugins

    def _guardrails(self) -> None:
        config, alerts = self._plan.config, self._plan.alerts
        AdmissionGuardrails(
            "admission",
            AdmissionGuardrailsArgs(
                kubernetes_minor=config.kubernetes.minor,
                jitter_seconds=config.admission.jitter_seconds,
                jitter_image=config.admission.jitter_image,
                storage_class_guard=config.admission.storage_class_guard,
                banned_storage_classes=config.guardrails.banned_storage_classes,
            ),
            opts=self._child,
        )
        if config.alerts.enabled:
            BackupAlerts(
                "alerts",
                BackupAlertsArgs(
                    namespace=config.alerts.namespace,
                    rule_labels=dict(config.alerts.labels),
                    repositories=alerts.repositories,
                    maintenance_crons=alerts.maintenance_crons,
                    drill_crons=alerts.drill_crons,
                    web_uis=alerts.web_uis,
                    snapshot_checks=alerts.snapshot_checks,
                    databases=alerts.databases,
                ),
                opts=self._child,
            )

    def _bucket_provider(self, repo: Repository) -> aws.Provider:
        """One explicit aws provider per S3 endpoint (and credentials), configured for
        S3-compatible stores: custom endpoint, path-style addressing, and none of the AWS-only
        checks (STS account lookup, region list, EC2 metadata) that such stores fail."""
        s3, credentials = repo.s3, repo.credentials
        assert s3 is not None and credentials is not None
        keys = None
        if credentials.access_key_id is not None and credentials.secret_access_key is not None:
            keys = (credentials.access_key_id, credentials.secret_access_key)
        fingerprint = keys[0].get_secret_value() if keys else "environment"
        key = (s3.url, repo.region, fingerprint)
        if key not in self._s3_providers:
            # The name must not depend on config order: renaming a provider replaces its buckets.
            suffix = f"{stable_hash(*map(str, key)) % 16**6:06x}"
            self._s3_providers[key] = aws.Provider(
                f"s3-{s3.host.replace(':', '-')}-{suffix}",
                region=repo.region,
                # External credentials never pass through Pulumi: the provider then reads
                # AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the environment of `pulumi up`.
                access_key=pulumi.Output.secret(keys[0].get_secret_value()) if keys else None,
                secret_key=pulumi.Output.secret(keys[1].get_secret_value()) if keys else None,
                endpoints=[aws.ProviderEndpointArgs(s3=s3.url)],
                s3_use_path_style=True,
                skip_credentials_validation=True,
                skip_metadata_api_check=True,
                skip_region_validation=True,
                skip_requesting_account_id=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return self._s3_providers[key]
