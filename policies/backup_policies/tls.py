"""TLS is turned off only for endpoints on a private network (Garage on the LAN).

`KOPIA_S3_DISABLE_TLS: "true"` sends the S3 keys and the (encrypted) repository over plain
HTTP. That is the seed's Garage on 192.168.1.58; towards a public endpoint it is a mistake.
"""

from __future__ import annotations

import ipaddress

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .kinds import object_name, repository_variables

PRIVATE_SUFFIXES = (".local", ".lan", ".home", ".internal", ".home.arpa", ".cluster.local", ".svc")


def is_private_host(host: str) -> bool:
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
        return address.is_private or address.is_loopback or address.is_link_local
    except ValueError:
        return "." not in host or host == "localhost" or host.endswith(PRIVATE_SUFFIXES)


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    values = repository_variables(args.resource_type, args.props)
    if not values or values.get("KOPIA_S3_DISABLE_TLS") != "true":
        return
    endpoint = values.get("KOPIA_S3_ENDPOINT", "")
    if not is_private_host(endpoint):
        report_violation(
            f"{object_name(args.props)}: TLS is disabled towards {endpoint!r}, which is not a "
            "private address: use an https:// endpoint (drop http:// from s3.endpoint).", None
        )


tls_only_off_in_private = ResourceValidationPolicy(
    name="s3-tls-off-only-on-private-networks",
    description="KOPIA_S3_DISABLE_TLS is set only for private-network endpoints.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate,
)
