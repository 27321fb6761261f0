"""Run the policy pack in-process, through the pulumi-policy SDK's own analyzer servicer.

The engine talks to a policy pack over gRPC: `Remediate` and then `Analyze` once for every
resource it steps through (components, providers and the stack included), `AnalyzeStack` once
with all of them (pulumi/pulumi, pkg/resource/deploy/step_generator.go: generateSteps and
AnalyzeResources). We call the very same servicer methods with the very same request messages,
built from what the program registered, so enforcement levels, pack config, secret handling,
unknown values during preview, and the pack's cost behave as under
`pulumi preview --policy-pack policies`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import backup_policies  # policies/ is on the path: pytest's pythonpath, the venv's .pth (make setup)
from google.protobuf import json_format
from pulumi_policy import EnforcementLevel

from .gc_pause import gc_paused
from .offline import Registration
from .sdk import AnalyzerServicer, enforcement_level, proto

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


class PolicyConfigError(Exception):
    """A `--policy-config` the engine would refuse: which policy, which key, what is wrong."""


_LEVEL_NAMES = ("advisory", "mandatory", "remediate", "disabled")


def read_policy_config(path: Path) -> dict[str, Any]:
    """A policy pack config file (as for `--policy-pack-config`), checked like the engine does:
    a mapping of policy name to a level or to `{enforcementLevel, <properties>}`, each property
    valid against the policy's config schema. A string where a list belongs used to switch the
    ceph-filesystem ban off silently."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyConfigError(f"--policy-config {path}: cannot read it ({type(error).__name__})") from None
    except json.JSONDecodeError as error:
        raise PolicyConfigError(f"--policy-config {path}: not JSON (line {error.lineno}: {error.msg})") from None
    validate_policy_config(document, str(path))
    return document


def validate_policy_config(document: Any, source: str = "policy config") -> None:
    if not isinstance(document, dict):
        raise PolicyConfigError(f"--policy-config {source}: not a mapping of policy name to config")
    schemas = {p.name: p.config_schema for p in backup_policies.POLICIES}
    for name, given in document.items():
        where = f"--policy-config {source}: {name!r}"
        if name not in schemas:
            known = ", ".join(sorted(schemas))
            raise PolicyConfigError(f"{where} is not a policy of this pack (known: {known})")
        if isinstance(given, str):
            given = {"enforcementLevel": given}
        if not isinstance(given, dict):
            raise PolicyConfigError(f"{where}: give a level or a mapping with enforcementLevel and properties")
        level = given.get("enforcementLevel")
        if level is not None and level not in _LEVEL_NAMES:
            raise PolicyConfigError(f"{where}: enforcementLevel {level!r} is not one of {', '.join(_LEVEL_NAMES)}")
        properties = {k: v for k, v in given.items() if k != "enforcementLevel"}
        schema = schemas.get(name)
        allowed = dict(schema.properties) if schema is not None else {}
        for key, value in properties.items():
            if key not in allowed:
                raise PolicyConfigError(f"{where}: unknown property {key!r}" +
                                        (f" (known: {', '.join(sorted(allowed))})" if allowed else " (it takes none)"))
            import jsonschema  # here: 0.2 s of imports that only a pack config needs

            try:
                jsonschema.validate(value, allowed[key])
            except jsonschema.ValidationError as error:
                raise PolicyConfigError(f"{where}.{key}: {error.message}") from None


def analyzer(pack_config: Optional[Mapping[str, Any]] = None) -> AnalyzerServicer:
    servicer = AnalyzerServicer(
        backup_policies.PACK_NAME,
        backup_policies.PACK_VERSION,
        backup_policies.POLICIES,
        backup_policies.ENFORCEMENT_LEVEL,
    )
    servicer.Configure(_reconciled_config(servicer, pack_config or {}), None)
    return servicer


def _reconciled_config(
    servicer: AnalyzerServicer, pack_config: Mapping[str, Any]
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


def rules_enabled(servicer: AnalyzerServicer) -> int:
    return sum(
        1
        for policy in backup_policies.POLICIES
        if enforcement_level(servicer, policy) != EnforcementLevel.DISABLED
    )


def _options(reg: Registration) -> proto.AnalyzerResourceOptions:
    return proto.AnalyzerResourceOptions(protect=reg.protect, parent=reg.parent)


def _provider(
    reg: Registration, by_urn: Mapping[str, Registration]
) -> Optional[proto.AnalyzerProviderResource]:
    """The provider resource the engine attaches to a custom resource's request (its inputs)."""
    provider = by_urn.get(reg.provider.rsplit("::", 1)[0]) if reg.provider else None
    if provider is None:
        return None
    return proto.AnalyzerProviderResource(
        type=provider.type, properties=provider.wire, urn=provider.urn, name=provider.name
    )


def run_policies(
    resources: Iterable[Registration], pack_config: Optional[Mapping[str, Any]] = None
) -> PolicyReport:
    """Ask the pack about `resources` as the engine does during a preview.

    `resources` is what the engine steps through (`ProgramRun.as_engine_sees_it()`: the stack,
    providers, components and custom resources). For each in turn the engine calls `Remediate`,
    then `Analyze`, on its inputs; once all are registered, `AnalyzeStack` on everyone's outputs
    (under these mocks a custom resource's outputs are its inputs; a component's are what it
    registered). So the pack's cost here is the pack's cost under `pulumi preview`.
    """
    with gc_paused():
        return _run_policies(list(resources), pack_config)


def _run_policies(resources: list[Registration], pack_config: Optional[Mapping[str, Any]]) -> PolicyReport:
    servicer = analyzer(pack_config)
    by_urn = {r.urn: r for r in resources}
    providers = {r.urn: _provider(r, by_urn) for r in resources}
    # (response, the resource it was about: resource policies report no URN of their own)
    responses: list[tuple[Any, str]] = []
    for r in resources:
        request = proto.AnalyzeRequest(
            type=r.type, properties=r.wire, urn=r.urn, name=r.name, options=_options(r),
            provider=providers[r.urn],
        )
        if servicer.Remediate(request, None).remediations:
            # Not reachable with this pack: no policy implements `remediate`, so the SDK never
            # returns a remediation. A pack that gains one needs this tool to apply the new
            # properties before Analyze, as the engine does.
            raise NotImplementedError(f"a policy remediated {r.urn}; the offline preview cannot apply that")
        responses.append((servicer.Analyze(request, None), r.urn))
    stack_request = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type=r.type,
                properties=r.wire if r.outputs is None else r.outputs,
                urn=r.urn,
                name=r.name,
                options=_options(r),
                provider=providers[r.urn],
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

