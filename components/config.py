"""The stack-config contract (`backups:*` keys), parsed once, validated completely.

Everything the program needs from `Pulumi.<stack>.yaml` is turned into these frozen pydantic
models here and nowhere else. All defaults live here too, so components only construct.
Any problem stops the program before a resource is registered, with every problem listed at
once as `backups:<key path>: <what is wrong and the allowed form>` and no traceback.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from typing import Annotated, Any, Literal, Mapping, Optional, Union

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from croniter import croniter

from .schedule import NightWindow, identity_of_pin, validate_schedule

NAMESPACE = "backups"

# --------------------------------------------------------------------------- field types

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _quantity(value: str) -> str:
    if not _QUANTITY.match(value) or float(re.sub(r"[A-Za-z]+$", "", value)) <= 0:
        raise ValueError(f"{value!r} is not a positive Kubernetes quantity (like 5Gi)")
    return value


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path (like /mnt/tank/kopia)")
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not all(_DNS_LABEL.match(part) for part in value.split(".")):
        raise ValueError(f"{value!r} is not a DNS-1123 subdomain (like onepassword or vault.store)")
    return value


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _bucket(value: str) -> str:
    if "/" in value:
        raise ValueError(
            f"{value!r} has a path: a shared Kopia repository lives at the bucket root, never "
            "under a per-app prefix (VolSync strips the trailing slash and Kopia then writes "
            "'<prefix>kopia.repository'); give the bucket name alone"
        )
    if not _BUCKET.match(value) or ".." in value or re.match(r"^\d+\.\d+\.\d+\.\d+$", value):
        raise ValueError(
            f"{value!r} is not a valid S3 bucket name (3-63 characters: lower-case letters, "
            "digits, '.' and '-', starting and ending with a letter or digit)"
        )
    return value


def _rfc3339(value: str) -> str:
    if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value):
        raise ValueError(f"{value!r} is not an RFC 3339 time (like 2026-01-14T12:00:00Z)")
    return value


def _schema(pattern: str, description: str) -> WithJsonSchema:
    """What editors see (the JSON schema); the validators above give the messages."""
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description})


Quantity = Annotated[str, AfterValidator(_quantity), _schema(_QUANTITY.pattern, "a Kubernetes quantity like 5Gi")]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain), _schema(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "a DNS-1123 subdomain")]
BucketName = Annotated[str, AfterValidator(_bucket), _schema(_BUCKET.pattern, "an S3 bucket name, no path")]
Rfc3339 = Annotated[str, AfterValidator(_rfc3339), _schema(r"^\d{4}-\d{2}-\d{2}T", "an RFC 3339 time like 2026-01-14T12:00:00Z")]
DnsLabel = Annotated[str, AfterValidator(_dns_label), WithJsonSchema(
    {"type": "string", "pattern": _DNS_LABEL.pattern, "maxLength": 63, "description": "a DNS-1123 label"})]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path), WithJsonSchema(
    {"type": "string", "pattern": "^/", "description": "an absolute path"})]
Schedule = Annotated[str, AfterValidator(validate_schedule)]
Count = Annotated[int, Field(strict=True, ge=0)]
Id = Annotated[int, Field(strict=True, ge=0)]
AccessMode = Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"]
AccessModes = Annotated[tuple[AccessMode, ...], Field(min_length=1)]
RepositoryNames = Annotated[tuple[DnsLabel, ...], Field(min_length=1)]


class Model(BaseModel):
    """Base for every config model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


# --------------------------------------------------------------------------- shared pieces


class ExternalSecretRef(Model):
    """A value kept in an external secret manager (1Password, Vault...), synced into the cluster
    by external-secrets.io from a ClusterSecretStore."""

    store: DnsSubdomain
    key: str
    #: The field of the item holding the value; defaults to the mover's variable name.
    property: Optional[str] = None
    store_kind: Literal["ClusterSecretStore", "SecretStore"] = "ClusterSecretStore"


class ExternalSecretSource(Model):
    external_secret: ExternalSecretRef


SecretValue = Union[SecretStr, ExternalSecretSource]


class MoverIdentity(Model):
    """uid/gid/fsGroup the movers run as: they must be able to read the app's files."""

    run_as_user: Id = 1000
    run_as_group: Id = 1000
    fs_group: Id = 1000


class CacheSettings(Model):
    capacity: Quantity = "2Gi"
    storage_class: Optional[str] = None


class Retention(Model):
    """Every key is emitted explicitly: an unset key would fall back to Kopia's defaults
    (24 monthly, 3 annual) and silently keep years of data."""

    latest: Count = 0
    hourly: Count = 0
    daily: Count = 0
    weekly: Count = 0
    monthly: Count = 0
    yearly: Count = 0

    @model_validator(mode="after")
    def _keeps_something(self) -> "Retention":
        if not any(self.model_dump().values()):
            raise ValueError("keeps nothing: set at least one of latest/hourly/daily/weekly/"
                             "monthly/yearly above 0 (like {hourly: 24, daily: 7})")
        return self


# --------------------------------------------------------------------------- top-level keys


class KubernetesSettings(Model):
    version: Annotated[str, Field(pattern=r"^1\.[0-9]{1,2}$")] = "1.35"
    render_yaml_to: Optional[str] = None

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])


class Defaults(Model):
    storage_class: str = "ceph-block"
    snapshot_class: Optional[str] = "csi-ceph-blockpool"
    capacity: Quantity = "5Gi"
    access_modes: AccessModes = ("ReadWriteOnce",)
    compression: str = "zstd-fastest"
    mover: MoverIdentity = MoverIdentity()
    cache: CacheSettings = CacheSettings()
    #: Hours ("01-05") daily and weekly backups spread over.
    night_window: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3])-([01][0-9]|2[0-4])$")] = "01-05"

    @property
    def window(self) -> NightWindow:
        start, end = (int(x) for x in self.night_window.split("-"))
        return NightWindow(start, end)


class NfsTarget(Model):
    server: str
    path: AbsolutePath


_ENDPOINT = re.compile(r"^(?:(https?)://)?([A-Za-z0-9.-]+(?::[0-9]{1,5})?)/?$")


class S3Target(Model):
    """An S3-compatible bucket. `endpoint` is host[:port]; an http:// or https:// scheme is
    accepted and stripped (http:// turns TLS off for the mover)."""

    endpoint: str
    bucket: BucketName
    region: Optional[str] = None

    @model_validator(mode="after")
    def _endpoint_is_host_port(self) -> "S3Target":
        if not _ENDPOINT.match(self.endpoint):
            raise ValueError(
                f"endpoint {self.endpoint!r} is not host[:port] (like s3.us-east-005.backblazeb2.com "
                "or http://192.168.1.58:3900)"
            )
        return self

    @property
    def host(self) -> str:
        match = _ENDPOINT.match(self.endpoint)
        assert match is not None
        return match.group(2)

    @property
    def tls(self) -> bool:
        match = _ENDPOINT.match(self.endpoint)
        assert match is not None
        return match.group(1) != "http"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"


class NodeStageSecret(Model):
    name: DnsSubdomain
    namespace: DnsLabel = "rook-ceph"


class CephfsTarget(Model):
    """One CephFS subvolume holding the repository, mounted statically in every namespace."""

    volume_handle: str
    cluster_id: str = Field(alias="clusterID")
    fs_name: str
    root_path: Optional[AbsolutePath] = None
    driver: str = "rook-ceph.cephfs.csi.ceph.com"
    node_stage_secret: NodeStageSecret = NodeStageSecret(name="rook-csi-cephfs-node")
    capacity: Quantity = "200Gi"


class S3Credentials(Model):
    """Either both keys (plain or `secure:` config) or an external secret holding both."""

    access_key_id: Optional[SecretStr] = None
    secret_access_key: Optional[SecretStr] = None
    external_secret: Optional[ExternalSecretRef] = None

    @model_validator(mode="after")
    def _one_source(self) -> "S3Credentials":
        keys = (self.access_key_id is not None, self.secret_access_key is not None)
        if self.external_secret is not None and any(keys):
            raise ValueError("give the keys or externalSecret, not both")
        if self.external_secret is None and not all(keys):
            raise ValueError("needs accessKeyId and secretAccessKey (or externalSecret: {store, key})")
        return self


class RestoreSource(Model):
    namespace: DnsLabel
    app: DnsLabel


class Restore(Model):
    """A restore as a reviewed config change: exactly one of previous, restoreAsOf, from."""

    previous: Optional[Count] = None
    restore_as_of: Optional[Rfc3339] = None
    from_: Optional[RestoreSource] = Field(default=None, alias="from")
    #: Which repository to read from; the app's bootstrap repository by default.
    repository: Optional[DnsLabel] = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Restore":
        if sum(x is not None for x in (self.previous, self.restore_as_of)) > 1:
            raise ValueError("give previous or restoreAsOf, not both")
        if self.previous is None and self.restore_as_of is None and self.from_ is None:
            raise ValueError("needs previous: N, restoreAsOf: <RFC 3339 time> or from: {namespace, app}")
        return self



class Maintenance(Model):
    schedule: Schedule = "weekly"
    namespace: DnsLabel = "volsync-system"


KOPIA_IMAGE = "kopia/kopia:0.21.1"


class WebUi(Model):
    """A read-only Kopia server for browsing snapshots (seed 001). No login: keep it internal."""

    enabled: bool = False
    image: str = KOPIA_IMAGE


class Mirror(Model):
    """How `mirrorTo` runs: a CronJob of `kopia repository sync-to`, suspended until enabled."""

    schedule: Schedule = "daily"
    suspend: bool = True
    image: str = KOPIA_IMAGE


Backend = Literal["nfs", "cephfs", "garage", "b2", "r2"]
FILESYSTEM_BACKENDS = ("nfs", "cephfs")
S3_BACKENDS = ("garage", "b2", "r2")
#: Region when none is given: Garage's own name, R2's "auto", B2's from its endpoint.
_DEFAULT_REGIONS = {"garage": "garage", "r2": "auto"}
_B2_ENDPOINT = re.compile(r"^s3\.([a-z0-9-]+)\.backblazeb2\.com$")


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
    def _target_matches_backend(self) -> "Repository":
        wanted = {"nfs": "nfs", "cephfs": "cephfs"}.get(self.backend, "s3")
        if getattr(self, wanted) is None:
            raise ValueError(f"backend {self.backend!r} needs the {wanted!r} block")
        for other in {"nfs", "cephfs", "s3"} - {wanted}:
            if getattr(self, other) is not None:
                raise ValueError(f"{other!r} does not belong to backend {self.backend!r}")
        return self

    @model_validator(mode="after")
    def _s3_needs_credentials_and_region(self) -> "Repository":
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
        match = _B2_ENDPOINT.match(self.s3.host)
        if self.backend == "b2" and match:
            return match.group(1)
        return _DEFAULT_REGIONS.get(self.backend)

    @property
    def target(self) -> str:
        """Where the repository really is: two entries with one target are one repository."""
        if self.nfs is not None:
            return f"nfs://{self.nfs.server}{self.nfs.path}"
        if self.cephfs is not None:
            return f"cephfs://{self.cephfs.volume_handle}{self.cephfs.root_path or ''}"
        assert self.s3 is not None
        return f"s3://{self.s3.host}/{self.s3.bucket}"

    @property
    def externally_held(self) -> bool:
        """True when the repository's secret values come from an external secret manager."""
        return self.credentials is not None and self.credentials.external_secret is not None


class App(Model):
    """One backed-up PVC. Anything left out comes from `backups:defaults`."""

    name: DnsLabel
    namespace: DnsLabel
    claim_name: Optional[DnsLabel] = None
    capacity: Optional[Quantity] = None
    storage_class: Optional[str] = None
    snapshot_class: Optional[str] = None
    access_modes: Optional[AccessModes] = None
    run_as_user: Optional[Id] = None
    run_as_group: Optional[Id] = None
    fs_group: Optional[Id] = None
    schedule: Optional[Schedule] = None
    repositories: Optional[RepositoryNames] = None
    restore: Optional[Restore] = None


def _keeps_a_full_backup(value: int) -> int:
    if value < 1:
        raise ValueError(f"{value} keeps no full backup: use 1 or more (pgBackRest expires the rest)")
    return value


class DatabaseRetention(Model):
    """pgBackRest retention per repository. `walDays` is what people mean ("7 days of WAL");
    pgBackRest counts WAL retention in backups, so it becomes `archive: walDays` with
    `archiveType: diff` and one full-or-differential backup every day (see postgres.py)."""

    full: Annotated[int, Field(strict=True), AfterValidator(_keeps_a_full_backup)] = 14
    diff: Count = 30
    wal_days: Annotated[int, Field(strict=True, ge=1)] = 7
    history_days: Count = 30


def _six_field_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 6 or not croniter.is_valid(" ".join(fields[1:])) or not fields[0].isdigit():
        raise ValueError(
            f"{value!r} is not a 6-field CloudNative-PG schedule (seconds first, like '0 0 3 * * *')"
        )
    return value


SixFieldCron = Annotated[str, AfterValidator(_six_field_cron)]


_PIN_KEY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _pin_key(value: str) -> str:
    if not _PIN_KEY.match(value):
        raise ValueError(f"{value!r} is not namespace/name/repository (like media/radarr/nas)")
    return value


def _pinned_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or "H" in value or not fields[0].isdigit():
        raise ValueError(
            f"{value!r} is not a pinned schedule: a 5-field cron with a fixed minute, like "
            "'21 * * * *' (make pin-schedules writes these)"
        )
    return validate_schedule(value)


PinKey = Annotated[str, AfterValidator(_pin_key), _schema(_PIN_KEY.pattern, "namespace/name/repository")]
PinnedCron = Annotated[str, AfterValidator(_pinned_cron), _schema(r"^[0-9]+ ", "a 5-field cron with a fixed minute")]


class DatabaseSchedule(Model):
    """When backups run, per repository in the order of `repositories`: a weekly full backup and
    a differential one on the other days. Defaults: 03:00 for the first repository, 04:00 for
    the second, and so on (the seed's B2 at 03:00, R2 at 04:00), fulls on Sunday."""

    full: Optional[tuple[SixFieldCron, ...]] = None
    diff: Optional[tuple[SixFieldCron, ...]] = None


class WalSpool(Model):
    """The PVC pgBackRest spools WAL to with async archiving; the plugin crashes without a
    storage class."""

    storage_class: Optional[str] = None
    size: Quantity = "5Gi"


class Encryption(Model):
    """Client-side pgBackRest encryption (aes-256-cbc); the passphrase as a secret."""

    passphrase: SecretValue


class Database(Model):
    """A CloudNative-PG cluster backed up with pgBackRest (filled in by the postgres work)."""

    name: DnsLabel
    namespace: DnsLabel
    repositories: RepositoryNames
    retention: DatabaseRetention = DatabaseRetention()
    #: Bucket in every repository's store; default: the database name.
    bucket: Optional[BucketName] = None
    schedule: DatabaseSchedule = DatabaseSchedule()
    manage_cluster: bool = False
    #: pgBackRest stanza name; default: the database name. Renaming it orphans the backups.
    stanza: Optional[DnsLabel] = None
    #: Set to true, for one change, to rename `stanza` on purpose.
    allow_stanza_rename: bool = False
    wal_spool: WalSpool = WalSpool()
    encryption: Optional[Encryption] = None
    instances: Annotated[int, Field(strict=True, ge=1)] = 1
    storage_size: Quantity = "10Gi"


class Admission(Model):
    """In-cluster guardrails. `jitterSeconds: 0` turns the mover jitter policy off."""

    jitter_seconds: Count = 30
    jitter_image: str = "busybox:1.37"
    storage_class_guard: bool = True


class Alerts(Model):
    enabled: bool = True
    namespace: DnsLabel = "volsync-system"
    #: Labels your Prometheus selects rules by (kube-prometheus-stack: release: <name>).
    labels: dict[str, str] = {}


class Drills(Model):
    """Scheduled restore drills: each app's latest snapshot restored into a scratch volume."""

    schedule: Schedule = "weekly"
    apps: Union[Literal["all", "none"], tuple[DnsLabel, ...]] = "all"

    def covers(self, app_name: str) -> bool:
        return self.apps == "all" or (self.apps != "none" and app_name in self.apps)


class Guardrails(Model):
    """Storage classes that must never hold a backed-up volume (CephFS zeroes sparse files)."""

    banned_storage_classes: tuple[str, ...] = ("ceph-filesystem",)


# --------------------------------------------------------------------------- the whole stack


class StackConfig(Model):
    """All `backups:*` keys of one stack."""

    kubernetes: KubernetesSettings = KubernetesSettings()
    password: SecretValue
    defaults: Defaults = Defaults()
    repositories: Annotated[tuple[Repository, ...], Field(min_length=1)]
    apps: tuple[App, ...] = ()
    databases: tuple[Database, ...] = ()
    admission: Admission = Admission()
    alerts: Alerts = Alerts()
    drills: Drills = Drills()
    guardrails: Guardrails = Guardrails()
    schedule_pins: dict[PinKey, PinnedCron] = {}
    """Where each preset-scheduled job already runs (`make pin-schedules` writes them): pinned
    jobs never move when apps are added or removed. Pins of jobs no longer in the config, or
    that no longer fit their preset, are ignored."""

    #: Config keys the engine marked secret (`pulumi config set --secret`); set by the loader.
    _secret_keys: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @model_validator(mode="after")
    def _cross_references(self) -> "StackConfig":
        problems: list[tuple[tuple, str]] = []
        repo_names = [r.name for r in self.repositories]
        _duplicates(problems, ("repositories",), repo_names, "repository")
        _duplicates(problems, ("apps",), [f"{a.namespace}/{a.name}" for a in self.apps], "app")
        primaries = [i for i, r in enumerate(self.repositories) if r.primary]
        for index in primaries[1:]:
            problems.append(
                (("repositories", index, "primary"),
                 "more than one repository is primary: set primary: true on one only")
            )
        for index, app in enumerate(self.apps):
            for j, ref in enumerate(app.repositories or ()):
                if ref not in repo_names:
                    problems.append((("apps", index, "repositories", j), _unknown(ref, repo_names)))
            # VolSync names the mover Job volsync-src-<ReplicationSource>, a 63-char label.
            for repo in self.repositories_of(app):
                source = source_name(app, repo)
                if len(source) > 51:
                    problems.append(
                        (("apps", index, "name"),
                         f"{app.name!r} with repository {repo.name!r} makes the mover Job name "
                         f"'volsync-src-{source}' longer than 63 characters: shorten one of them")
                    )
        for index, repo in enumerate(self.repositories):
            password = self.password_of(repo)
            if repo.externally_held and not isinstance(password, ExternalSecretSource):
                problems.append(
                    (("repositories", index, "credentials", "externalSecret"),
                     "one Secret holds the credentials and the password, so an external "
                     "credential needs the password from an external secret too "
                     "(password: {externalSecret: {store, key}})")
                )
            if repo.externally_held and isinstance(password, ExternalSecretSource):
                assert repo.credentials is not None and repo.credentials.external_secret is not None
                stores = {(ref.store, ref.store_kind) for ref in (password.external_secret, repo.credentials.external_secret)}
                if len(stores) > 1:
                    problems.append(
                        (("repositories", index, "credentials", "externalSecret", "store"),
                         "the password and the credentials come from different secret stores; one "
                         "ExternalSecret writes the repository Secret, so use one store for both")
                    )
            if repo.backend in S3_BACKENDS and isinstance(password, ExternalSecretSource) and not repo.externally_held:
                problems.append(
                    (("repositories", index, "credentials"),
                     "the password comes from an external secret, so the credentials must too "
                     "(credentials: {externalSecret: {store, key}})")
                )
            # Two entries with one target and different passwords are left to the policy pack
            # (kopia-shared-password), which judges what reaches the cluster by any road.
        for index, repo in enumerate(self.repositories):
            if repo.mirror_to is None:
                continue
            path = ("repositories", index, "mirrorTo")
            target = next((r for r in self.repositories if r.name == repo.mirror_to), None)
            if target is None:
                problems.append((path, _unknown(repo.mirror_to, repo_names)))
            elif not repo.is_filesystem or target.backend not in S3_BACKENDS:
                problems.append((path, "a mirror copies a filesystem repository (nfs, cephfs) to an S3 one"))
            elif _differs(self.password_of(repo), self.password_of(target)):
                problems.append((path, f"a mirror is a copy of the repository, so {target.name!r} "
                                 "must have the same password as its source"))
        for index, app in enumerate(self.apps):
            for j, ref in enumerate(app.repositories or ()):
                if ref in self.mirror_targets:
                    problems.append(
                        (("apps", index, "repositories", j),
                         f"{ref!r} is a mirror (sync-to replaces its contents): back up to the "
                         "repository it mirrors instead")
                    )
        if self.admission.jitter_seconds and self.kubernetes.minor < 34:
            problems.append(
                (("kubernetes", "version"),
                 f"{self.kubernetes.version} has no MutatingAdmissionPolicy (v1beta1 from 1.34 with "
                 "its feature gate, v1 from 1.36): upgrade, or set backups:admission.jitterSeconds: 0")
            )
        if isinstance(self.drills.apps, tuple):
            known = [a.name for a in self.apps]
            for j, name in enumerate(self.drills.apps):
                if name not in known:
                    hint = difflib.get_close_matches(name, known, n=1)
                    problems.append((("drills", "apps", j), f"unknown app {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")))
        for index, app in enumerate(self.apps):
            restore = app.restore
            if restore and restore.repository and restore.repository not in [r.name for r in self.repositories_of(app)]:
                problems.append(
                    (("apps", index, "restore", "repository"),
                     f"{app.name!r} does not back up to {restore.repository!r}; "
                     f"use one of: {', '.join(r.name for r in self.repositories_of(app))}")
                )
        by_name = {r.name: r for r in self.repositories}
        for index, db in enumerate(self.databases):
            for j, ref in enumerate(db.repositories):
                if ref not in repo_names:
                    problems.append((("databases", index, "repositories", j), _unknown(ref, repo_names)))
                elif by_name[ref].is_filesystem:
                    problems.append(
                        (("databases", index, "repositories", j),
                         f"{ref!r} is a filesystem repository; pgBackRest writes to S3 "
                         "repositories (garage, b2, r2)")
                    )
                elif by_name[ref].s3 is not None and not by_name[ref].s3.tls:
                    problems.append(
                        (("databases", index, "repositories", j),
                         f"{ref!r} is plain HTTP; pgBackRest speaks only HTTPS to S3 (give the "
                         "endpoint TLS, e.g. Garage behind a TLS proxy)")
                    )
            for field in ("full", "diff"):
                given = getattr(db.schedule, field)
                if given is not None and len(given) != len(db.repositories):
                    problems.append(
                        (("databases", index, "schedule", field),
                         f"{len(given)} schedules for {len(db.repositories)} repositories: give one per repository")
                    )
        if problems:
            raise _CrossReferenceErrors(problems)
        return self

    # Derived views used by the components: computed here so every component agrees.

    @property
    def pins(self) -> dict[tuple[str, str, str], str]:
        """`schedule_pins` by job identity (name, namespace, repository)."""
        return {identity_of_pin(key): cron for key, cron in self.schedule_pins.items()}

    @property
    def primary_repository(self) -> Repository:
        return next((r for r in self.repositories if r.primary), self.repositories[0])

    def password_of(self, repository: Repository) -> SecretValue:
        return repository.password if repository.password is not None else self.password

    @property
    def plain_passwords(self) -> tuple[str, ...]:
        """Key paths of the Kopia passwords in use that are plain config, in config order.

        Plain config sits unencrypted in `Pulumi.<stack>.yaml`, in git. Only the program knows
        this (the engine marks secret keys; on the wire every password is a Pulumi secret either
        way), so it is advice given here, once per key, not a rule run over every Secret.
        """
        paths: dict[str, None] = {}
        for index, repo in enumerate(self.repositories):
            if isinstance(self.password_of(repo), ExternalSecretSource):
                continue
            if repo.password is not None:
                key, path = "repositories", f"repositories[{index}].password"
            else:
                key, path = "password", "password"
            if f"{NAMESPACE}:{key}" not in self._secret_keys:
                paths[f"{NAMESPACE}:{path}"] = None
        return tuple(paths)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Advice on a config that works but should change; each names its key path."""
        return tuple(
            f"{path}: the Kopia password is plain config, unencrypted in the stack file. Set it with "
            f"`pulumi config set --secret{' --path' if '.' in path else ''} {path}` "
            "(or use externalSecret)."
            for path in self.plain_passwords
        )

    @property
    def mirror_targets(self) -> frozenset[str]:
        return frozenset(r.mirror_to for r in self.repositories if r.mirror_to)

    def repositories_of(self, app: App) -> tuple[Repository, ...]:
        """An app's destinations: the listed ones, else every repository that is not a mirror
        copy (a mirror is written by `sync-to`, never by movers)."""
        if app.repositories is None:
            return tuple(r for r in self.repositories if r.name not in self.mirror_targets)
        return tuple(r for r in self.repositories if r.name in app.repositories)

    def bootstrap_repository(self, app: App) -> Repository:
        """Where the app's first restore reads from: the primary if the app uses it."""
        mine = self.repositories_of(app)
        primary = self.primary_repository
        return primary if primary in mine else mine[0]

    def namespaces_of(self, repository: Repository) -> tuple[str, ...]:
        """Namespaces that have at least one app writing to `repository`, sorted."""
        return tuple(sorted({a.namespace for a in self.apps if repository in self.repositories_of(a)}))


class AppVolume(Model):
    """An app's volume with every default applied: what its PVC and movers are built from."""

    claim_name: str
    capacity: str
    storage_class: str
    snapshot_class: Optional[str]
    access_modes: tuple[AccessMode, ...]
    mover: MoverIdentity


def volume_of(config: StackConfig, app: App) -> AppVolume:
    d = config.defaults
    return AppVolume(
        claim_name=app.claim_name or app.name,
        capacity=app.capacity or d.capacity,
        storage_class=app.storage_class or d.storage_class,
        snapshot_class=app.snapshot_class or d.snapshot_class,
        access_modes=app.access_modes or d.access_modes,
        mover=MoverIdentity(
            run_as_user=_first(app.run_as_user, d.mover.run_as_user),
            run_as_group=_first(app.run_as_group, d.mover.run_as_group),
            fs_group=_first(app.fs_group, d.mover.fs_group),
        ),
    )


def _first(value: Optional[int], default: int) -> int:
    return default if value is None else value  # 0 (root) is a real uid, not "unset"


def source_name(app: App, repository: Repository) -> str:
    """ReplicationSource name, which is also the Kopia username of the app's snapshots."""
    return f"{app.name}-{repository.name}"


def _duplicates(problems: list, path: tuple, names: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            problems.append(((*path, index, "name"), f"duplicate {what} {name!r}: names must be unique"))
        seen.add(name)


def _differs(one: SecretValue, other: SecretValue) -> bool:
    """Two known passwords that differ; external ones cannot be compared here (the policy pack
    compares what reaches the cluster)."""
    if isinstance(one, SecretStr) and isinstance(other, SecretStr):
        return one.get_secret_value() != other.get_secret_value()
    return False


def _unknown(ref: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(ref, known, n=1)
    suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"unknown repository {ref!r}{suffix}; defined: {', '.join(known)}"


class _CrossReferenceErrors(ValueError):
    def __init__(self, problems: list[tuple[tuple, str]]):
        super().__init__("; ".join(m for _, m in problems))
        self.problems = problems


# --------------------------------------------------------------------------- errors


class ConfigError(pulumi.RunError):
    """Invalid stack config. A RunError, so the real CLI prints the message without a traceback."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid stack config ({count}):\n  " + "\n  ".join(problems))


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_path(loc: tuple) -> str:
    """`backups:apps[0].capacity`, and map keys that are not plain names the way `pulumi config
    set --path` spells them: `backups:schedulePins["media/radarr/nas"]`."""
    path = NAMESPACE + ":"
    parts = [part for part in loc if part != "[key]"]  # pydantic's marker for "the key itself"
    for index, part in enumerate(parts):
        if isinstance(part, int):
            path += f"[{part}]"
        elif index and not _PLAIN_KEY.match(str(part)):
            path += f'["{part}"]'
        else:
            path += ("." if index else "") + str(part)
    return path


def _field_names_at(loc: tuple) -> list[str]:
    """Known keys of the model at `loc`, to suggest a fix for a misspelt key."""
    candidates: list[Any] = [StackConfig]
    for part in loc:
        nxt: list[Any] = []
        for tp in candidates:
            for leaf in _leaf_types(tp):
                if isinstance(part, int):
                    nxt.extend(typing.get_args(leaf)[:1] if typing.get_origin(leaf) is tuple else [])
                elif isinstance(leaf, type) and issubclass(leaf, BaseModel):
                    field = _field_by_alias(leaf, part)
                    if field is not None:
                        nxt.append(field.annotation)
        candidates = nxt
    names: list[str] = []
    for tp in candidates:
        for leaf in _leaf_types(tp):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                names.extend(f.alias or n for n, f in leaf.model_fields.items())
    return names


def _leaf_types(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _leaf_types(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [leaf for arg in typing.get_args(tp) for leaf in _leaf_types(arg)]
    return [tp]


def _field_by_alias(model: type[BaseModel], key: str):
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _describe(error: dict) -> str:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _field_names_at(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(sorted(known))}"
        return f"{format_path(loc)}: unknown key {loc[-1]!r}; {fix}"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return f"{format_path(loc)}: is required"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        message = f"{error['input']!r} is not a whole number"
    elif kind in ("tuple_type", "list_type"):
        message = f"{error['input']!r} is not a list (write it as [a, b])"
    elif kind == "greater_than_equal":
        message = f"{error['input']!r} is negative; use 0 or more"
    elif kind == "too_short":
        message = "is empty; list at least one"
    elif kind == "string_pattern_mismatch":
        message = f"{error['input']!r} does not match the form {error['ctx']['pattern']}"
    return f"{format_path(loc)}: {message}"


# pydantic names union members in error paths; they mean nothing to a user.
_UNION_TAGS = {"SecretStr", "ExternalSecretSource", "function-after[_dns_label(), str]",
               "tuple[function-after[_dns_label(), str], ...]", "literal['all','none']"}


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the `backups:*` keys (without the namespace) into a StackConfig.

    Raises ConfigError listing every problem with its key path.
    """
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems: list[str] = []
        errors = exc.errors()
        failed_items = {e["loc"][:1] for e in errors if len(e["loc"]) > 1}
        for error in errors:
            if error["type"] == "too_short" and error["loc"] in failed_items:
                continue  # the list is short only because its items failed: they say why
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, _CrossReferenceErrors):
                problems.extend(f"{format_path(loc)}: {msg}" for loc, msg in cause.problems)
            else:
                problems.append(_describe(error))
        # Union alternatives can repeat a problem; keep the first of each.
        raise ConfigError(list(dict.fromkeys(problems))) from None


def load_stack_config() -> StackConfig:
    """Read every `backups:*` key from the Pulumi config of the running stack and parse it.

    Values are read raw: secret keys (`pulumi config set --secret`) are decrypted by the engine
    before the program starts, and the secret-typed fields keep them out of reprs and logs.
    """
    keys = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.get_config_env())
    config = stack_config_of(
        {key: pulumi.runtime.get_config(key) for key in keys if key.startswith(NAMESPACE + ":")}
    )
    config._secret_keys = frozenset(k for k in keys if pulumi.runtime.is_config_secret(k))
    for warning in config.warnings:
        pulumi.log.warn(warning)  # `pulumi preview` lists it under Diagnostics; the offline preview prints it
    return config


def stack_config_of(values: Mapping[str, Any]) -> StackConfig:
    """Parse the `backups:*` entries of a config map (key -> value as the engine passes it):
    the running stack's, or a stack file's read by a tool."""
    prefix = NAMESPACE + ":"
    return parse_stack_config(
        {
            key[len(prefix):]: decode_config_value(key, values[key])
            for key in sorted(k for k in values if k.startswith(prefix))
        }
    )


def decode_config_value(key: str, value: Any) -> Any:
    """The engine hands structured config over as JSON text and scalars as plain text."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{key}: not valid structured config ({exc.msg})"]) from None
