"""SharedKopiaRepository: one Kopia repository that every app of a destination writes to.

All apps share the repository root, the URL and the one password; Kopia keeps them apart by
identity (`<ReplicationSource>@<namespace>`). The repository Secret has to live in each app's
namespace, and its contents are the same for every app there, so there is exactly one Secret
per (namespace, repository), plus one beside the KopiaMaintenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from . import labels
from .config import CacheSettings, MoverIdentity, Repository
from .volsync import (
    API_VERSION,
    FILESYSTEM_REPOSITORY_URL,
    REPOSITORY_MOUNT,
    KopiaMaintenanceSpec,
    MaintenanceRepository,
    MoverVolume,
    MoverVolumeSource,
    NfsVolumeSource,
    Trigger,
    security_context_for,
)


@dataclass(frozen=True)
class SharedKopiaRepositoryArgs:
    repository: Repository
    """The destination as configured (backend, target, maintenance)."""
    password: SecretStr
    """The shared Kopia password; it only ever leaves here as a Pulumi secret."""
    namespaces: tuple[str, ...]
    """Namespaces that have apps writing to this repository: each gets the Secret."""
    maintenance_schedule: str
    """Concrete 5-field cron for KopiaMaintenance (already spread)."""
    maintenance_identity: MoverIdentity
    cache: CacheSettings


def secret_name(repository: Repository) -> str:
    return f"volsync-kopia-{repository.name}"


def mover_volumes(repository: Repository) -> tuple[MoverVolume, ...]:
    """Volumes a mover needs to reach the repository: filesystem repositories only."""
    if repository.backend == "nfs":
        assert repository.nfs is not None
        source = MoverVolumeSource(
            nfs=NfsVolumeSource(server=repository.nfs.server, path=repository.nfs.path)
        )
        return (MoverVolume(mount_path=REPOSITORY_MOUNT, volume_source=source),)
    return ()


def repository_target(repository: Repository) -> str:
    """Where the repository really is; the policy pack compares passwords per target."""
    if repository.nfs is not None:
        return f"nfs://{repository.nfs.server}{repository.nfs.path}"
    raise NotImplementedError(f"backend {repository.backend}")  # refused by config validation


def repository_url(repository: Repository) -> str:
    if repository.is_filesystem:
        return FILESYSTEM_REPOSITORY_URL
    raise NotImplementedError(f"backend {repository.backend}")  # refused by config validation


class SharedKopiaRepository(pulumi.ComponentResource):
    """Repository Secrets for every namespace with apps, and the repository's maintenance."""

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
        repo = args.repository
        self._repository_name = repo.name
        self.secret_name = secret_name(repo)
        self.mover_volumes = mover_volumes(repo)
        url = repository_url(repo)
        self._target = repository_target(repo)
        password = pulumi.Output.secret(args.password.get_secret_value())

        for namespace in args.namespaces:
            self._secret(f"{name}-{namespace}", namespace, url, password)

        maintenance_ns = repo.maintenance.namespace
        maintenance_secret = self._secret(f"{name}-maintenance", maintenance_ns, url, password)
        spec = KopiaMaintenanceSpec(
            repository=MaintenanceRepository(repository=self.secret_name),
            trigger=Trigger(schedule=args.maintenance_schedule),
            mover_volumes=self.mover_volumes,
            pod_security_context=security_context_for(args.maintenance_identity),
            cache_capacity=args.cache.capacity,
            cache_storage_class_name=args.cache.storage_class,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-maintenance",
            api_version=API_VERSION,
            kind="KopiaMaintenance",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"kopia-{repo.name}",
                namespace=maintenance_ns,
                labels=labels.repository(repo.name),
            ),
            spec=spec.to_wire(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[maintenance_secret]),
        )

        self.url = pulumi.Output.from_input(url)
        self.namespaces = pulumi.Output.from_input(list(args.namespaces))
        self.register_outputs(
            {"secretName": self.secret_name, "url": self.url, "namespaces": self.namespaces}
        )

    def _secret(
        self, resource_name: str, namespace: str, url: str, password: pulumi.Output[str]
    ) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=self.secret_name,
                namespace=namespace,
                labels=labels.repository(self._repository_name),
                annotations={labels.TARGET: self._target},
            ),
            type="Opaque",
            string_data={"KOPIA_PASSWORD": password, "KOPIA_REPOSITORY": url},
            opts=pulumi.ResourceOptions(parent=self),
        )
