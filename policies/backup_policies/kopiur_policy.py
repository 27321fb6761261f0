"""Every Kopiur SnapshotPolicy says how to copy and exactly what to keep; every SnapshotSchedule
has a cron that runs.

The fork's rule (`replication_source.py`) for the second mover: a tier left out of
`spec.retention` is not "keep none" but whatever Kopiur does by default, which nobody reviewed,
and a schedule that does not parse never runs. Kopiur's cron takes Jenkins' `H` (a per-object
fixed value), so `H` and `H(a-b)` are read as a value in range before the check.
"""

from __future__ import annotations

import re

from backup_contract import KOPIUR_GROUP, KOPIUR_RETENTION_KEYS
from croniter import croniter
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .kinds import is_kind, object_name

#: `H` or `H(3-10)` as a whole token (not the H of THU), optionally with a step (`H/15`): each
#: stands for one value of its field, which must then be in that field's range.
_HASHED = re.compile(r"(?<![A-Za-z])H(?:\((\d+)-\d+\))?(?![A-Za-z])")
#: The lowest value of each field: minute, hour, day of month, month, day of week.
_LOWEST = ("0", "0", "1", "1", "0")


def _runs(cron: object) -> bool:
    if not isinstance(cron, str) or len(cron.split()) != 5:
        return False
    fields = [_resolved(field, low) for field, low in zip(cron.split(), _LOWEST)]
    return bool(croniter.is_valid(" ".join(fields)))


def _resolved(field: str, lowest: str) -> str:
    """The field with each `H` as a value it may take: the range's start, or the field's lowest."""
    return _HASHED.sub(lambda match: match.group(1) or lowest, field)


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    name = object_name(args.props)
    spec = args.props.get("spec") or {}
    if is_kind(args.resource_type, KOPIUR_GROUP, "SnapshotPolicy"):
        if not spec.get("copyMethod"):
            report_violation(f"SnapshotPolicy {name} has no spec.copyMethod: set Snapshot.", None)
        retention = spec.get("retention") or {}
        missing = [key for key in KOPIUR_RETENTION_KEYS if key not in retention]
        if missing:
            report_violation(
                f"SnapshotPolicy {name} leaves spec.retention.{{{', '.join(missing)}}} unset: that tier is "
                "then Kopiur's default, not a number anyone chose. Set every key, 0 for none.", None
            )
    elif is_kind(args.resource_type, KOPIUR_GROUP, "SnapshotSchedule"):
        cron = (spec.get("schedule") or {}).get("cron")
        if not _runs(cron):
            report_violation(f"SnapshotSchedule {name} has schedule.cron {cron!r}: it needs a valid 5-field cron.",
                             None)


explicit_snapshot_policy = ResourceValidationPolicy(
    name="kopiur-snapshot-policy-explicit",
    description="Kopiur SnapshotPolicies set copyMethod and every retention key; SnapshotSchedules a valid cron.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate,
)
