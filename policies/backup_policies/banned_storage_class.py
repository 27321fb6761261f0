"""No banned storage class (by default `ceph-filesystem`) under a backed-up volume.

Seed 002: CephFS mishandles sparse files on restore and silently zeroes file contents. A volume
counts as backed up when a ReplicationSource names it (`sourcePVC`), when it is bootstrapped from
a ReplicationDestination (`dataSourceRef`), or when the program labelled it; the PiT, cache and
restore volumes of VolSync objects count too. With Kopiur: a claim a SnapshotPolicy's source
names or a Restore populates, and the cache, verification and restore volumes of its objects. Volumes nothing backs up may use any class: shared
working storage on CephFS is legitimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from backup_contract import APP_LABEL, BACKED_UP_LABEL, DEFAULT_BANNED_STORAGE_CLASSES, KOPIUR_GROUP, VOLSYNC_GROUP
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .kinds import KOPIUR_REPOSITORY_KINDS, is_kind, listed, metadata, object_name

DEFAULT_BANNED = list(DEFAULT_BANNED_STORAGE_CLASSES)
_VOLSYNC_KINDS = ("ReplicationSource", "ReplicationDestination")


#: Kopiur's kinds whose mover volumes (cache, scratch) a banned class must not back: the per-app
#: ones and every kind that names a repository.
_KOPIUR_KINDS = ("SnapshotPolicy", "Restore", *KOPIUR_REPOSITORY_KINDS)


def _backed_up_claims(resources: Iterable[PolicyResource]) -> set[str]:
    claims: set[str] = set()
    for resource in resources:
        namespace = metadata(resource.props).get("namespace", "default")
        spec = resource.props.get("spec") or {}
        if is_kind(resource.resource_type, VOLSYNC_GROUP, "ReplicationSource"):
            if spec.get("sourcePVC"):
                claims.add(f"{namespace}/{spec['sourcePVC']}")
        elif is_kind(resource.resource_type, KOPIUR_GROUP, "SnapshotPolicy"):
            claims.update(f"{namespace}/{source['pvc']['name']}" for source in spec.get("sources") or []
                          if (source.get("pvc") or {}).get("name"))
    return claims


def _is_bootstrapped(props: Mapping[str, Any]) -> bool:
    ref = (props.get("spec") or {}).get("dataSourceRef") or {}
    return (ref.get("apiGroup"), ref.get("kind")) in ((VOLSYNC_GROUP, "ReplicationDestination"),
                                                      (KOPIUR_GROUP, "Restore"))


def _kopiur_volumes(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(what, field, class) of each volume a Kopiur object asks its movers for: `volume` for
    what holds the app's data (a restore target, a verification's scratch copy), `cache` for
    the mover caches."""
    movers = (("mover", spec.get("mover")), ("moverDefaults", spec.get("moverDefaults")),
              ("maintenance.mover", (spec.get("maintenance") or {}).get("mover")))
    for field, mover in movers:
        cache = (mover or {}).get("cache") or {}
        if cache.get("storageClassName"):
            yield "cache", f"spec.{field}.cache.storageClassName", cache["storageClassName"]
    deep = ((spec.get("verification") or {}).get("deep")) or {}
    if deep.get("storageClassName"):
        yield "volume", "spec.verification.deep.storageClassName", deep["storageClassName"]
    target = ((spec.get("target") or {}).get("pvc")) or {}
    if target.get("storageClassName"):
        yield "volume", "spec.target.pvc.storageClassName", target["storageClassName"]


def _findings(resources: Iterable[PolicyResource], banned: set[str]) -> Iterator[tuple[tuple[str, str, str], str]]:
    """(cause, object) for every banned class under a backup. The cause is what one setting
    decides: an app's volume class (the app, from its label, or the claim), or the cache class."""
    backed_up = _backed_up_claims(resources)
    for resource in resources:
        props = resource.props
        name = object_name(props)
        app = (metadata(props).get("labels") or {}).get(APP_LABEL)
        owner = f"{name.split('/')[0]}/{app}" if app else name
        if is_kind(resource.resource_type, "", "PersistentVolumeClaim"):
            labelled = (metadata(props).get("labels") or {}).get(BACKED_UP_LABEL) == "true"
            if not (name in backed_up or _is_bootstrapped(props) or labelled):
                continue
            storage_class = (props.get("spec") or {}).get("storageClassName")
            if storage_class in banned:
                yield ("volume", owner, storage_class), f"PersistentVolumeClaim {name}"
        elif any(is_kind(resource.resource_type, VOLSYNC_GROUP, k) for k in _VOLSYNC_KINDS):
            kopia = (props.get("spec") or {}).get("kopia") or {}
            kind = resource.resource_type.rsplit(":", 1)[1]
            if kopia.get("storageClassName") in banned:
                yield ("volume", owner, kopia["storageClassName"]), f"{kind} {name} (spec.kopia.storageClassName)"
            if kopia.get("cacheStorageClassName") in banned:
                yield ("cache", "", kopia["cacheStorageClassName"]), f"{kind} {name}"
        elif any(is_kind(resource.resource_type, KOPIUR_GROUP, k) for k in _KOPIUR_KINDS):
            kind = resource.resource_type.rsplit(":", 1)[1]
            for what, field, storage_class in _kopiur_volumes(props.get("spec") or {}):
                if storage_class in banned:
                    yield (what, owner if what == "volume" else "", storage_class), f"{kind} {name} ({field})"


def _message(cause: tuple[str, str, str], objects: list[str]) -> str:
    what, owner, storage_class = cause
    if what == "cache":
        return (f"the mover cache volumes use storage class {storage_class!r}, a banned class for backup "
                f"volumes: use a block or node-local class (this program: backups:defaults.cache.storageClass). "
                f"{len(objects)} objects: {listed(objects)}")
    return (f"{owner} is backed up on storage class {storage_class!r}: restores onto it can silently zero sparse "
            f"files. Use a block class (like ceph-block) (this program: the app's storageClass, or "
            f"backups:defaults.storageClass). {len(objects)} objects: {listed(objects)}")


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """One violation per cause, listing its objects: one setting gives one line, not one per object."""
    config = args.get_config() or {}
    banned = set(config.get("bannedStorageClasses", DEFAULT_BANNED))
    causes: dict[tuple[str, str, str], list[str]] = {}
    for cause, name in _findings(args.resources, banned):
        causes.setdefault(cause, []).append(name)
    for cause, objects in causes.items():
        report_violation(_message(cause, objects), None)


banned_storage_class = StackValidationPolicy(
    name="no-banned-storage-class-for-backups",
    description="Backed-up volumes and VolSync's and Kopiur's mover volumes never use a banned storage class "
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
