"""Every ReplicationSource says how to copy, when to run and exactly what to keep.

An unset `copyMethod` fails the mover; an invalid schedule never runs (only `backupNow`'s extra
source, labelled one-off, runs on a manual trigger instead); an unset `retain` key
falls back to Kopia's defaults (24 monthly, 3 annual) and silently keeps years of data.
"""

from __future__ import annotations

from backup_contract import ONE_OFF_LABEL, RETAIN_KEYS, VOLSYNC_GROUP
from croniter import croniter
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .kinds import is_kind, object_name


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_kind(args.resource_type, VOLSYNC_GROUP, "ReplicationSource"):
        return
    name = object_name(args.props)
    spec = args.props.get("spec") or {}
    kopia = spec.get("kopia") or {}
    if not kopia.get("copyMethod"):
        report_violation(f"ReplicationSource {name} has no spec.kopia.copyMethod: set Snapshot.", None)
    trigger = spec.get("trigger") or {}
    schedule = trigger.get("schedule")
    labels = (args.props.get("metadata") or {}).get("labels") or {}
    if labels.get(ONE_OFF_LABEL) == "backupNow" and trigger.get("manual") and not schedule:
        pass  # backupNow's extra source: one run per token, beside the scheduled one
    elif not schedule or len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        report_violation(
            f"ReplicationSource {name} has schedule {schedule!r}: it needs a valid 5-field cron.", None
        )
    retain = kopia.get("retain") or {}
    missing = [key for key in RETAIN_KEYS if key not in retain]
    if missing:
        report_violation(
            f"ReplicationSource {name} leaves spec.kopia.retain.{{{', '.join(missing)}}} unset: "
            "Kopia then keeps its defaults (24 monthly, 3 yearly). Set every key, 0 for none.", None
        )


explicit_replication_source = ResourceValidationPolicy(
    name="replication-source-explicit",
    description="ReplicationSources set copyMethod, a valid 5-field schedule and every retain key.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate,
)
