"""The policy pack. Only builds it: PolicyPack(...) serves the engine and never returns.

Tests and the offline preview import `backup_policies` instead and run the same policies
through the SDK's own analyzer in-process.
"""

from backup_policies import ENFORCEMENT_LEVEL, PACK_NAME, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=ENFORCEMENT_LEVEL)
