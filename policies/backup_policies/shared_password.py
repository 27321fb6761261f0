"""Every Secret that points at one Kopia repository carries the same password.

Seed 000: each app had its own password; the first app created the repository and every other
app failed with "repository not initialized". Passwords are compared by digest and never shown.
A Kopiur repository counts with the password of the Secret its `passwordSecretRef` names (a
Secret the stack does not hold is known by that reference alone), so a ClusterRepository and
the fork's Secrets of one place must agree too.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from backup_contract import KOPIA_PASSWORD
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .kinds import (
    kopia_repository_target,
    kopiur_repository,
    metadata,
    object_name,
    provided_values,
    repository_variables,
)


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    # target -> password digest -> objects carrying it. An ExternalSecret's password is known
    # only by where it comes from (store/key#property): two different sources are flagged, as
    # nothing shows they hold the same value.
    seen: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    held: dict[tuple[str, str], dict[str, str]] = {}
    for resource in args.resources:
        values = provided_values(resource.resource_type, resource.props)
        if values is not None:
            meta = metadata(resource.props)
            held[(meta.get("namespace", "default"), meta.get("name", "?"))] = values
        values = repository_variables(resource.resource_type, resource.props)
        if values is None:
            continue
        target = kopia_repository_target(resource.props, values)
        password = values.get(KOPIA_PASSWORD)
        if target is None or password is None:
            continue
        seen[target][_digest(password)].append(object_name(resource.props))
    for resource in args.resources:
        repository = kopiur_repository(resource.resource_type, resource.props)
        if repository is None or repository.target is None or repository.password is None:
            continue
        namespace, name, key = repository.password
        password = held.get((namespace, name), {}).get(key, f"<Secret {namespace}/{name}#{key}>")
        seen[repository.target][_digest(password)].append(repository.name)
    for target, by_digest in sorted(seen.items()):
        if len(by_digest) < 2:
            continue
        groups = sorted(sorted(names) for names in by_digest.values())
        listing = "; ".join(", ".join(names) for names in groups)
        report_violation(
            f"{len(by_digest)} different KOPIA_PASSWORDs for the one Kopia repository {target} "
            f"(objects grouped by password: {listing}). A shared repository has one password: "
            "use backups:password for every app, or give the second repository its own target.", None
        )


shared_password = StackValidationPolicy(
    name="kopia-shared-password",
    description="All Secrets, ExternalSecrets and Kopiur repositories of one Kopia repository carry the same "
    "KOPIA_PASSWORD.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate,
)
