"""The policies of the `homelab-backups-guardrails` pack, one concern per module.

`POLICIES` is what the pack serves (policies/__main__.py) and what the offline preview and the
tests run in-process through the SDK's analyzer, so all three judge with the same code.
"""

from pulumi_policy import EnforcementLevel

from .banned_storage_class import banned_storage_class
from .replication_source import explicit_replication_source
from .shared_password import shared_password

PACK_NAME = "homelab-backups-guardrails"
PACK_VERSION = "0.1.0"
#: Policies without their own level are advisory; each mandatory one says so itself.
ENFORCEMENT_LEVEL = EnforcementLevel.ADVISORY

POLICIES = [shared_password, banned_storage_class, explicit_replication_source]
