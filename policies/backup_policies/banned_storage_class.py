"""No banned storage class (by default `ceph-filesystem`) under a backed-up volume.

Seed 002: CephFS mishandles sparse files on restore and silently zeroes file contents. A volume
counts as backed up when a ReplicationSource names it (`sourcePVC`), when it is bootstrapped from
a ReplicationDestination (`dataSourceRef`), or when the program labelled it; the PiT, cache and
restore volumes of VolSync objects count too. Volumes nothing backs up may use any class: shared
working storage on CephFS is legitimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from backup_contract import BACKED_UP_LABEL, DEFAULT_BANNED_STORAGE_CLASSES, VOLSYNC_GROUP
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .kinds import is_kind, metadata, object_name

DEFAULT_BANNED = list(DEFAULT_BANNED_STORAGE_CLASSES)
_VOLSYNC_KINDS = ("ReplicationSource", "ReplicationDestination")
_VOLUME_FIELDS = ("storageClassName", "cacheStorageClassName")


def _backed_up_claims(resources: Iterable[PolicyResource]) -> set[str]:
    claims: set[str] = set()
    for resource in resources:
        if is_kind(resource.resource_type, VOLSYNC_GROUP, "ReplicationSource"):
            namespace = metadata(resource.props).get("namespace", "default")
            source = (resource.props.get("spec") or {}).get("sourcePVC")
            if source:
                claims.add(f"{namespace}/{source}")
    return claims


def _is_bootstrapped(props: Mapping[str, Any]) -> bool:
    ref = (props.get("spec") or {}).get("dataSourceRef") or {}
    return ref.get("kind") == "ReplicationDestination" and ref.get("apiGroup") == VOLSYNC_GROUP


def _findings(resources: Iterable[PolicyResource], banned: set[str]) -> Iterator[str]:
    backed_up = _backed_up_claims(resources)
    for resource in resources:
        props = resource.props
        name = object_name(props)
        if is_kind(resource.resource_type, "", "PersistentVolumeClaim"):
            labelled = (metadata(props).get("labels") or {}).get(BACKED_UP_LABEL) == "true"
            if not (name in backed_up or _is_bootstrapped(props) or labelled):
                continue
            storage_class = (props.get("spec") or {}).get("storageClassName")
            if storage_class in banned:
                yield (f"PersistentVolumeClaim {name} is backed up but uses storage class "
                       f"{storage_class!r}: restores onto it can silently zero sparse files. "
                       "Use a block class (like ceph-block) for the app's storageClass.")
        elif any(is_kind(resource.resource_type, VOLSYNC_GROUP, k) for k in _VOLSYNC_KINDS):
            kopia = (props.get("spec") or {}).get("kopia") or {}
            for field in _VOLUME_FIELDS:
                if kopia.get(field) in banned:
                    yield (f"{resource.resource_type.rsplit(':', 1)[1]} {name} sets "
                           f"spec.kopia.{field} to {kopia[field]!r}, a banned class for backup "
                           "volumes: use a block or node-local class.")


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config() or {}
    banned = set(config.get("bannedStorageClasses", DEFAULT_BANNED))
    for message in _findings(args.resources, banned):
        report_violation(message, None)


banned_storage_class = StackValidationPolicy(
    name="no-banned-storage-class-for-backups",
    description="Backed-up volumes and VolSync volumes never use a banned storage class "
    "(ceph-filesystem by default).",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "bannedStorageClasses": {
                "type": "array",
                "items": {"type": "string"},
                "default": DEFAULT_BANNED,
            }
        }
    ),
    validate=_validate,
)
