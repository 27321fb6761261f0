"""BackupStack: the whole backup stack composed from one validated StackConfig."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from .app import BackupEnabledApp, BackupEnabledAppArgs, BackupTarget
from .config import StackConfig, source_name, volume_of
from .kopia import SharedKopiaRepository, SharedKopiaRepositoryArgs, mover_volumes, secret_name
from .schedule import ScheduledJob, plan_schedules

#: Maintenance jobs are spread like backups; this name keeps their hash apart from any app's.
_MAINTENANCE = "kopia-maintenance"


@dataclass(frozen=True)
class BackupStackArgs:
    config: StackConfig


class BackupStack(pulumi.ComponentResource):
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

        schedules = plan_schedules(self._jobs(config), config.defaults.window)
        password = config.password  # validated as a SecretStr while externalSecret is pending

        for repo in config.repositories:
            SharedKopiaRepository(
                repo.name,
                SharedKopiaRepositoryArgs(
                    repository=repo,
                    password=password,  # type: ignore[arg-type]
                    namespaces=config.namespaces_of(repo),
                    maintenance_schedule=schedules[(_MAINTENANCE, repo.maintenance.namespace, repo.name)],
                    maintenance_identity=config.defaults.mover,
                    cache=config.defaults.cache,
                ),
                opts=child,
            )

        inventory: dict[str, pulumi.Output] = {}
        for app in config.apps:
            targets = tuple(
                BackupTarget(
                    repository=repo.name,
                    source_name=source_name(app, repo),
                    secret_name=secret_name(repo),
                    schedule=schedules[(app.name, app.namespace, repo.name)],
                    retain=repo.retain,
                    mover_volumes=mover_volumes(repo),
                )
                for repo in config.repositories_of(app)
            )
            bootstrap_repo = config.bootstrap_repository(app).name
            component = BackupEnabledApp(
                f"{app.namespace}-{app.name}",
                BackupEnabledAppArgs(
                    app=app,
                    volume=volume_of(config, app),
                    targets=targets,
                    bootstrap=next(t for t in targets if t.repository == bootstrap_repo),
                    compression=config.defaults.compression,
                    cache=config.defaults.cache,
                ),
                opts=child,
            )
            inventory[f"{app.namespace}/{app.name}"] = pulumi.Output.all(
                claim=component.claim_name, repositories=component.sources
            ).apply(lambda v, b=bootstrap_repo: {**v, "bootstrapFrom": b})

        self.inventory = pulumi.Output.all(**inventory) if inventory else pulumi.Output.from_input({})
        self.register_outputs({"inventory": self.inventory})

    @staticmethod
    def _jobs(config: StackConfig) -> list[ScheduledJob]:
        """Every scheduled job in config order: apps x their repositories, then maintenance."""
        jobs = [
            ScheduledJob(app.name, app.namespace, repo.name, app.schedule or repo.schedule)
            for app in config.apps
            for repo in config.repositories_of(app)
        ]
        jobs += [
            ScheduledJob(_MAINTENANCE, repo.maintenance.namespace, repo.name, repo.maintenance.schedule)
            for repo in config.repositories
        ]
        return jobs
