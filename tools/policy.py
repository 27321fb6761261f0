"""Run the policy pack in-process, through the pulumi-policy SDK's own analyzer servicer.

The engine talks to a policy pack over gRPC: `Analyze` once per resource, `AnalyzeStack` once
with all of them. We call the very same servicer methods with the very same request messages,
built from what the program registered, so enforcement levels, pack config, secret handling and
unknown values during preview behave as under `pulumi preview --policy-pack policies`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from google.protobuf import json_format
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer  # the engine-facing analyzer

from .offline import PROJECT_DIR, Registration, gc_paused

sys.path.insert(0, str(PROJECT_DIR / "policies"))
import backup_policies  # noqa: E402  (lives in policies/, where the CLI runs the pack)

_LEVELS = {
    proto.EnforcementLevel.ADVISORY: "advisory",
    proto.EnforcementLevel.MANDATORY: "mandatory",
    proto.EnforcementLevel.REMEDIATE: "remediate",
    proto.EnforcementLevel.DISABLED: "disabled",
}


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    resource: str
    message: str


@dataclass(frozen=True)
class PolicyReport:
    rules_run: int
    violations: tuple[Violation, ...]

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.level == "mandatory")


def analyzer(pack_config: Optional[Mapping[str, Any]] = None) -> _PolicyAnalyzerServicer:
    servicer = _PolicyAnalyzerServicer(
        backup_policies.PACK_NAME,
        backup_policies.PACK_VERSION,
        backup_policies.POLICIES,
        backup_policies.ENFORCEMENT_LEVEL,
    )
    servicer.Configure(_reconciled_config(servicer, pack_config or {}), None)
    return servicer


def _reconciled_config(
    servicer: _PolicyAnalyzerServicer, pack_config: Mapping[str, Any]
) -> proto.ConfigureAnalyzerRequest:
    """What the engine sends to `Configure` (its ReconcilePolicyPackConfig): every policy with its
    enforcement level and properties, from `--policy-pack-config` where given, else from the
    pack's own declaration (level) and config schema (defaults)."""
    unknown = set(pack_config) - {p.name for p in backup_policies.POLICIES}
    if unknown:
        raise ValueError(f"policy config names unknown policies: {', '.join(sorted(unknown))}")
    request = proto.ConfigureAnalyzerRequest()
    for policy in servicer.GetAnalyzerInfo(None, None).policies:
        given = pack_config.get(policy.name, {})
        if isinstance(given, str):
            given = {"enforcementLevel": given}
        properties = {
            key: schema["default"]
            for key, schema in json_format.MessageToDict(policy.configSchema.properties).items()
            if "default" in schema
        }
        properties.update({k: v for k, v in given.items() if k != "enforcementLevel"})
        entry = request.policyConfig[policy.name]
        entry.enforcementLevel = (
            _level_value(given["enforcementLevel"]) if "enforcementLevel" in given
            else policy.enforcementLevel
        )
        entry.properties.update(json.loads(json.dumps(properties)))
    return request


def _level_value(name: str) -> int:
    return {v: k for k, v in _LEVELS.items()}[EnforcementLevel(name).value]  # raises on a typo


def _own_words(message: str, description: str) -> str:
    """The SDK prefixes each violation with the policy's description; keep the rule's message."""
    prefix = description + "\n"
    return message[len(prefix):] if message.startswith(prefix) else message


def rules_enabled(servicer: _PolicyAnalyzerServicer) -> int:
    return sum(
        1
        for policy in backup_policies.POLICIES
        if servicer._get_enforcement_level(policy) != EnforcementLevel.DISABLED  # noqa: SLF001
    )


def _options(reg: Registration) -> proto.AnalyzerResourceOptions:
    return proto.AnalyzerResourceOptions(protect=reg.protect, parent=reg.parent)


def run_policies(
    registrations: Iterable[Registration], pack_config: Optional[Mapping[str, Any]] = None
) -> PolicyReport:
    with gc_paused():
        return _run_policies(list(registrations), pack_config)


def _run_policies(registrations: list[Registration], pack_config: Optional[Mapping[str, Any]]) -> PolicyReport:
    servicer = analyzer(pack_config)
    # The engine analyzes resources a provider manages, not component resources.
    resources = [r for r in registrations if r.custom]
    # (response, the resource it was about: resource policies report no URN of their own)
    responses = [
        (
            servicer.Analyze(
                proto.AnalyzeRequest(
                    type=r.type, properties=r.wire, urn=r.urn, name=r.name, options=_options(r)
                ),
                None,
            ),
            r.urn,
        )
        for r in resources
    ]
    stack_request = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type=r.type,
                properties=r.wire,
                urn=r.urn,
                name=r.name,
                options=_options(r),
                parent=r.parent,
                dependencies=r.dependencies,
            )
            for r in resources
        ]
    )
    responses.append((servicer.AnalyzeStack(stack_request, None), ""))
    violations = tuple(
        Violation(
            policy=d.policyName,
            level=_LEVELS.get(d.enforcementLevel, str(d.enforcementLevel)),
            resource=(d.urn or about).rsplit("::", 1)[-1] or "(stack)",
            message=_own_words(d.message, d.description),
        )
        for response, about in responses
        for d in response.diagnostics
    )
    return PolicyReport(rules_enabled(servicer), violations)

