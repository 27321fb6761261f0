"""The shared password should be a Pulumi secret, not plain config.

Plain config sits unencrypted in `Pulumi.<stack>.yaml`, in git. The program marks each
repository Secret with where its password came from; this rule reads that mark (the value
itself is a Pulumi secret on the wire either way).
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .kinds import PASSWORD_SOURCE_ANNOTATION, is_kind, metadata, object_name


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_kind(args.resource_type, "", "Secret"):
        return
    source = (metadata(args.props).get("annotations") or {}).get(PASSWORD_SOURCE_ANNOTATION)
    if source == "plain-config":
        report_violation(
            f"{object_name(args.props)}: the Kopia password comes from plain config. Run "
            "`pulumi config set --secret backups:password` (or use externalSecret)."
        )


password_is_secret = ResourceValidationPolicy(
    name="kopia-password-not-plain-config",
    description="The Kopia password is set as a secret (or external secret), not plain config.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate,
)
