"""SharedKopiaRepository: one Kopia repository that every app of a destination writes to.

All apps share the repository root, the URL and the one password; Kopia keeps them apart by
identity (`<app>@<namespace>`). The repository Secret has to live in each app's namespace, and
its contents are the same for every app there, so there is exactly one Secret per (namespace,
repository), plus one beside the maintenance. For CephFS each of those namespaces also gets a
static PV + PVC on the one shared subvolume (moverVolumes cannot mount CephFS directly); for S3
the bucket itself is created, protected and retained. The maintenance is the mover's
(`volsync_mover.maintenance`: a KopiaMaintenance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import labels, tree
from .kopiur_mover import repository as kopiur_repository
from .outputs import known
from .plan import RepositoryPlan
from .secrets import cluster_secret
from .tree import BucketPlan, Node
from .volsync_mover import maintenance


@dataclass(frozen=True)
class SharedKopiaRepositoryArgs:
    plan: RepositoryPlan
    """The repository as configured, its access, where its Secret goes, its maintenance, names."""
    bucket_provider: Optional[aws.Provider] = None
    """The aws provider of the repository's S3 endpoint, when the program makes its bucket."""


class SharedKopiaRepository(pulumi.ComponentResource):
    """Repository Secrets for every namespace with apps, its storage, and its maintenance."""

    secret_name: str
    """Name of the repository Secret in every namespace (the movers' `kopia.repository`)."""
    secrets: dict[str, pulumi.Resource]
    """The repository Secret (or ExternalSecret) by namespace."""
    bucket: Optional[aws.s3.Bucket]
    maintenance: Optional[pulumi.Resource]
    url: pulumi.Output[str]
    namespaces: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        args: SharedKopiaRepositoryArgs,
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__(tree.REPOSITORY, name, None, opts)
        plan = self._plan = args.plan
        self.secret_name = plan.secret_name

        self.bucket = bucket = self._bucket(plan.bucket, args.bucket_provider) if plan.bucket is not None else None
        made: dict[str, list[pulumi.Resource]] = {}
        self.secrets = {}
        for placement in plan.placements:
            self.secrets[placement.namespace] = self._credentials(placement.secret)
            made[placement.namespace] = [self.secrets[placement.namespace]]
            if placement.cephfs is not None:
                made[placement.namespace].append(self._cephfs_claim(placement.cephfs.volume, placement.cephfs.claim))

        home = plan.repository.maintenance.namespace
        after = made[home] + ([bucket] if bucket else [])
        self.maintenance = None
        if plan.maintenance is not None:
            self.maintenance = maintenance(self, plan, after)
        if plan.cluster_repository is not None:
            # Kopiur's repository object maintains the repository too (a lease, not a CronJob).
            self.maintenance = kopiur_repository(self, plan, after)

        self.url = pulumi.Output.from_input(plan.access.url)
        self.namespaces = known(list(plan.namespaces))
        self.register_outputs(
            {"secretName": self.secret_name, "url": self.url, "namespaces": self.namespaces}
        )

    # -- the repository Secret, from config or from an external secret manager -------------

    def _credentials(self, node: Node) -> pulumi.Resource:
        access, repo = self._plan.access, self._plan.repository
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": node.name,
            "namespace": node.namespace,
            "labels": labels.repository(repo.name),
            "annotations": {labels.TARGET: repo.target},
        }
        return cluster_secret(node, metadata, access.values, parent=self)

    # -- storage ---------------------------------------------------------------------------

    def _cephfs_claim(self, pv: Node, pvc: Node) -> pulumi.Resource:
        """A static PV on the shared subvolume and the PVC bound to it, in one namespace.

        Every PV names the same volumeHandle: the repository is one directory tree that all
        namespaces' movers open. Both outlive the program: they hold (a view of) the backups.
        """
        repo = self._plan.repository
        ceph = repo.cephfs
        assert ceph is not None
        attributes = {"clusterID": ceph.cluster_id, "fsName": ceph.fs_name, "staticVolume": "true"}
        if ceph.root_path:
            attributes["rootPath"] = ceph.root_path
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        volume = k8s.core.v1.PersistentVolume(
            pv.resource,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=pv.name, labels=labels.repository(repo.name)),
            spec=k8s.core.v1.PersistentVolumeSpecArgs(
                access_modes=["ReadWriteMany"],
                capacity={"storage": ceph.capacity},
                persistent_volume_reclaim_policy="Retain",
                storage_class_name="",
                volume_mode="Filesystem",
                claim_ref=k8s.core.v1.ObjectReferenceArgs(namespace=pvc.namespace, name=pvc.name),
                csi=k8s.core.v1.CSIPersistentVolumeSourceArgs(
                    driver=ceph.driver,
                    volume_handle=ceph.volume_handle,
                    volume_attributes=attributes,
                    node_stage_secret_ref=k8s.core.v1.SecretReferenceArgs(
                        name=ceph.node_stage_secret.name, namespace=ceph.node_stage_secret.namespace
                    ),
                ),
            ),
            opts=keep,
        )
        claim: pulumi.Resource = k8s.core.v1.PersistentVolumeClaim(
            pvc.resource,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=pvc.name, namespace=pvc.namespace, labels=labels.repository(repo.name)
            ),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                volume_name=pv.name,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": ceph.capacity}),
            ),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[volume]),
        )
        return claim

    def _bucket(self, bucket: BucketPlan, provider: Optional[aws.Provider]) -> aws.s3.Bucket:
        """The bucket holds every app's backups: protected, and kept if Pulumi lets go of it."""
        assert provider is not None
        return aws.s3.Bucket(
            bucket.node.resource,
            bucket=bucket.bucket,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True, retain_on_delete=True),
        )
