"""A shared repository lives at the bucket root: no path below the bucket, no prefix variables.

Seed 000, attempts 1-4: `s3://bucket/${APP}/` loses its trailing slash in the mover's entry.sh,
so Kopia writes `<app>kopia.repository` next to the other apps' objects; `KOPIA_S3_PREFIX` and
`KOPIA_S3_BUCKET` are ignored when `KOPIA_REPOSITORY` is set. Isolation comes from Kopia's
identity (`<source>@<namespace>`), not from paths. Kopiur passes a repository's S3 `prefix` to
kopia as written, so one without a trailing `/` is the same trap.
"""

from __future__ import annotations

from backup_contract import KOPIA_REPOSITORY, KOPIA_S3_IGNORED_WITH_URL
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .kinds import kopiur_repository, object_name, repository_variables


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    repository = kopiur_repository(args.resource_type, args.props)
    if repository is not None and repository.s3_prefix and not repository.s3_prefix.endswith("/"):
        report_violation(
            f"{repository.name}: backend.s3.prefix {repository.s3_prefix!r} has no trailing '/'. Kopiur passes it "
            "to kopia as written, so kopia writes '<prefix>kopia.repository' beside the bucket's other objects: end "
            "it with '/', or share the bucket root.", None
        )
        return
    values = repository_variables(args.resource_type, args.props)
    if values is None:
        return
    name = object_name(args.props)
    url = values[KOPIA_REPOSITORY]
    if url.startswith("s3://"):
        below_bucket = url[len("s3://"):].split("/", 1)[1:] or [""]
        if below_bucket[0].strip("/"):
            report_violation(
                f"{name}: KOPIA_REPOSITORY {url!r} has a path below the bucket. The mover strips "
                "the trailing slash, so Kopia writes '<prefix>kopia.repository' beside the other "
                "apps' objects. Point every app at s3://<bucket>/ with the one shared password.", None
            )
    for key in KOPIA_S3_IGNORED_WITH_URL:
        if key in values:
            report_violation(
                f"{name}: {key} is ignored by the mover when KOPIA_REPOSITORY is set; remove it "
                "and share the bucket root.", None
            )


repository_at_bucket_root = ResourceValidationPolicy(
    name="kopia-repository-at-bucket-root",
    description="Kopia repository URLs have no path below the bucket and no prefix variables; a Kopiur "
    "repository's S3 prefix ends with '/'.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate,
)
