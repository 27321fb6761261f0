"""BackupStack: the whole backup stack composed from one validated StackConfig."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .admission import AdmissionGuardrails, AdmissionGuardrailsArgs
from .app import BackupEnabledApp, BackupEnabledAppArgs, BackupTarget, RestoreRequest, inventory_entry
from .backends import access_of
from .config import App, Repository, StackConfig, source_name, volume_of
from .kopia import SharedKopiaRepository, SharedKopiaRepositoryArgs, secret_name
from .kopia_jobs import KopiaPod, KopiaWebUi, RepositoryMirror, RepositoryMirrorArgs
from .monitoring import BackupAlerts, BackupAlertsArgs, StaleWindow
from .outputs import known
from .postgres import PgBackRestClusterBackup, PgBackRestClusterBackupArgs, PgRepository, default_schedules
from .schedule import ScheduledJob, plan_schedules, stable_hash

#: Maintenance jobs are spread like backups; this name keeps their hash apart from any app's.
_MAINTENANCE = "kopia-maintenance"
_MIRROR = "kopia-mirror"
#: Restore drills are spread among themselves, apart from the backups.
_DRILL = "restore-drill"


@dataclass(frozen=True)
class BackupStackArgs:
    config: StackConfig


class BackupStack(pulumi.ComponentResource):
    database_plugins: pulumi.Output[dict]
    """namespace/database -> the `spec.plugins` entry its CNPG Cluster needs."""
    inventory: pulumi.Output[dict]
    """namespace/app -> {claim, bootstrapFrom, repositories: {repo: {source, schedule, identity}}}."""

    def __init__(
        self, name: str, args: BackupStackArgs, opts: Optional[pulumi.ResourceOptions] = None
    ) -> None:
        super().__init__("backups:stack:BackupStack", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        if config.kubernetes.render_yaml_to:
            # Rendering mode: the provider writes manifests instead of talking to a cluster.
            provider = k8s.Provider(
                "render",
                render_yaml_to_directory=config.kubernetes.render_yaml_to,
                opts=child,
            )
            child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider})

        self._config, self._child = config, child
        self._schedules = plan_schedules(scheduled_jobs(config), config.defaults.window, config.pins)
        self._access = {r.name: access_of(r, config.password_of(r)) for r in config.repositories}
        self._s3_providers: dict[tuple, aws.Provider] = {}

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
        config, schedules = self._config, self._schedules
        return {
            repo.name: SharedKopiaRepository(
                repo.name,
                SharedKopiaRepositoryArgs(
                    repository=repo,
                    access=self._access[repo.name],
                    bucket_provider=self._bucket_provider(repo) if repo.s3 and repo.manage_bucket else None,
                    namespaces=config.namespaces_of(repo),
                    maintained=repo.name not in config.mirror_targets,
                    maintenance_schedule=schedules[(_MAINTENANCE, repo.maintenance.namespace, repo.name)],
                    maintenance_identity=config.defaults.mover,
                    cache=config.defaults.cache,
                ),
                opts=self._child,
            )
            for repo in config.repositories
        }

    def _kopia_extras(self, repositories: dict[str, SharedKopiaRepository]) -> None:
        """The optional web UI and mirror, after the Secrets they read exist."""
        config = self._config
        for repo in config.repositories:
            pod = KopiaPod(repo, self._access[repo.name], secret_name(repo), config.defaults.mover)
            after = pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=[repositories[repo.name]]))
            if repo.ui.enabled:
                KopiaWebUi(f"{repo.name}-ui", pod, opts=after)
            if repo.mirror_to:
                target = next(r for r in config.repositories if r.name == repo.mirror_to)
                RepositoryMirror(
                    f"{repo.name}-mirror",
                    RepositoryMirrorArgs(
                        source=pod,
                        target=target,
                        target_secret_name=secret_name(target),
                        schedule=self._schedules[(_MIRROR, repo.maintenance.namespace, repo.name)],
                    ),
                    opts=pulumi.ResourceOptions.merge(
                        after, pulumi.ResourceOptions(depends_on=[repositories[target.name]])
                    ),
                )

    def _apps(self) -> dict[str, dict]:
        """Every app's component; returns the inventory (known now: one Output, not one per app)."""
        config, schedules = self._config, self._schedules
        inventory: dict[str, dict] = {}
        for app in config.apps:
            targets = tuple(
                BackupTarget(
                    repository=repo.name,
                    source_name=source_name(app, repo),
                    secret_name=secret_name(repo),
                    schedule=schedules[(app.name, app.namespace, repo.name)],
                    retain=repo.retain,
                    mover_volumes=self._access[repo.name].mover_volumes,
                )
                for repo in config.repositories_of(app)
            )
            bootstrap_repo = config.bootstrap_repository(app).name
            by_repo = {t.repository: t for t in targets}
            app_args = BackupEnabledAppArgs(
                app=app,
                volume=volume_of(config, app),
                targets=targets,
                bootstrap=by_repo[bootstrap_repo],
                compression=config.defaults.compression,
                cache=config.defaults.cache,
                restore=_restore_request(app, by_repo, bootstrap_repo),
                drill_schedule=schedules.get((app.name, app.namespace, _DRILL)),
            )
            BackupEnabledApp(f"{app.namespace}-{app.name}", app_args, opts=self._child)
            inventory[f"{app.namespace}/{app.name}"] = inventory_entry(app_args)
        return inventory

    def _databases(self) -> dict[str, pulumi.Output]:
        """Every database's pgBackRest backup; returns the Cluster plugin entries."""
        config = self._config
        by_name = {r.name: r for r in config.repositories}
        plugins: dict[str, pulumi.Output] = {}
        for db in config.databases:
            targets = []
            for position, repo_name in enumerate(db.repositories):
                repo = by_name[repo_name]
                full, diff = default_schedules(position)
                targets.append(
                    PgRepository(
                        repository=repo,
                        bucket_provider=self._bucket_provider(repo) if repo.manage_bucket else None,
                        full_schedule=db.schedule.full[position] if db.schedule.full else full,
                        diff_schedule=db.schedule.diff[position] if db.schedule.diff else diff,
                    )
                )
            backup = PgBackRestClusterBackup(
                f"{db.namespace}-{db.name}",
                PgBackRestClusterBackupArgs(
                    database=db, repositories=tuple(targets), wal_storage_class=config.defaults.storage_class
                ),
                opts=self._child,
            )
            plugins[f"{db.namespace}/{db.name}"] = backup.plugins
        return plugins

    def _guardrails(self) -> None:
        config = self._config
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
            BackupAlerts("alerts", self._alerts_args(config, self._schedules), opts=self._child)

    @staticmethod
    def _alerts_args(config: StackConfig, schedules: dict) -> BackupAlertsArgs:
        by_repository: dict[str, set[str]] = {}
        drills: list[str] = []
        for (name, namespace, repository), cron in schedules.items():
            if repository == _DRILL:
                drills.append(cron)
            elif name not in (_MAINTENANCE, _MIRROR):
                by_repository.setdefault(repository, set()).add(cron)
        return BackupAlertsArgs(
            namespace=config.alerts.namespace,
            rule_labels=config.alerts.labels,
            repositories=tuple(
                StaleWindow(r.name, tuple(sorted(by_repository[r.name])))
                for r in config.repositories if r.name in by_repository
            ),
            maintenance_crons=tuple(
                schedules[(_MAINTENANCE, r.maintenance.namespace, r.name)]
                for r in config.repositories if r.name not in config.mirror_targets
            ),
            drill_crons=tuple(sorted(set(drills))),
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


def scheduled_jobs(config: StackConfig) -> list[ScheduledJob]:
    """Every scheduled job in config order: apps x their repositories, then each repository's
    maintenance and mirror, then the restore drills."""
    jobs = [
        ScheduledJob(app.name, app.namespace, repo.name, app.schedule or repo.schedule)
        for app in config.apps
        for repo in config.repositories_of(app)
    ]
    jobs += [
        ScheduledJob(_MAINTENANCE, repo.maintenance.namespace, repo.name, repo.maintenance.schedule)
        for repo in config.repositories
    ]
    jobs += [
        ScheduledJob(_MIRROR, repo.maintenance.namespace, repo.name, repo.mirror.schedule)
        for repo in config.repositories
        if repo.mirror_to
    ]
    jobs += [
        ScheduledJob(app.name, app.namespace, _DRILL, config.drills.schedule)
        for app in config.apps
        if config.drills.covers(app.name)
    ]
    return jobs


def _restore_request(app: App, targets: dict[str, BackupTarget], default_repo: str) -> Optional[RestoreRequest]:
    restore = app.restore
    if restore is None:
        return None
    target = targets[restore.repository or default_repo]
    origin = restore.from_
    source_app, source_namespace = (origin.app, origin.namespace) if origin else (app.name, app.namespace)
    # The trigger names this exact request, so editing it (a new `previous`, another time)
    # runs a new restore and re-applying an unchanged config never restores twice.
    digest = stable_hash(restore.model_dump_json(), target.repository) % 16**8
    return RestoreRequest(
        target=target,
        source_name=f"{source_app}-{target.repository}",
        source_namespace=source_namespace,
        previous=restore.previous,
        restore_as_of=restore.restore_as_of,
        trigger=f"restore-{digest:08x}",
    )
