"""The VolSync mover's objects, made as children of the app and repository components.

For an app, one ReplicationSource per backup (and per `backupNow`), and a ReplicationDestination
for the bootstrap that fills the claim, a restore asked for in config, and the drill; for a
repository, its KopiaMaintenance. The components make what every mover needs (the claim, the
repository Secrets and volumes, the bucket) and hand the rest to their mover's module: this one
for VolSync (`volsync_plan.py` names these objects, `volsync.py` types their specs). A second
mover brings a module with the same calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from . import labels
from .names import Role
from .plan import AppPlan, PointPlan, RepositoryPlan, RestorePlan, SourcePlan
from .tree import Node
from .volsync import (
    API_VERSION,
    KopiaDestinationOptions,
    KopiaMaintenanceSpec,
    KopiaSourceOptions,
    MaintenanceRepository,
    ReplicationDestinationSpec,
    ReplicationSourceSpec,
    Retain,
    Trigger,
    security_context_for,
)

#: The bootstrap restore runs once, when the ReplicationDestination is created.
BOOTSTRAP_TRIGGER = "restore-once"
#: What a claim's `dataSourceRef` names: the bootstrap ReplicationDestination.
DATA_SOURCE_GROUP = labels.VOLSYNC_GROUP


class VolsyncMover:
    """Makes an app's VolSync objects under `parent`, reading names and inputs from its plan."""

    data_source_group = DATA_SOURCE_GROUP

    def __init__(self, parent: pulumi.Resource, plan: AppPlan) -> None:
        self._parent, self._plan = parent, plan

    def bootstrap(self) -> tuple[pulumi.Resource, Node]:
        """The ReplicationDestination that fills the claim when it is made (first deploy: an empty
        volume, as the repository has nothing for the app; a rebuild: the latest snapshot).
        Returns it and its node, for the claim's `dataSourceRef`."""
        ap = self._plan
        volume, fill = ap.volume, ap.first_fill
        assert fill is not None
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
        return destination, ap.destinations.of(Role.BOOTSTRAP)

    def backups(self, after_claim: list[pulumi.Resource]) -> None:
        """A ReplicationSource per repository, and `backupNow`'s one-off ones."""
        ap = self._plan
        for source in ap.sources:
            self._source(source, source.node, Trigger(schedule=source.schedule), after_claim, labels.app(ap.app.name))
            if source.now is not None:
                # A manual trigger on the scheduled source would replace its schedule until removed:
                # the extra backup is its own source, same identity and retention, so its snapshot
                # joins the app's history. A new token runs it once; an unchanged one never again.
                self._source(source, source.now, Trigger(manual=ap.app.backup_now), after_claim,
                             labels.one_off_source(ap.app.name))

    def restores(self, after_claim: list[pulumi.Resource]) -> None:
        """The restore asked for in config, and the drill."""
        ap = self._plan
        if ap.restore is not None:
            self._restore(ap.restore, after_claim)
        if ap.drill_schedule is not None:
            self._drill(ap.drill_schedule)

    def _source(self, source: SourcePlan, node: Node, trigger: Trigger, depends_on: list[pulumi.Resource],
                object_labels: dict[str, str]) -> None:
        """A ReplicationSource writing the app's history (its identity, not the source's name,
        which VolSync would use by default) to the source's repository."""
        ap = self._plan
        volume, reader = ap.volume, ap.readers[source.repository]
        k8s.apiextensions.CustomResource(
            node.resource,
            api_version=API_VERSION,
            kind=node.kind,
            metadata={**node.metadata, "labels": object_labels},
            spec=ReplicationSourceSpec(
                source_pvc=ap.claim.name,
                trigger=trigger,
                kopia=KopiaSourceOptions(
                    repository=reader.secret_name,
                    username=source.username,
                    hostname=source.hostname,
                    copy_method="Snapshot",
                    compression=ap.compression,
                    retain=Retain(**source.retain.model_dump()),
                    mover_security_context=security_context_for(reader.mover),
                    cache_capacity=ap.cache.capacity,
                    cache_storage_class_name=ap.cache.storage_class,
                    storage_class_name=volume.storage_class,
                    volume_snapshot_class_name=volume.snapshot_class,
                    mover_volumes=reader.mover_volumes,
                ),
            ).to_wire(),
            opts=pulumi.ResourceOptions(parent=self._parent, depends_on=depends_on),
        )

    def _restore(self, request: RestorePlan, depends_on: list[pulumi.Resource]) -> None:
        """Restore into the app's own claim (scale the app to zero first: see the runbook)."""
        self._destination(
            Role.RESTORE,
            Trigger(manual=request.trigger),
            request,
            depends_on=depends_on,
            copy_method="Direct",
            destination_pvc=self._plan.claim.name,
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
        ap = self._plan
        self._destination(
            Role.DRILL,
            Trigger(schedule=schedule),
            ap.drill_point,
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
        ap = self._plan
        node, reader = ap.destinations.of(role), ap.readers[point.repository]
        resource: pulumi.Resource = k8s.apiextensions.CustomResource(
            node.resource,
            api_version=API_VERSION,
            kind=node.kind,
            metadata={**node.metadata, "labels": labels.app(ap.app.name)},
            spec=ReplicationDestinationSpec(
                trigger=trigger,
                kopia=KopiaDestinationOptions(
                    repository=reader.secret_name,
                    username=point.username,
                    hostname=point.hostname,
                    previous=point.previous,
                    restore_as_of=point.restore_as_of,
                    mover_security_context=security_context_for(reader.mover),
                    cache_capacity=ap.cache.capacity,
                    cache_storage_class_name=ap.cache.storage_class,
                    mover_volumes=reader.mover_volumes,
                    **volume_options,
                ),
            ).to_wire(),
            opts=pulumi.ResourceOptions(parent=self._parent, depends_on=list(depends_on)),
        )
        return resource


def maintenance(parent: pulumi.Resource, plan: RepositoryPlan, after: list[pulumi.Resource]) -> pulumi.Resource:
    """The repository's KopiaMaintenance, once its Secret and volume (and bucket) exist: the fork's
    controller runs it as a CronJob, as `plan.identity` (the uid every filesystem mover runs as)."""
    node = plan.maintenance
    assert node is not None  # a mirror copy has none
    spec = KopiaMaintenanceSpec(
        repository=MaintenanceRepository(repository=plan.secret_name),
        trigger=Trigger(schedule=plan.maintenance_schedule),
        mover_volumes=plan.access.mover_volumes,
        pod_security_context=security_context_for(plan.identity),
        cache_capacity=plan.cache.capacity,
        cache_storage_class_name=plan.cache.storage_class,
    )
    made: pulumi.Resource = k8s.apiextensions.CustomResource(
        node.resource,
        api_version=API_VERSION,
        kind=node.kind,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=node.name, namespace=node.namespace, labels=labels.repository(plan.repository.name),
        ),
        spec=spec.to_wire(),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )
    return made
