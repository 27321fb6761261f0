"""BackupEnabledApp: an app's PVC that restores itself, and its backups to every destination.

The PVC is populated from a ReplicationDestination (`dataSourceRef`), so after a cluster
rebuild it comes back with the latest snapshot instead of empty; on the very first deploy the
repository has nothing for the app and the volume starts empty. One ReplicationSource per
repository backs it up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from . import labels, names
from .config import App, AppVolume, CacheSettings
from .names import Role
from .outputs import known
from .plan import RestorePlan, SourcePlan
from .volsync import (
    API_VERSION,
    KopiaDestinationOptions,
    KopiaSourceOptions,
    MoverVolume,
    ReplicationDestinationSpec,
    ReplicationSourceSpec,
    Retain,
    SourceIdentity,
    Trigger,
    security_context_for,
)

#: The bootstrap restore runs once, when the ReplicationDestination is created.
BOOTSTRAP_TRIGGER = "restore-once"


@dataclass(frozen=True)
class BackupTarget(SourcePlan):
    """One destination of an app as the plan decided it (repository, source name, schedule,
    retention, mover identity), with what a mover needs to reach the repository."""

    secret_name: str
    mover_volumes: tuple[MoverVolume, ...]


@dataclass(frozen=True)
class BackupEnabledAppArgs:
    app: App
    volume: AppVolume
    """The app's volume with defaults applied."""
    targets: tuple[BackupTarget, ...]
    """One per repository the app backs up to, in config order."""
    bootstrap: BackupTarget
    """The target the first restore reads from (the primary repository)."""
    compression: str
    cache: CacheSettings
    restore: Optional[RestorePlan] = None
    """A restore asked for in config, read from the target of its repository."""
    drill_schedule: Optional[str] = None
    """Concrete 5-field cron of the app's restore drill; None when it is not drilled."""


def inventory_entry(args: BackupEnabledAppArgs) -> dict[str, Any]:
    """What the stack reports for the app: claim, bootstrap repository, and per repository the
    source, its concrete schedule and the Kopia identity its snapshots carry."""
    return {
        "claim": args.volume.claim_name,
        "bootstrapFrom": args.bootstrap.repository,
        "repositories": {
            t.repository: {
                "source": t.name,
                "schedule": t.schedule,
                "identity": f"{t.name}@{args.app.namespace}",
            }
            for t in args.targets
        },
    }


class BackupEnabledApp(pulumi.ComponentResource):
    claim_name: pulumi.Output[str]
    """The PVC the app mounts."""
    sources: pulumi.Output[dict[str, Any]]
    """repository -> {source, schedule, identity}."""

    def __init__(
        self, name: str, args: BackupEnabledAppArgs, opts: Optional[pulumi.ResourceOptions] = None
    ) -> None:
        super().__init__("backups:app:BackupEnabledApp", name, None, opts)
        app, volume = args.app, args.volume
        self._app, self._namespace = app.name, app.namespace
        self._prefix, self._args = name, args

        destination = self._destination(
            Role.BOOTSTRAP,
            Trigger(manual=BOOTSTRAP_TRIGGER),
            args.bootstrap,
            self._own_identity(args.bootstrap),
            copy_method="Snapshot",
            capacity=volume.capacity,
            access_modes=volume.access_modes,
            storage_class_name=volume.storage_class,
            volume_snapshot_class_name=volume.snapshot_class,
            # The volume populator needs the snapshot (latestImage), not the scratch volume it
            # was taken from; neither it nor the cache is kept for the life of the app.
            cleanup_temp_pvc=True,
            cleanup_cache_pvc=True,
        )

        # The data lives here: never deleted by Pulumi, even when the app leaves the config.
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": volume.claim_name,
            "namespace": app.namespace,
            "labels": labels.backed_up_volume(app.name),
            # A populated claim stays Pending for the whole restore (or, with a
            # WaitForFirstConsumer class, until the app's pod exists): longer than
            # pulumi-kubernetes' 5-minute wait for Bound. Not waiting lets one `pulumi up`
            # create the sources too, on a first deploy and on a rebuild.
            "annotations": {"pulumi.com/skipAwait": "true"},
        }
        spec: k8s.core.v1.PersistentVolumeClaimSpecArgsDict = {
            "access_modes": list(volume.access_modes),
            "storage_class_name": volume.storage_class,
            "resources": {"requests": {"storage": volume.capacity}},
            "data_source_ref": {
                "api_group": "volsync.backube",
                "kind": "ReplicationDestination",
                "name": names.destination(app.name, Role.BOOTSTRAP),
            },
        }
        claim = k8s.core.v1.PersistentVolumeClaim(
            names.child(name, "volume"),
            metadata=metadata,
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self, retain_on_delete=True, depends_on=[destination]
            ),
        )

        for target in args.targets:
            k8s.apiextensions.CustomResource(
                names.child(name, target.repository),
                api_version=API_VERSION,
                kind="ReplicationSource",
                metadata=self._metadata(target.name),
                spec=ReplicationSourceSpec(
                    source_pvc=volume.claim_name,
                    trigger=Trigger(schedule=target.schedule),
                    kopia=KopiaSourceOptions(
                        repository=target.secret_name,
                        copy_method="Snapshot",
                        compression=args.compression,
                        retain=Retain(**target.retain.model_dump()),
                        mover_security_context=security_context_for(target.mover),
                        cache_capacity=args.cache.capacity,
                        cache_storage_class_name=args.cache.storage_class,
                        storage_class_name=volume.storage_class,
                        volume_snapshot_class_name=volume.snapshot_class,
                        mover_volumes=target.mover_volumes,
                    ),
                ).to_wire(),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[claim]),
            )

        if args.restore is not None:
            self._restore(args.restore, claim)
        if args.drill_schedule is not None:
            self._drill(args.drill_schedule)

        self.claim_name = pulumi.Output.from_input(volume.claim_name)
        self.sources = known(inventory_entry(args)["repositories"])
        self.register_outputs({"claimName": self.claim_name, "sources": self.sources})

    def _restore(self, request: RestorePlan, claim: pulumi.Resource) -> None:
        """Restore into the app's own claim (scale the app to zero first: see the runbook)."""
        self._destination(
            Role.RESTORE,
            Trigger(manual=request.trigger),
            next(t for t in self._args.targets if t.repository == request.repository),
            SourceIdentity(source_name=request.source_name, source_namespace=request.source_namespace),
            depends_on=[claim],
            copy_method="Direct",
            destination_pvc=self._args.volume.claim_name,
            # The claim is live: without this, files the snapshot does not have stay beside the
            # restored ones (a stale SQLite -wal next to an older database).
            enable_file_deletion=True,
            previous=request.previous,
            restore_as_of=request.restore_as_of,
        )

    def _drill(self, schedule: str) -> None:
        """A scheduled test restore of the latest snapshot into a scratch volume nothing mounts.

        Same repository, identity, storage class and size as the bootstrap restore, so a passing
        drill means the real restore would work; VolSync deletes the scratch and cache volumes
        after each run (`cleanupTempPVC`, `cleanupCachePVC`).
        """
        volume, bootstrap = self._args.volume, self._args.bootstrap
        self._destination(
            Role.DRILL,
            Trigger(schedule=schedule),
            bootstrap,
            self._own_identity(bootstrap),
            copy_method="Direct",
            capacity=volume.capacity,
            access_modes=volume.access_modes,
            storage_class_name=volume.storage_class,
            cleanup_temp_pvc=True,
            cleanup_cache_pvc=True,
        )

    def _own_identity(self, target: BackupTarget) -> SourceIdentity:
        """The app's own snapshots in `target`: its source there, its namespace, its claim."""
        return SourceIdentity(
            source_name=target.name,
            source_namespace=self._namespace,
            source_pvc_name=self._args.volume.claim_name,
        )

    def _destination(
        self,
        role: Role,
        trigger: Trigger,
        target: BackupTarget,
        identity: SourceIdentity,
        depends_on: Sequence[pulumi.Resource] = (),
        **volume_options: Any,
    ) -> pulumi.Resource:
        """A ReplicationDestination `<app>-<role>` reading `identity` from `target`, as the app's
        movers do (same security context, cache and repository volumes)."""
        resource: pulumi.Resource = k8s.apiextensions.CustomResource(
            names.child(self._prefix, role.value),
            api_version=API_VERSION,
            kind="ReplicationDestination",
            metadata=self._metadata(names.destination(self._app, role)),
            spec=ReplicationDestinationSpec(
                trigger=trigger,
                kopia=KopiaDestinationOptions(
                    repository=target.secret_name,
                    source_identity=identity,
                    mover_security_context=security_context_for(target.mover),
                    cache_capacity=self._args.cache.capacity,
                    cache_storage_class_name=self._args.cache.storage_class,
                    mover_volumes=target.mover_volumes,
                    **volume_options,
                ),
            ).to_wire(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        return resource

    def _metadata(self, name: str) -> k8s.meta.v1.ObjectMetaArgsDict:
        # TypedDict rather than ObjectMetaArgs: the same static typing, and the SDK does not
        # have to walk an input class's annotations for every one of hundreds of objects.
        return {"name": name, "namespace": self._namespace, "labels": labels.app(self._app)}
