"""Cluster-wide keys: `kubernetes`, `defaults`, `admission`, `alerts`, `drills`, `guardrails`,
`schedulePins`."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from backup_contract import DEFAULT_BANNED_STORAGE_CLASSES
from pydantic import AfterValidator, Discriminator, Field, Tag

from .cron import PIN_KEY, validate_schedule
from .fields import (
    AccessModes,
    ClassName,
    Compression,
    DnsLabel,
    Image,
    LabelKey,
    LabelValue,
    Model,
    Quantity,
    Schedule,
    Text,
    shown,
)
from .shared import CacheSettings, MoverIdentity

#: The Kopia of every pod the program makes (web UI, snapshot check, mirror, listing): the
#: version the fork's v0.17.11 mover image builds, so one repository is never written by two
#: Kopia versions. `backups:defaults.kopiaImage` changes it, for all of them at once.
KOPIA_IMAGE = "kopia/kopia:0.22.3"
#: The image of each database's backup check: the pgBackRest plugin's sidecar (v0.0.3), Debian
#: with pgBackRest, sh, awk and GNU date. The check runs as its postgres user, uid 26, so a
#: replacement must have that user too (a newer sidecar of the plugin has).
PGBACKREST_IMAGE = "docker.io/dalibo/cnpg-pgbackrest-sidecar:0.0.3"


class KubernetesSettings(Model):
    version: Annotated[str, Field(pattern=r"^1\.[0-9]{1,2}$")] = "1.36"
    """The cluster's minor version; it picks API versions. 1.36 by default: MutatingAdmissionPolicy
    is GA there (v1), while 1.34-1.35 serve only v1beta1, and that behind a feature gate."""
    render_yaml_to: Optional[Text] = None

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])


class Defaults(Model):
    storage_class: ClassName = "ceph-block"
    snapshot_class: Optional[ClassName] = "csi-ceph-blockpool"
    capacity: Quantity = "5Gi"
    access_modes: AccessModes = ("ReadWriteOnce",)
    compression: Compression = "zstd-fastest"
    kopia_image: Image = KOPIA_IMAGE
    """The image of every Kopia pod the program makes; keep it at the movers' Kopia version."""
    pgbackrest_image: Image = PGBACKREST_IMAGE
    """The image of the databases' backup checks; keep it at the plugin's pgBackRest version."""
    mover: MoverIdentity = MoverIdentity()
    cache: CacheSettings = CacheSettings()
    #: Hours ("01-05") daily and weekly backups spread over.
    night_window: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3])-([01][0-9]|2[0-4])$")] = "01-05"

    @property
    def night_hours(self) -> tuple[int, int]:
        """(first hour, end hour) of `night_window`."""
        start, end = (int(x) for x in self.night_window.split("-"))
        return start, end


class Admission(Model):
    """In-cluster guardrails. `jitterSeconds: 0` turns the mover jitter policy off."""

    jitter_seconds: Annotated[int, Field(strict=True, ge=0, le=3600)] = 30
    jitter_image: Image = "busybox:1.37"
    storage_class_guard: bool = True


class Alerts(Model):
    enabled: bool = True
    namespace: DnsLabel = "volsync-system"
    #: Labels your Prometheus selects rules by (kube-prometheus-stack: release: <name>).
    labels: dict[LabelKey, LabelValue] = {}


#: Tags of `drills.apps`: a keyword or a list of app names (dropped from key paths).
KEYWORD_TAG, LIST_TAG = "(keyword)", "(list)"


def _drill_apps_kind(value: Any) -> str:
    return KEYWORD_TAG if isinstance(value, str) else LIST_TAG


class Drills(Model):
    """Scheduled restore drills: each app's latest snapshot restored into a scratch volume."""

    schedule: Schedule = "weekly"
    apps: Annotated[
        Union[Annotated[Literal["all", "none"], Tag(KEYWORD_TAG)], Annotated[tuple[DnsLabel, ...], Tag(LIST_TAG)]],
        Discriminator(_drill_apps_kind),
    ] = "all"

    def covers(self, app_name: str) -> bool:
        return self.apps == "all" or (self.apps != "none" and app_name in self.apps)


class Guardrails(Model):
    """Storage classes that must never hold a backed-up volume (CephFS zeroes sparse files)."""

    banned_storage_classes: tuple[ClassName, ...] = DEFAULT_BANNED_STORAGE_CLASSES


def _pin_key(value: str) -> str:
    if not PIN_KEY.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a pin key (namespace/app/repository, namespace/repository:maintenance, "
            "namespace/repository:mirror, namespace/repository:check or namespace/app:drill; "
            "make pin-schedules writes these)"
        )
    return value


def _pinned_cron(value: str) -> str:
    fields = value.split(" ")
    if len(fields) != 5 or "H" in value or not fields[0].isdigit():
        raise ValueError(
            f"{shown(value)} is not a pinned schedule: a 5-field cron with a fixed minute, like "
            "'21 * * * *' (make pin-schedules writes these)"
        )
    return validate_schedule(value)


PinKey = Annotated[str, AfterValidator(_pin_key), Field(json_schema_extra={"pattern": f"^{PIN_KEY.pattern}$"})]
PinnedCron = Annotated[str, AfterValidator(_pinned_cron), Field(json_schema_extra={"pattern": "^[0-9]+ "})]
