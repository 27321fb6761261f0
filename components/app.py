"""BackupEnabledApp: an app's PVC that restores itself, and its backups to every destination.

The PVC is populated from a ReplicationDestination (`dataSourceRef`), so after a cluster
rebuild it comes back with the latest snapshot instead of empty; on the very first deploy the
repository has nothing for the app and the volume starts empty. One ReplicationSource per
repository backs it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from . import labels
from .config import App, AppVolume, CacheSettings, Retention
from .volsync import (
    API_VERSION,
    KopiaDestinationOptions,
    KopiaSourceOptions,
    MoverVolume,
    PodSecurityContext,
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
class BackupTarget:
    """One destination of an app: which repository, when, and how much to keep."""

    repository: str
    source_name: str
    """ReplicationSource name; Kopia identity is `<source_name>@<namespace>`."""
    secret_name: str
    schedule: str
    """Concrete 5-field cron (already spread)."""
    retain: Retention
    mover_volumes: tuple[MoverVolume, ...]


@dataclass(frozen=True)
class RestoreRequest:
    """A restore asked for in config: which snapshot of which source, into the app's volume."""

    target: BackupTarget
    """The repository to read from (its Secret and volumes)."""
    source_name: str
    source_namespace: str
    previous: Optional[int]
    restore_as_of: Optional[str]
    trigger: str
    """A manual trigger unique to this request: a new request runs once, an unchanged one never again."""


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
    restore: Optional[RestoreRequest] = None
    drill_schedule: Optional[str] = None
    """Concrete 5-field cron of the app's restore drill; None when it is not drilled."""


def inventory_entry(args: BackupEnabledAppArgs) -> dict:
    """What the stack reports for the app: claim, bootstrap repository, and per repository the
    source, its concrete schedule and the Kopia identity its snapshots carry."""
    return {
        "claim": args.volume.claim_name,
        "bootstrapFrom": args.bootstrap.repository,
        "repositories": {
            t.repository: {
                "source": t.source_name,
                "schedule": t.schedule,
                "identity": f"{t.source_name}@{args.app.namespace}",
            }
            for t in args.targets
        },
    }


class BackupEnabledApp(pulumi.ComponentResource):
    claim_name: pulumi.Output[str]
    """The PVC the app mounts."""
    sources: pulumi.Output[dict]
    """repository -> {source, schedule, identity}."""

    def __init__(
        self, name: str, args: BackupEnabledAppArgs, opts: Optional[pulumi.ResourceOptions] = None
    ) -> None:
        super().__init__("backups:app:BackupEnabledApp", name, None, opts)
        app, volume = args.app, args.volume
        self._app, self._namespace = app.name, app.namespace
        security = security_context_for(volume.mover)

        bootstrap_name = f"{app.name}-bootstrap"
        destination = k8s.apiextensions.CustomResource(
            f"{name}-bootstrap",
            api_version=API_VERSION,
            kind="ReplicationDestination",
            metadata=self._metadata(bootstrap_name),
            spec=ReplicationDestinationSpec(
                trigger=Trigger(manual=BOOTSTRAP_TRIGGER),
                kopia=KopiaDestinationOptions(
                    repository=args.bootstrap.secret_name,
                    copy_method="Snapshot",
                    capacity=volume.capacity,
                    access_modes=volume.access_modes,
                    storage_class_name=volume.storage_class,
                    volume_snapshot_class_name=volume.snapshot_class,
                    source_identity=SourceIdentity(
                        source_name=args.bootstrap.source_name,
                        source_namespace=app.namespace,
                        source_pvc_name=volume.claim_name,
                    ),
                    mover_security_context=security,
                    cache_capacity=args.cache.capacity,
                    cache_storage_class_name=args.cache.storage_class,
                    mover_volumes=args.bootstrap.mover_volumes,
                ),
            ).to_wire(),
            opts=pulumi.ResourceOptions(parent=self),
        )

        # The data lives here: never deleted by Pulumi, even when the app leaves the config.
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": volume.claim_name,
            "namespace": app.namespace,
            "labels": labels.backed_up_volume(app.name),
        }
        spec: k8s.core.v1.PersistentVolumeClaimSpecArgsDict = {
            "access_modes": list(volume.access_modes),
            "storage_class_name": volume.storage_class,
            "resources": {"requests": {"storage": volume.capacity}},
            "data_source_ref": {
                "api_group": "volsync.backube",
                "kind": "ReplicationDestination",
                "name": bootstrap_name,
            },
        }
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-volume",
            metadata=metadata,
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self, retain_on_delete=True, depends_on=[destination]
            ),
        )

        for target in args.targets:
            k8s.apiextensions.CustomResource(
                f"{name}-{target.repository}",
                api_version=API_VERSION,
                kind="ReplicationSource",
                metadata=self._metadata(target.source_name),
                spec=ReplicationSourceSpec(
                    source_pvc=volume.claim_name,
                    trigger=Trigger(schedule=target.schedule),
                    kopia=KopiaSourceOptions(
                        repository=target.secret_name,
                        copy_method="Snapshot",
                        compression=args.compression,
                        retain=Retain(**target.retain.model_dump()),
                        mover_security_context=security,
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
            self._restore(name, args, security, claim)
        if args.drill_schedule is not None:
            self._drill(name, args, security)

        self.claim_name = pulumi.Output.from_input(volume.claim_name)
        self.sources = pulumi.Output.from_input(inventory_entry(args)["repositories"])
        self.register_outputs({"claimName": self.claim_name, "sources": self.sources})

    def _restore(
        self, name: str, args: BackupEnabledAppArgs, security: PodSecurityContext, claim: pulumi.Resource
    ) -> None:
        """Restore into the app's own claim (scale the app to zero first: see the runbook)."""
        request = args.restore
        assert request is not None
        k8s.apiextensions.CustomResource(
            f"{name}-restore",
            api_version=API_VERSION,
            kind="ReplicationDestination",
            metadata=self._metadata(f"{args.app.name}-restore"),
            spec=ReplicationDestinationSpec(
                trigger=Trigger(manual=request.trigger),
                kopia=KopiaDestinationOptions(
                    repository=request.target.secret_name,
                    copy_method="Direct",
                    destination_pvc=args.volume.claim_name,
                    source_identity=SourceIdentity(
                        source_name=request.source_name, source_namespace=request.source_namespace
                    ),
                    previous=request.previous,
                    restore_as_of=request.restore_as_of,
                    mover_security_context=security,
                    cache_capacity=args.cache.capacity,
                    cache_storage_class_name=args.cache.storage_class,
                    mover_volumes=request.target.mover_volumes,
                ),
            ).to_wire(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[claim]),
        )

    def _drill(self, name: str, args: BackupEnabledAppArgs, security: PodSecurityContext) -> None:
        """A scheduled test restore of the latest snapshot into a scratch volume nothing mounts.

        Same repository, identity, storage class and size as the bootstrap restore, so a passing
        drill means the real restore would work; VolSync deletes the scratch and cache volumes
        after each run (`cleanupTempPVC`, `cleanupCachePVC`).
        """
        volume, bootstrap = args.volume, args.bootstrap
        k8s.apiextensions.CustomResource(
            f"{name}-drill",
            api_version=API_VERSION,
            kind="ReplicationDestination",
            metadata=self._metadata(f"{args.app.name}-drill"),
            spec=ReplicationDestinationSpec(
                trigger=Trigger(schedule=args.drill_schedule),
                kopia=KopiaDestinationOptions(
                    repository=bootstrap.secret_name,
                    copy_method="Direct",
                    capacity=volume.capacity,
                    access_modes=volume.access_modes,
                    storage_class_name=volume.storage_class,
                    source_identity=SourceIdentity(
                        source_name=bootstrap.source_name,
                        source_namespace=args.app.namespace,
                        source_pvc_name=volume.claim_name,
                    ),
                    mover_security_context=security,
                    cache_capacity=args.cache.capacity,
                    cache_storage_class_name=args.cache.storage_class,
                    mover_volumes=bootstrap.mover_volumes,
                    cleanup_temp_pvc=True,
                    cleanup_cache_pvc=True,
                ),
            ).to_wire(),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _metadata(self, name: str) -> k8s.meta.v1.ObjectMetaArgsDict:
        # TypedDict rather than ObjectMetaArgs: the same static typing, and the SDK does not
        # have to walk an input class's annotations for every one of hundreds of objects.
        return {"name": name, "namespace": self._namespace, "labels": labels.app(self._app)}
