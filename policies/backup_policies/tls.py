"""TLS is turned off only for endpoints on a private network (Garage on the LAN).

`KOPIA_S3_DISABLE_TLS: "true"` sends the S3 keys and the (encrypted) repository over plain
HTTP. That is the seed's Garage on 192.168.1.58; towards a public endpoint it is a mistake.
"""

from __future__ import annotations

from backup_contract import KOPIA_S3_DISABLE_TLS, KOPIA_S3_ENDPOINT, is_private_host
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .kinds import listed, object_name, repository_variables


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """One advisory per public endpoint, listing its Secrets: one setting, one line."""
    secrets: dict[str, list[str]] = {}
    for resource in args.resources:
        values = repository_variables(resource.resource_type, resource.props)
        if not values or values.get(KOPIA_S3_DISABLE_TLS) != "true":
            continue
        endpoint = values.get(KOPIA_S3_ENDPOINT, "")
        if not is_private_host(endpoint):
            secrets.setdefault(endpoint, []).append(object_name(resource.props))
    for endpoint, names in secrets.items():
        report_violation(
            f"TLS is disabled towards {endpoint!r}, which is not a private address: use an https:// "
            f"endpoint (this program: drop http:// from the repository's s3.endpoint). {len(names)} "
            f"Secrets: {listed(names)}", None
        )


tls_only_off_in_private = StackValidationPolicy(
    name="s3-tls-off-only-on-private-networks",
    description="KOPIA_S3_DISABLE_TLS is set only for private-network endpoints.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate,
)
