"""The policies of the `homelab-backups-guardrails` pack, one concern per module.

`POLICIES` is what the pack serves (policies/__main__.py) and what the offline preview and the
tests run in-process through the SDK's analyzer, so all three judge with the same code.
"""

from pulumi_policy import EnforcementLevel

from .banned_storage_class import banned_storage_class
from .kopiur_policy import explicit_snapshot_policy
from .replication_source import explicit_replication_source
from .repository_url import repository_at_bucket_root
from .shared_password import shared_password
from .tls import tls_only_off_in_private

PACK_NAME = "homelab-backups-guardrails"
PACK_VERSION = "0.3.0"
#: Policies without their own level are advisory; each mandatory one says so itself.
ENFORCEMENT_LEVEL = EnforcementLevel.ADVISORY

POLICIES = [
    # mandatory: the mistakes the seeds paid for
    shared_password,
    banned_storage_class,
    repository_at_bucket_root,
    explicit_replication_source,
    explicit_snapshot_policy,
    # advisory
    tls_only_off_in_private,
]
