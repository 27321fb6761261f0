"""TLS is turned off only for endpoints on a private network (Garage on the LAN).

`KOPIA_S3_DISABLE_TLS: "true"` sends the S3 keys and the (encrypted) repository over plain
HTTP. That is the seed's Garage on 192.168.1.58; towards a public endpoint it is a mistake.
Kopiur's `backend.s3.tls.disableTls: true` is the same setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from backup_contract import KOPIA_S3_DISABLE_TLS, KOPIA_S3_ENDPOINT, is_private_host
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .kinds import kopiur_repository, listed, object_name, repository_variables


def _plain(resource_type: str, props: Mapping[str, Any]) -> Optional[tuple[str, str]]:
    """(endpoint, object) when the object turns TLS off towards an S3 endpoint."""
    values = repository_variables(resource_type, props)
    if values and values.get(KOPIA_S3_DISABLE_TLS) == "true":
        return values.get(KOPIA_S3_ENDPOINT, ""), object_name(props)
    repository = kopiur_repository(resource_type, props)
    if repository is not None and repository.tls_disabled and repository.s3_endpoint:
        return repository.s3_endpoint, repository.name
    return None


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """One advisory per public endpoint, listing its objects: one setting, one line."""
    found: dict[str, list[str]] = {}
    for resource in args.resources:
        plain = _plain(resource.resource_type, resource.props)
        if plain is not None and not is_private_host(plain[0]):
            found.setdefault(plain[0], []).append(plain[1])
    for endpoint, names in found.items():
        report_violation(
            f"TLS is disabled towards {endpoint!r}, which is not a private address: use an https:// "
            f"endpoint (this program: drop http:// from the repository's s3.endpoint). {len(names)} "
            f"objects: {listed(names)}", None
        )


tls_only_off_in_private = StackValidationPolicy(
    name="s3-tls-off-only-on-private-networks",
    description="KOPIA_S3_DISABLE_TLS (Kopiur: tls.disableTls) is set only for private-network endpoints.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate,
)
