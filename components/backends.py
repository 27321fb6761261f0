"""How a mover reaches each kind of repository: the Secret's variables and the volumes to mount.

Only variables the fork's mover reads are set. For S3 the region is read only from AWS_REGION /
AWS_DEFAULT_REGION (both are set), the endpoint is host[:port], and plain-HTTP endpoints (Garage
on a LAN) need KOPIA_S3_DISABLE_TLS. Every repository is addressed at its root: no per-app
prefix, ever. Filesystem repositories are mounted through `moverVolumes` at /mnt/repository.
"""

from __future__ import annotations

from dataclasses import dataclass

from backup_contract import (
    AWS_ACCESS_KEY_ID,
    AWS_REGIONS,
    AWS_SECRET_ACCESS_KEY,
    KOPIA_PASSWORD,
    KOPIA_REPOSITORY,
    KOPIA_S3_DISABLE_TLS,
    KOPIA_S3_ENDPOINT,
)
from pydantic import SecretStr

from . import names
from .config import ExternalSecretRef, Repository, SecretValue
from .secret_values import SecretValues, put_secret
from .volsync import (
    FILESYSTEM_REPOSITORY_URL,
    REPOSITORY_MOUNT,
    ClaimVolumeSource,
    MoverVolume,
    MoverVolumeSource,
    NfsVolumeSource,
)

#: Where Kopia's server reads its login (cli/command_server.go: --server-username/-password).
UI_USERNAME, UI_PASSWORD = "KOPIA_SERVER_USERNAME", "KOPIA_SERVER_PASSWORD"
#: Where the web UI's Kopia server listens (the program's Deployment, or Kopiur's server).
UI_PORT = 51515


@dataclass(frozen=True)
class RepositoryAccess:
    """What a mover needs to open one repository."""

    values: SecretValues
    """The repository Secret's variables: plain (URL, endpoint, region), held in Pulumi config,
    or held in an external secret manager."""
    mover_volumes: tuple[MoverVolume, ...] = ()

    @property
    def url(self) -> str:
        return self.values.plain[KOPIA_REPOSITORY]


def access_of(repository: Repository, password: SecretValue) -> RepositoryAccess:
    secret: dict[str, SecretStr] = {}
    external: dict[str, ExternalSecretRef] = {}
    put_secret(KOPIA_PASSWORD, password, secret, external)
    if repository.nfs is not None:
        source = MoverVolumeSource(
            nfs=NfsVolumeSource(server=repository.nfs.server, path=repository.nfs.path)
        )
        return RepositoryAccess(
            SecretValues({KOPIA_REPOSITORY: FILESYSTEM_REPOSITORY_URL}, secret, external),
            (MoverVolume(mount_path=REPOSITORY_MOUNT, volume_source=source),),
        )
    if repository.cephfs is not None:
        claim = ClaimVolumeSource(claim_name=names.cephfs_claim(repository.name))
        source = MoverVolumeSource(persistent_volume_claim=claim)
        return RepositoryAccess(
            SecretValues({KOPIA_REPOSITORY: FILESYSTEM_REPOSITORY_URL}, secret, external),
            (MoverVolume(mount_path=REPOSITORY_MOUNT, volume_source=source),),
        )
    s3, credentials, region = repository.s3, repository.credentials, repository.region
    assert s3 is not None and credentials is not None and region is not None  # config guarantees
    plain = {
        KOPIA_REPOSITORY: f"s3://{s3.bucket}/",
        KOPIA_S3_ENDPOINT: s3.host,
        **{variable: region for variable in AWS_REGIONS},
    }
    if not s3.tls:
        plain[KOPIA_S3_DISABLE_TLS] = "true"
    if credentials.external_secret is not None:
        for name in (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY):
            # Two values from one item: each under its own field, named like the variable.
            external[name] = credentials.external_secret.model_copy(update={"property": name})
    else:
        assert credentials.access_key_id is not None and credentials.secret_access_key is not None
        secret[AWS_ACCESS_KEY_ID] = credentials.access_key_id
        secret[AWS_SECRET_ACCESS_KEY] = credentials.secret_access_key
    return RepositoryAccess(SecretValues(plain, secret, external))

