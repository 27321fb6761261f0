"""SharedKopiaRepository: one Kopia repository that every app of a destination writes to.

All apps share the repository root, the URL and the one password; Kopia keeps them apart by
identity (`<ReplicationSource>@<namespace>`). The repository Secret has to live in each app's
namespace, and its contents are the same for every app there, so there is exactly one Secret
per (namespace, repository), plus one beside the KopiaMaintenance. For CephFS each of those
namespaces also gets a static PV + PVC on the one shared subvolume (moverVolumes cannot mount
CephFS directly); for S3 the bucket itself is created, protected and retained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from . import labels, names
from .backends import RepositoryAccess
from .config import CacheSettings, MoverIdentity, Repository
from .outputs import known
from .secrets import cluster_secret
from .volsync import (
    API_VERSION,
    KopiaMaintenanceSpec,
    MaintenanceRepository,
    Trigger,
    security_context_for,
)


@dataclass(frozen=True)
class SharedKopiaRepositoryArgs:
    repository: Repository
    """The destination as configured (backend, target, maintenance)."""
    access: RepositoryAccess
    """The variables and volumes a mover needs; secret ones only leave here as Pulumi secrets."""
    namespaces: tuple[str, ...]
    """Namespaces that have apps writing to this repository: each gets the Secret."""
    maintenance_schedule: str
    """Concrete 5-field cron for KopiaMaintenance (already spread)."""
    maintenance_identity: MoverIdentity
    cache: CacheSettings
    bucket_provider: Optional[aws.Provider] = None
    """The aws provider of the repository's S3 endpoint; None for filesystem repositories."""
    maintained: bool = True
    """False for a mirror copy: its blobs come from the source, whose maintenance shapes them."""


class SharedKopiaRepository(pulumi.ComponentResource):
    """Repository Secrets for every namespace with apps, its storage, and its maintenance."""

    secret_name: str
    """Name of the repository Secret in every namespace (the movers' `kopia.repository`)."""
    url: pulumi.Output[str]
    namespaces: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        args: SharedKopiaRepositoryArgs,
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__("backups:kopia:SharedKopiaRepository", name, None, opts)
        self._prefix, self._args = name, args
        repo = args.repository
        self.secret_name = names.repository_secret(repo.name)

        bucket = self._bucket() if repo.s3 is not None and repo.manage_bucket else None
        maintenance_ns = repo.maintenance.namespace
        made: dict[str, list[pulumi.Resource]] = {}
        for namespace in dict.fromkeys((*args.namespaces, maintenance_ns)):
            made[namespace] = [self._credentials(namespace)]
            if repo.cephfs is not None:
                made[namespace].append(self._cephfs_claim(namespace))

        if args.maintained:
            self._maintenance(made[maintenance_ns] + ([bucket] if bucket else []))

        self.url = pulumi.Output.from_input(args.access.url)
        self.namespaces = known(list(args.namespaces))
        self.register_outputs(
            {"secretName": self.secret_name, "url": self.url, "namespaces": self.namespaces}
        )

    def _maintenance(self, after: list[pulumi.Resource]) -> None:
        args, repo = self._args, self._args.repository
        spec = KopiaMaintenanceSpec(
            repository=MaintenanceRepository(repository=self.secret_name),
            trigger=Trigger(schedule=args.maintenance_schedule),
            mover_volumes=args.access.mover_volumes,
            pod_security_context=security_context_for(args.maintenance_identity),
            cache_capacity=args.cache.capacity,
            cache_storage_class_name=args.cache.storage_class,
        )
        k8s.apiextensions.CustomResource(
            names.child(self._prefix, "maintenance"),
            api_version=API_VERSION,
            kind="KopiaMaintenance",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=names.kopia_maintenance(repo.name), namespace=repo.maintenance.namespace,
                labels=labels.repository(repo.name),
            ),
            spec=spec.to_wire(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    # -- the repository Secret, from config or from an external secret manager -------------

    def _credentials(self, namespace: str) -> pulumi.Resource:
        access, repo = self._args.access, self._args.repository
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": self.secret_name,
            "namespace": namespace,
            "labels": labels.repository(repo.name),
            "annotations": {labels.TARGET: repo.target},
        }
        return cluster_secret(
            names.child(self._prefix, namespace), metadata, access.plain, access.secret, access.external, parent=self
        )

    # -- storage ---------------------------------------------------------------------------

    def _cephfs_claim(self, namespace: str) -> pulumi.Resource:
        """A static PV on the shared subvolume and the PVC bound to it, in one namespace.

        Every PV names the same volumeHandle: the repository is one directory tree that all
        namespaces' movers open. Both outlive the program: they hold (a view of) the backups.
        """
        repo = self._args.repository
        ceph = repo.cephfs
        assert ceph is not None
        claim_name = names.cephfs_claim(repo.name)
        pv_name = names.cephfs_volume(repo.name, namespace)
        attributes = {"clusterID": ceph.cluster_id, "fsName": ceph.fs_name, "staticVolume": "true"}
        if ceph.root_path:
            attributes["rootPath"] = ceph.root_path
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        volume = k8s.core.v1.PersistentVolume(
            names.child(self._prefix, namespace, "volume"),
            metadata=k8s.meta.v1.ObjectMetaArgs(name=pv_name, labels=labels.repository(repo.name)),
            spec=k8s.core.v1.PersistentVolumeSpecArgs(
                access_modes=["ReadWriteMany"],
                capacity={"storage": ceph.capacity},
                persistent_volume_reclaim_policy="Retain",
                storage_class_name="",
                volume_mode="Filesystem",
                claim_ref=k8s.core.v1.ObjectReferenceArgs(namespace=namespace, name=claim_name),
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
            names.child(self._prefix, namespace, "claim"),
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=claim_name, namespace=namespace, labels=labels.repository(repo.name)
            ),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                volume_name=pv_name,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": ceph.capacity}),
            ),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[volume]),
        )
        return claim

    def _bucket(self) -> aws.s3.Bucket:
        """The bucket holds every app's backups: protected, and kept if Pulumi lets go of it."""
        s3 = self._args.repository.s3
        assert s3 is not None and self._args.bucket_provider is not None
        return aws.s3.Bucket(
            names.child(self._prefix, "bucket"),
            bucket=s3.bucket,
            opts=pulumi.ResourceOptions(
                parent=self, provider=self._args.bucket_provider, protect=True, retain_on_delete=True
            ),
        )
