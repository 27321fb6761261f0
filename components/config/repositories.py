"""`backups:repositories`: each entry is one shared Kopia repository, a backup destination."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional

from backup_contract import normalized_target
from pydantic import Field, field_validator, model_validator

from .fields import (
    AbsolutePath,
    BucketName,
    DnsLabel,
    DnsSubdomain,
    Host,
    IngressHost,
    Model,
    Quantity,
    Schedule,
    Secret,
    Text,
    shown,
)
from .shared import ExternalSecretRef, Retention, SecretValue

Backend = Literal["nfs", "cephfs", "garage", "b2", "r2"]
FILESYSTEM_BACKENDS = ("nfs", "cephfs")
S3_BACKENDS = ("garage", "b2", "r2")
#: Region when none is given: Garage's own name, R2's "auto", B2's from its endpoint.
_DEFAULT_REGIONS = {"garage": "garage", "r2": "auto"}
_B2_ENDPOINT = re.compile(r"s3\.([a-z0-9-]+)\.backblazeb2\.com")
_ENDPOINT = re.compile(r"(?:(https?)://)?([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?/?")
_REGION = re.compile(r"[a-z0-9]([-a-z0-9]{0,62})")

_IMAGE_MOVED = ("image: every Kopia pod runs backups:defaults.kopiaImage (one Kopia version for the whole "
                "repository, matched to the mover's); remove this key and set that one")


def _no_own_image(data: Any) -> Any:
    if isinstance(data, dict) and "image" in data:
        raise ValueError(_IMAGE_MOVED)
    return data


class NfsTarget(Model):
    server: Host
    path: AbsolutePath


class S3Target(Model):
    """An S3-compatible bucket. `endpoint` is host[:port]; an http:// or https:// scheme is
    accepted and stripped (http:// turns TLS off for the mover)."""

    endpoint: str
    bucket: BucketName
    region: Optional[str] = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_host_port(cls, endpoint: str) -> str:
        if "@" in endpoint:
            raise ValueError("has credentials in it (user:password@): give them in the repository's "
                             "credentials (or credentials.externalSecret), and the endpoint as host[:port]")
        match = _ENDPOINT.fullmatch(endpoint)
        port = match.group(3) if match else None
        if not match or not _host_ok(match.group(2)) or (port is not None and not 0 < int(port) < 65536):
            raise ValueError(
                f"{shown(endpoint)} is not host[:port] (like s3.us-east-005.backblazeb2.com "
                "or http://192.168.1.58:3900)"
            )
        return endpoint

    @field_validator("region")
    @classmethod
    def _region_is_a_name(cls, region: Optional[str]) -> Optional[str]:
        if region is not None and not _REGION.fullmatch(region):
            raise ValueError(f"{shown(region)} is not a region name (like us-east-005 or auto)")
        return region

    def _match(self) -> re.Match[str]:
        match = _ENDPOINT.fullmatch(self.endpoint)
        assert match is not None  # checked when the model was built
        return match

    @property
    def host(self) -> str:
        """host[:port] as the mover wants it (KOPIA_S3_ENDPOINT)."""
        match = self._match()
        return match.group(2) + (f":{match.group(3)}" if match.group(3) else "")

    @property
    def tls(self) -> bool:
        return self._match().group(1) != "http"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"


def _host_ok(host: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*", host))


class NodeStageSecret(Model):
    name: DnsSubdomain
    namespace: DnsLabel = "rook-ceph"


class CephfsTarget(Model):
    """One CephFS subvolume holding the repository, mounted statically in every namespace."""

    volume_handle: Text
    cluster_id: Text = Field(alias="clusterID")
    fs_name: Text
    root_path: Optional[AbsolutePath] = None
    driver: DnsSubdomain = "rook-ceph.cephfs.csi.ceph.com"
    node_stage_secret: NodeStageSecret = NodeStageSecret(name="rook-csi-cephfs-node")
    capacity: Quantity = "200Gi"


class S3Credentials(Model):
    """Either both keys (plain or `secure:` config) or an external secret holding both."""

    access_key_id: Optional[Secret] = None
    secret_access_key: Optional[Secret] = None
    external_secret: Optional[ExternalSecretRef] = None

    @model_validator(mode="after")
    def _one_source(self) -> S3Credentials:
        keys = (self.access_key_id is not None, self.secret_access_key is not None)
        if self.external_secret is not None and any(keys):
            raise ValueError("give the keys or externalSecret, not both")
        if self.external_secret is None and not all(keys):
            raise ValueError("needs accessKeyId and secretAccessKey (or externalSecret: {store, key})")
        return self


class Maintenance(Model):
    schedule: Schedule = "weekly"
    namespace: DnsLabel = "volsync-system"


class UiIngress(Model):
    """An Ingress in front of the web UI, always with TLS (the login is HTTP basic auth)."""

    host: IngressHost
    tls_secret: DnsSubdomain
    """The Secret holding the certificate for `host` (cert-manager or your own)."""
    class_name: Optional[DnsSubdomain] = None


class WebUi(Model):
    """A read-only Kopia server for browsing snapshots (seed 001), behind a login: Kopia refuses
    `--insecure --without-password` from 0.23, and a UI that reads every backup needs one."""

    enabled: bool = False
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = "kopia"
    password: Optional[SecretValue] = None
    """The UI's own password (not the repository's): `pulumi config set --secret --path
    'backups:repositories[0].ui.password'`, or {externalSecret: {store, key}}."""
    ingress: Optional[UiIngress] = None

    _image = model_validator(mode="before")(_no_own_image)

    @model_validator(mode="after")
    def _has_a_login(self) -> WebUi:
        if self.enabled and self.password is None:
            raise ValueError(
                "a web UI needs a login: set ui.password (pulumi config set --secret --path "
                "'backups:repositories[N].ui.password' <password>) or ui.password.externalSecret"
            )
        return self


class Mirror(Model):
    """How `mirrorTo` runs: a CronJob of `kopia repository sync-to`, suspended until enabled."""

    schedule: Schedule = "daily"
    suspend: bool = True

    _image = model_validator(mode="before")(_no_own_image)


class Repository(Model):
    """One shared Kopia repository: a backup destination every app writes to at its root."""

    name: DnsLabel
    backend: Backend
    nfs: Optional[NfsTarget] = None
    s3: Optional[S3Target] = None
    cephfs: Optional[CephfsTarget] = None
    credentials: Optional[S3Credentials] = None
    password: Optional[SecretValue] = None
    schedule: Schedule = "daily"
    retain: Retention = Retention(daily=7)
    maintenance: Maintenance = Maintenance()
    primary: bool = False
    manage_bucket: bool = True
    ui: WebUi = WebUi()
    #: Copy this (filesystem) repository's blobs to another (S3) repository on a schedule.
    mirror_to: Optional[DnsLabel] = None
    mirror: Mirror = Mirror()

    @model_validator(mode="after")
    def _target_matches_backend(self) -> Repository:
        wanted = {"nfs": "nfs", "cephfs": "cephfs"}.get(self.backend, "s3")
        if getattr(self, wanted) is None:
            raise ValueError(f"backend {self.backend!r} needs the {wanted!r} block")
        for other in {"nfs", "cephfs", "s3"} - {wanted}:
            if getattr(self, other) is not None:
                raise ValueError(f"{other!r} does not belong to backend {self.backend!r}")
        return self

    @model_validator(mode="after")
    def _s3_needs_credentials_and_region(self) -> Repository:
        if self.backend in S3_BACKENDS:
            if self.credentials is None:
                raise ValueError(
                    f"backend {self.backend!r} needs credentials: {{accessKeyId, secretAccessKey}} "
                    "or {externalSecret: {store, key}}"
                )
            if self.region is None:
                raise ValueError(f"backend {self.backend!r} needs s3.region (no default for this endpoint)")
        elif self.credentials is not None:
            raise ValueError(f"credentials do not belong to backend {self.backend!r}")
        return self

    @property
    def is_filesystem(self) -> bool:
        return self.backend in FILESYSTEM_BACKENDS

    @property
    def region(self) -> Optional[str]:
        if self.s3 is None:
            return None
        if self.s3.region:
            return self.s3.region
        match = _B2_ENDPOINT.fullmatch(self.s3.host.lower().partition(":")[0].rstrip("."))  # as spelt, any case
        if self.backend == "b2" and match:
            return match.group(1)
        return _DEFAULT_REGIONS.get(self.backend)

    @property
    def target(self) -> str:
        """Where the repository really is: two entries with one target are one repository.
        The policy pack compares targets normalised (case, trailing slashes, default ports)."""
        if self.nfs is not None:
            return f"nfs://{self.nfs.server}{self.nfs.path}"
        if self.cephfs is not None:
            return f"cephfs://{self.cephfs.volume_handle}{self.cephfs.root_path or ''}"
        assert self.s3 is not None
        return self.bucket_target(self.s3.bucket)

    def bucket_target(self, bucket: str) -> str:
        """Where `bucket` on this repository's S3 endpoint is (a database's bucket)."""
        assert self.s3 is not None
        return f"s3://{self.s3.host}/{bucket}"

    @property
    def place(self) -> str:
        """`target` normalised as the policy pack normalises it: what two entries are compared
        by, so two spellings of one export or endpoint are one place."""
        return normalized_target(self.target)

    @property
    def target_key(self) -> str:
        """The config block that says where the repository is (`nfs`, `cephfs` or `s3`)."""
        return "nfs" if self.nfs is not None else "cephfs" if self.cephfs is not None else "s3"

    @property
    def externally_held(self) -> bool:
        """True when the repository's secret values come from an external secret manager."""
        return self.credentials is not None and self.credentials.external_secret is not None
