"""Kopiur's objects, made as children of the app and repository components (`kopiur_plan.py`
names them, `kopiur.py` types their specs).

For an app, per repository a SnapshotPolicy that pins the app's identity and the fork's `/data`
path (so a history the fork wrote is this policy's history), a SnapshotSchedule at the planned
minute with Kopiur's own jitter, and the populator Restore that fills a claim when it is made:
from the app's history, empty when there is none yet (`onMissingSnapshot: Continue`), so a first
deploy starts empty and a rebuild comes back. The drill is the bootstrap repository's policy's
deep verification. For a repository, its ClusterRepository, which also runs its maintenance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional

import pulumi
import pulumi_kubernetes as k8s
from backup_contract import KOPIUR_GROUP

from . import labels
from .config import Hook, MoverIdentity
from .config import Hooks as ConfigHooks
from .kopiur import (
    API_VERSION,
    Cache,
    ClaimVolume,
    Compression,
    Cron,
    DeepVerification,
    Hooks,
    HookStep,
    HttpRequest,
    Identity,
    IdentitySource,
    Mover,
    PodSelector,
    PolicyRef,
    PvcSource,
    RepositoryRef,
    RestoreOptions,
    RestorePolicy,
    RestoreSource,
    RestoreSpec,
    RestoreTarget,
    Retention,
    SnapshotPolicySpec,
    SnapshotScheduleSpec,
    SnapshotSpec,
    Source,
    Verification,
    WorkloadExec,
)
from .kopiur_plan import DATA_PATH, replication_spec
from .names import Role
from .plan import AppPlan, MirrorPlan, PointPlan, RepositoryPlan, SourcePlan
from .tree import Node
from .volsync import Spec, security_context_for

#: What a claim's `dataSourceRef` names: the bootstrap Restore.
DATA_SOURCE_GROUP = KOPIUR_GROUP


class KopiurMover:
    """Makes an app's Kopiur objects under `parent`, reading names and inputs from its plan."""

    data_source_group = DATA_SOURCE_GROUP

    def __init__(self, parent: pulumi.Resource, plan: AppPlan) -> None:
        self._parent, self._plan = parent, plan

    def bootstrap(self) -> tuple[pulumi.Resource, Node]:
        """The Restore whose populator fills the claim when it is made."""
        ap = self._plan
        fill = ap.first_fill
        assert fill is not None
        node = ap.destinations.of(Role.BOOTSTRAP)
        # A first deploy has no snapshot yet and starts empty; a point asked for in
        # `backups:recoveries` that is not there fails, rather than filling the claim empty.
        spec = self._restore(fill, RestoreTarget(populator={}), "Fail" if fill.required else "Continue")
        return self._object(node, spec, labels.app(ap.app.name)), node

    def backups(self, after_claim: Sequence[pulumi.Resource]) -> None:
        for source in self._plan.sources:
            policy = self._object(source.node, self._policy(source), labels.app(self._plan.app.name), after_claim)
            assert source.schedule_node is not None
            self._object(source.schedule_node, SnapshotScheduleSpec(
                policy_ref=PolicyRef(name=source.node.name),
                schedule=Cron(cron=source.schedule, jitter=self._plan.jitter or None),
            ), labels.app(self._plan.app.name), [policy])
            if source.now is not None:
                # The next token makes a new Snapshot; this one is left to Kopiur (retained on
                # delete), whose retention prunes it with the policy's others. Deleting it here
                # would delete the snapshot it took (its deletionPolicy is Delete, as Kopiur's
                # own backups' are), and `Retain` would leave the snapshot beyond retention.
                self._object(source.now, SnapshotSpec(policy_ref=PolicyRef(name=source.node.name)),
                             labels.one_off_source(self._plan.app.name), [policy], retain=True)

    def restores(self, after_claim: Sequence[pulumi.Resource]) -> None:
        """The restore asked for in config, into the app's live claim (scale the app to zero
        first: see the runbook); the drill is the bootstrap policy's deep verification."""
        ap = self._plan
        if ap.restore is None:
            return
        # The claim is live: without file deletion, files the snapshot does not have stay beside
        # the restored ones (a stale SQLite -wal next to an older database).
        spec = self._restore(ap.restore, RestoreTarget(pvc_ref=ClaimVolume(name=ap.claim.name)), "Fail",
                             RestoreOptions(enable_file_deletion=True))
        self._object(ap.destinations.of(Role.RESTORE), spec, labels.app(ap.app.name), after_claim)

    def _restore(self, point: PointPlan, target: RestoreTarget, missing: Literal["Fail", "Continue"],
                 options: Optional[RestoreOptions] = None) -> RestoreSpec:
        """A Restore of `point` (which history, which snapshot of it) into `target`, read as the
        repository's reader: the fork's `/data` path, `previous` as the offset from the newest."""
        return RestoreSpec(
            repository=RepositoryRef(kind="ClusterRepository", name=point.repository),
            source=RestoreSource(identity=IdentitySource(
                username=point.username, hostname=point.hostname, source_path=DATA_PATH,
                offset=point.previous, as_of=point.restore_as_of,
            )),
            target=target,
            policy=RestorePolicy(on_missing_snapshot=missing),
            options=options,
            mover=self._mover(self._plan.readers[point.repository].mover),
        )

    def _policy(self, source: SourcePlan) -> SnapshotPolicySpec:
        ap = self._plan
        volume, retain = ap.volume, source.retain
        drilled = ap.drill_schedule is not None and source.repository == ap.bootstrap
        return SnapshotPolicySpec(
            repository=RepositoryRef(kind="ClusterRepository", name=source.repository),
            identity=Identity(username=source.username, hostname=source.hostname),
            sources=(Source(pvc=PvcSource(name=ap.claim.name), source_path_override=DATA_PATH),),
            copy_method="Snapshot",
            retention=Retention(keep_latest=retain.latest, keep_hourly=retain.hourly, keep_daily=retain.daily,
                                keep_weekly=retain.weekly, keep_monthly=retain.monthly, keep_annual=retain.yearly),
            volume_snapshot_class_name=volume.snapshot_class,
            compression=Compression(compressor=ap.compression),
            mover=self._mover(ap.readers[source.repository].mover),
            verification=Verification(deep=DeepVerification(
                schedule=Cron(cron=ap.drill_schedule or ""), capacity=volume.capacity,
                storage_class_name=volume.storage_class,
            )) if drilled else None,
            hooks=hooks(ap.app.hooks_to_run) if ap.app.hooks_to_run is not None else None,
        )

    def _mover(self, identity: MoverIdentity) -> Mover:
        """Who the mover runs as (as the fork's did: `plan.mover_identity`) and its cache."""
        ap = self._plan
        return Mover(pod_security_context=security_context_for(identity),
                     cache=Cache(capacity=ap.cache.capacity, storage_class_name=ap.cache.storage_class))

    def _object(self, node: Node, spec: Spec, object_labels: dict[str, str],
                depends_on: Sequence[pulumi.Resource] = (), retain: bool = False) -> pulumi.Resource:
        made: pulumi.Resource = k8s.apiextensions.CustomResource(
            node.resource, api_version=API_VERSION, kind=node.kind,
            metadata={**node.metadata, "labels": object_labels}, spec=spec.to_wire(),
            opts=pulumi.ResourceOptions(parent=self._parent, depends_on=list(depends_on), retain_on_delete=retain),
        )
        return made


def hooks(config: ConfigHooks) -> Hooks:
    """`backups:apps[].hooks` as Kopiur's: an exec in the pod its labels find, or an HTTP call."""
    def step(hook: Hook) -> HookStep:
        if hook.exec is not None:
            return HookStep(workload_exec=WorkloadExec(
                pod_selector=PodSelector(match_labels=dict(hook.exec.pod)), container=hook.exec.container,
                command=hook.exec.command, timeout=hook.timeout, continue_on_failure=hook.continue_on_failure))
        assert hook.http is not None
        return HookStep(http_request=HttpRequest(url=hook.http.url, method=hook.http.method, timeout=hook.timeout,
                                                 continue_on_failure=hook.continue_on_failure))
    return Hooks(before_snapshot=tuple(map(step, config.before_backup)),
                 after_snapshot=tuple(map(step, config.after_backup)))


def repository(parent: pulumi.Resource, plan: RepositoryPlan, after: list[pulumi.Resource]) -> pulumi.Resource:
    """The ClusterRepository, once its Secrets and volumes (and bucket) exist."""
    repo = plan.cluster_repository
    assert repo is not None
    made: pulumi.Resource = k8s.apiextensions.CustomResource(
        repo.node.resource, api_version=API_VERSION, kind=repo.node.kind,
        metadata={**repo.node.metadata, "labels": labels.repository(plan.repository.name)},
        spec=repo.spec.to_wire(),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )
    return made


def replication(parent: pulumi.Resource, plan: MirrorPlan, source: str, identity: MoverIdentity) -> pulumi.Resource:
    """`mirrorTo`: the RepositoryReplication that copies `source` to the S3 copy."""
    node = plan.runner
    made: pulumi.Resource = k8s.apiextensions.CustomResource(
        node.resource, api_version=API_VERSION, kind=node.kind,
        metadata={**node.metadata, "labels": labels.repository(source)},
        spec=replication_spec(source, plan.target, plan.target_secret, node.namespace, plan.schedule, plan.suspend,
                              identity).to_wire(),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return made
