"""BackupEnabledApp: an app's PVC that restores itself, and its backups to every destination.

The PVC is populated from a ReplicationDestination (`dataSourceRef`), so after a cluster
rebuild it comes back with the latest snapshot instead of empty; on the very first deploy the
repository has nothing for the app and the volume starts empty. One ReplicationSource per
repository backs it up. Every source and destination names the app's Kopia identity
(`<app>@<namespace>` unless `identity` says otherwise), so the history is the app's, not a
source object's. An `existingClaim` is backed up and restored into, never made here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from . import labels, names
from .config import CacheSettings, MoverIdentity
from .names import Role
from .outputs import known
from .plan import AppPlan, PointPlan, RestorePlan, SourcePlan, claim_resource, destinations
from .volsync import (
    API_VERSION,
    KopiaDestinationOptions,
    KopiaSourceOptions,
    MoverVolume,
    ReplicationDestinationSpec,
    ReplicationSourceSpec,
    Retain,
    Trigger,
    security_context_for,
)

#: The bootstrap restore runs once, when the ReplicationDestination is created.
BOOTSTRAP_TRIGGER = "restore-once"


@dataclass(frozen=True)
class Reader:
    """What a mover needs to reach one repository from the app's namespace."""

    secret_name: str
    mover_volumes: tuple[MoverVolume, ...]
    mover: MoverIdentity
    """Who the mover runs as (plan.mover_identity)."""


@dataclass(frozen=True)
class BackupTarget(SourcePlan):
    """One destination of an app as the plan decided it (repository, source name, identity,
    schedule, retention, mover identity), with what a mover needs to reach the repository."""

    secret_name: str
    mover_volumes: tuple[MoverVolume, ...]


@dataclass(frozen=True)
class BackupEnabledAppArgs:
    plan: AppPlan
    """Everything decided about the app: volume, sources, restores, names (plan.plan_stack)."""
    targets: tuple[BackupTarget, ...]
    """One per repository the app backs up to, in config order."""
    readers: Mapping[str, Reader]
    """Every repository a restore of the app may read (`plan.readable`), by name."""
    compression: str
    cache: CacheSettings


def inventory_entry(args: BackupEnabledAppArgs) -> dict[str, Any]:
    """What the stack reports for the app: claim, bootstrap repository, and per repository the
    source, its concrete schedule and the Kopia identity its snapshots carry."""
    ap = args.plan
    return {
        "claim": ap.volume.claim_name,
        "claimManaged": ap.managed_claim,
        "bootstrapFrom": ap.first_fill.repository if ap.first_fill else None,
        "identity": ap.app.history,
        "repositories": {
            t.repository: {"source": t.name, "schedule": t.schedule, "identity": f"{t.username}@{t.hostname}"}
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
        ap = args.plan
        app, volume = ap.app, ap.volume
        self._app, self._namespace = app.name, app.namespace
        self._prefix, self._args = name, args

        claim = self._claim() if ap.managed_claim else None
        after_claim = [claim] if claim is not None else []
        for target in args.targets:
            self._source(target, Trigger(schedule=target.schedule), names.child(name, target.repository),
                         target.name, after_claim, labels.app(app.name))
            if app.backup_now:
                # A manual trigger on the scheduled source would replace its schedule until removed:
                # the extra backup is its own source, same identity and retention, so its snapshot
                # joins the app's history. A new token runs it once; an unchanged one never again.
                self._source(target, Trigger(manual=app.backup_now), names.child(name, target.repository, "now"),
                             target.now_name, after_claim, labels.one_off_source(app.name))

        if ap.restore is not None:
            self._restore(ap.restore, after_claim)
        if ap.drill_schedule is not None:
            self._drill(ap.drill_schedule)

        self.claim_name = pulumi.Output.from_input(volume.claim_name)
        self.sources = known(inventory_entry(args)["repositories"])
        self.register_outputs({"claimName": self.claim_name, "sources": self.sources})

    def _claim(self) -> pulumi.Resource:
        """The claim, filled by the bootstrap restore when it is made (first deploy: an empty
        volume, as the repository has nothing for the app; a rebuild: the latest snapshot)."""
        ap = self._args.plan
        app, volume, fill = ap.app, ap.volume, ap.first_fill
        assert fill is not None
        bootstrap_name, _ = destinations(ap)[Role.BOOTSTRAP]
        destination = self._destination(
            Role.BOOTSTRAP,
            Trigger(manual=BOOTSTRAP_TRIGGER),
            fill,
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
                "api_group": labels.VOLSYNC_GROUP,
                "kind": "ReplicationDestination",
                "name": bootstrap_name,
            },
        }
        claim: pulumi.Resource = k8s.core.v1.PersistentVolumeClaim(
            claim_resource(ap),
            metadata=metadata,
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[destination]),
        )
        return claim

    def _source(self, target: BackupTarget, trigger: Trigger, resource_name: str, name: str,
                depends_on: list[pulumi.Resource], object_labels: dict[str, str]) -> None:
        """A ReplicationSource writing the app's history (its identity, not the source's name,
        which VolSync would use by default) to `target`."""
        args, volume = self._args, self._args.plan.volume
        k8s.apiextensions.CustomResource(
            resource_name,
            api_version=API_VERSION,
            kind="ReplicationSource",
            metadata={"name": name, "namespace": self._namespace, "labels": object_labels},
            spec=ReplicationSourceSpec(
                source_pvc=volume.claim_name,
                trigger=trigger,
                kopia=KopiaSourceOptions(
                    repository=target.secret_name,
                    username=target.username,
                    hostname=target.hostname,
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _restore(self, request: RestorePlan, depends_on: list[pulumi.Resource]) -> None:
        """Restore into the app's own claim (scale the app to zero first: see the runbook)."""
        self._destination(
            Role.RESTORE,
            Trigger(manual=request.trigger),
            request,
            depends_on=depends_on,
            copy_method="Direct",
            destination_pvc=self._args.plan.volume.claim_name,
            # The claim is live: without this, files the snapshot does not have stay beside the
            # restored ones (a stale SQLite -wal next to an older database).
            enable_file_deletion=True,
        )

    def _drill(self, schedule: str) -> None:
        """A scheduled test restore of the latest snapshot into a scratch volume nothing mounts.

        Same repository, identity, storage class and size as the bootstrap restore, so a passing
        drill means the real restore would work; VolSync deletes the scratch and cache volumes
        after each run (`cleanupTempPVC`, `cleanupCachePVC`).
        """
        ap = self._args.plan
        username, hostname = ap.app.kopia_identity
        self._destination(
            Role.DRILL,
            Trigger(schedule=schedule),
            PointPlan(repository=ap.bootstrap, username=username, hostname=hostname),
            copy_method="Direct",
            capacity=ap.volume.capacity,
            access_modes=ap.volume.access_modes,
            storage_class_name=ap.volume.storage_class,
            cleanup_temp_pvc=True,
            cleanup_cache_pvc=True,
        )

    def _destination(
        self,
        role: Role,
        trigger: Trigger,
        point: PointPlan,
        depends_on: Sequence[pulumi.Resource] = (),
        **volume_options: Any,
    ) -> pulumi.Resource:
        """A ReplicationDestination reading `point` (history, repository, snapshot) as the app's
        movers would (same security context, cache and repository volumes).

        The identity is given as username and hostname, the fields the fork reads first
        (builder.go): every restore path reads exactly the history the sources write."""
        name, resource_name = destinations(self._args.plan)[role]
        reader = self._args.readers[point.repository]
        resource: pulumi.Resource = k8s.apiextensions.CustomResource(
            resource_name,
            api_version=API_VERSION,
            kind="ReplicationDestination",
            metadata=self._metadata(name),
            spec=ReplicationDestinationSpec(
                trigger=trigger,
                kopia=KopiaDestinationOptions(
                    repository=reader.secret_name,
                    username=point.username,
                    hostname=point.hostname,
                    previous=point.previous,
                    restore_as_of=point.restore_as_of,
                    mover_security_context=security_context_for(reader.mover),
                    cache_capacity=self._args.cache.capacity,
                    cache_storage_class_name=self._args.cache.storage_class,
                    mover_volumes=reader.mover_volumes,
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
