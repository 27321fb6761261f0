"""In-cluster guardrails: admission policies that hold for anything reaching the cluster.

The policy pack guards what goes through Pulumi; these guard every road (kubectl, Flux, Helm).

* MutatingAdmissionPolicy `backups-mover-jitter`: VolSync's source mover Jobs get an init
  container sleeping 0..jitterSeconds, on top of the spread schedules. It *appends* to the
  existing init containers (the community version replaces the list and wipes them), and a
  failure to mutate never blocks a backup (`failurePolicy: Ignore`).
* ValidatingAdmissionPolicies `backups-storage-class-guard-*`: a backed-up PVC (labelled by this
  program, or populated from a VolSync ReplicationDestination) and VolSync's own PiT/cache
  volumes may not use a banned class. PVCs nothing backs up may: shared working storage on
  CephFS is legitimate.

No NFS-injection policy: `moverVolumes` mounts the repository, so the seeds' second mutating
policy is unnecessary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Optional

import pulumi
import pulumi_kubernetes as k8s
from backup_contract import KOPIUR_GROUP
from pydantic import Field

from . import labels, tree
from .outputs import known
from .plan import GuardrailsPlan, PolicyPlan
from .tree import Node
from .volsync import Spec

GROUP = "admissionregistration.k8s.io"


def mutating_api_version(kubernetes_minor: int) -> str:
    """MutatingAdmissionPolicy is v1 from Kubernetes 1.36, v1beta1 (feature gate) on 1.34-1.35."""
    return f"{GROUP}/v1" if kubernetes_minor >= 36 else f"{GROUP}/v1beta1"


class ResourceRule(Spec):
    api_groups: tuple[str, ...]
    api_versions: tuple[str, ...]
    resources: tuple[str, ...]
    operations: tuple[str, ...]


class MatchResources(Spec):
    resource_rules: tuple[ResourceRule, ...]


class NamedExpression(Spec):
    name: str
    expression: str


class Validation(Spec):
    expression: str
    message_expression: str
    reason: Literal["Forbidden", "Invalid", "Unauthorized", "RequestEntityTooLarge"] = "Forbidden"


class ValidatingAdmissionPolicySpec(Spec):
    failure_policy: Literal["Fail", "Ignore"] = "Fail"
    match_constraints: MatchResources
    match_conditions: tuple[NamedExpression, ...]
    variables: tuple[NamedExpression, ...]
    validations: tuple[Validation, ...]


class JsonPatch(Spec):
    expression: str


class Mutation(Spec):
    patch_type: Literal["JSONPatch"] = "JSONPatch"
    json_patch: JsonPatch


class MutatingAdmissionPolicySpec(Spec):
    failure_policy: Literal["Fail", "Ignore"] = "Ignore"
    reinvocation_policy: Literal["Never", "IfNeeded"] = "Never"
    match_constraints: MatchResources
    match_conditions: tuple[NamedExpression, ...]
    variables: tuple[NamedExpression, ...]
    mutations: tuple[Mutation, ...]


class BindingSpec(Spec):
    policy_name: str
    validation_actions: Optional[tuple[Literal["Deny", "Warn", "Audit"], ...]] = Field(default=None)


def cel_string(value: str) -> str:
    """`value` as a CEL string literal. Config text reaches these expressions (the jitter image,
    the banned classes), and a quote in it would otherwise rewrite the policy: everything but
    printable ASCII other than `"` and `\\` is escaped, code points as \\u or \\U escapes."""
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _cel_string_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(cel_string(v) for v in values) + "]"


def _label_is(label: str, value: str) -> str:
    return (
        f'has(object.metadata.labels) && "{label}" in object.metadata.labels '
        f'&& object.metadata.labels["{label}"] == "{value}"'
    )


def jitter_policy_spec(jitter_seconds: int, image: str) -> MutatingAdmissionPolicySpec:
    # The random number comes from the container: CEL has none, and a per-object constant would
    # be the same for every run of a Job name.
    sleep = f"sleep $(( $(od -An -N2 -tu2 /dev/urandom) % {jitter_seconds + 1} ))"
    # A plain CEL map, not a typed `Object.spec.template.spec.initContainers{...}`: the 1.36 API
    # server panics turning typed objects into a JSONPatch value (reflect.Set: *structpb.Struct is
    # not assignable to *structpb.Value), and declares those types in mutations only anyway.
    # CEL map literals are homogeneous: dyn() lets one hold strings, lists, maps and booleans.
    container = (
        f'{{"name": dyn("volsync-jitter"), "image": dyn({cel_string(image)}), '
        f'"command": dyn(["/bin/sh", "-c", {cel_string(sleep)}]), '
        '"securityContext": dyn({"allowPrivilegeEscalation": dyn(false), "readOnlyRootFilesystem": dyn(true), '
        '"capabilities": dyn({"drop": ["ALL"]})})}'
    )
    return MutatingAdmissionPolicySpec(
        match_constraints=MatchResources(
            resource_rules=(ResourceRule(api_groups=("batch",), api_versions=("v1",), resources=("jobs",), operations=("CREATE",)),)
        ),
        match_conditions=(
            NamedExpression(
                name="volsync-source-mover",
                expression='object.metadata.name.startsWith("volsync-src-") && '
                + _label_is("app.kubernetes.io/created-by", "volsync"),
            ),
        ),
        # No `variables`: a real 1.36 API server refused the policy when a variable constructed an
        # `Object.*` value (those types exist only in mutations); cel-python had not type-checked it.
        variables=(),
        mutations=(
            Mutation(
                json_patch=JsonPatch(
                    # Append to the existing init containers; create the list only if absent.
                    expression=(
                        "has(object.spec.template.spec.initContainers) ? "
                        f'[JSONPatch{{op: "add", path: "/spec/template/spec/initContainers/-", value: {container}}}] : '
                        f'[JSONPatch{{op: "add", path: "/spec/template/spec/initContainers", value: [{container}]}}]'
                    )
                )
            ),
        ),
    )


def pvc_guard_spec(banned: tuple[str, ...], kopiur: bool = False) -> ValidatingAdmissionPolicySpec:
    """Backed-up claims: labelled by the program, or filled by a VolSync bootstrap (and with
    `kopiur`, by a Kopiur Restore)."""
    filled = [f'(has(object.spec.dataSourceRef) && object.spec.dataSourceRef.kind == "{kind}" '
              f'&& has(object.spec.dataSourceRef.apiGroup) && object.spec.dataSourceRef.apiGroup == "{group}")'
              for group, kind in ((labels.VOLSYNC_GROUP, "ReplicationDestination"),
                                  *(((KOPIUR_GROUP, "Restore"),) if kopiur else ()))]
    return ValidatingAdmissionPolicySpec(
        match_constraints=MatchResources(
            resource_rules=(
                ResourceRule(api_groups=("",), api_versions=("v1",), resources=("persistentvolumeclaims",), operations=("CREATE", "UPDATE")),
            )
        ),
        match_conditions=(
            NamedExpression(
                name="backed-up",
                expression=f'({_label_is(labels.BACKED_UP, "true")}) || ' + " || ".join(filled),
            ),
        ),
        variables=(
            NamedExpression(
                name="storageClass",
                expression='has(object.spec.storageClassName) ? object.spec.storageClassName : ""',
            ),
        ),
        validations=(
            Validation(
                expression=f"!(variables.storageClass in {_cel_string_list(banned)})",
                message_expression=(
                    '"PersistentVolumeClaim " + object.metadata.name + " is backed up by ' + ("Kopiur" if kopiur else "VolSync") + ' and may not use '
                    'storage class " + variables.storageClass + ": restores onto it can silently zero sparse files. '
                    'Use a block class such as ceph-block."'
                ),
            ),
        ),
    )


def volsync_guard_spec(banned: tuple[str, ...]) -> ValidatingAdmissionPolicySpec:
    banned_list = _cel_string_list(banned)
    return ValidatingAdmissionPolicySpec(
        match_constraints=MatchResources(
            resource_rules=(
                ResourceRule(
                    api_groups=(labels.VOLSYNC_GROUP,), api_versions=("*",),
                    resources=("replicationsources", "replicationdestinations"), operations=("CREATE", "UPDATE"),
                ),
            )
        ),
        match_conditions=(NamedExpression(name="kopia", expression="has(object.spec.kopia)"),),
        variables=(
            NamedExpression(
                name="classes",
                expression='[has(object.spec.kopia.storageClassName) ? object.spec.kopia.storageClassName : "", '
                'has(object.spec.kopia.cacheStorageClassName) ? object.spec.kopia.cacheStorageClassName : ""]',
            ),
        ),
        validations=(
            Validation(
                expression=f"!variables.classes.exists(c, c in {banned_list})",
                message_expression=(
                    'object.kind + " " + object.metadata.name + " puts a backup volume on a banned storage class ("'
                    f" + {cel_string(', '.join(banned))} + "
                    '"): use a block or node-local class for storageClassName and cacheStorageClassName."'
                ),
            ),
        ),
    )


def _field_or_empty(path: str) -> str:
    """`object.spec.a.b` if every step of it is set, else "": CEL's `has` tests one step."""
    steps = path.split(".")
    present = " && ".join(f"has({'.'.join(steps[:n])})" for n in range(3, len(steps) + 1))
    return f'{present} ? {path} : ""'


def kopiur_guard_spec(resource: str, fields: tuple[str, ...], banned: tuple[str, ...]) -> ValidatingAdmissionPolicySpec:
    """Kopiur's `resource` (one kind: the API server checks the CEL against that kind's schema)
    may not put a mover volume (`fields`) on a banned class."""
    return ValidatingAdmissionPolicySpec(
        match_constraints=MatchResources(resource_rules=(
            ResourceRule(api_groups=(KOPIUR_GROUP,), api_versions=("*",), resources=(resource,),
                         operations=("CREATE", "UPDATE")),
        )),
        match_conditions=(),
        variables=(NamedExpression(name="classes", expression="[" + ", ".join(map(_field_or_empty, fields)) + "]"),),
        validations=(
            Validation(
                expression=f"!variables.classes.exists(c, c in {_cel_string_list(banned)})",
                message_expression=(
                    'object.kind + " " + object.metadata.name + " puts a backup volume on a banned storage class ("'
                    f" + {cel_string(', '.join(banned))} + "
                    f'"): use a block or node-local class for {", ".join(f.rsplit("spec.", 1)[1] for f in fields)}."'
                ),
            ),
        ),
    )


#: The mover volumes of Kopiur's per-app kinds: the caches, a drill's scratch copy, a restore target.
KOPIUR_GUARDED = {
    "snapshotpolicies": ("object.spec.mover.cache.storageClassName", "object.spec.verification.deep.storageClassName"),
    "restores": ("object.spec.mover.cache.storageClassName", "object.spec.target.pvc.storageClassName"),
}


@dataclass(frozen=True)
class AdmissionGuardrailsArgs:
    plan: GuardrailsPlan
    """Which policies, their settings and their names (`plan.plan_stack`)."""


class AdmissionGuardrails(pulumi.ComponentResource):
    policies: dict[str, pulumi.Resource]
    """Each policy by name (its binding depends on it)."""
    policy_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: AdmissionGuardrailsArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(tree.ADMISSION, name, None, opts)
        plan = args.plan
        self.policies = {}
        if plan.jitter is not None:
            self._policy(plan.jitter, mutating_api_version(plan.kubernetes_minor),
                         jitter_policy_spec(plan.jitter_seconds, plan.jitter_image).to_wire(), None)
        banned = plan.banned_storage_classes
        guards: tuple[tuple[Optional[PolicyPlan], Callable[[], ValidatingAdmissionPolicySpec]], ...] = (
            (plan.pvc_guard, lambda: pvc_guard_spec(banned, plan.kopiur)),
            (plan.volsync_guard, lambda: volsync_guard_spec(banned)),
            (plan.kopiur_policy_guard, lambda: kopiur_guard_spec("snapshotpolicies", KOPIUR_GUARDED["snapshotpolicies"],
                                                                 banned)),
            (plan.kopiur_restore_guard, lambda: kopiur_guard_spec("restores", KOPIUR_GUARDED["restores"], banned)),
        )
        for guard, spec in guards:
            if guard is not None:
                self._policy(guard, f"{GROUP}/v1", spec().to_wire(), ("Deny",))
        self.policy_names = known([p.policy.name for p in plan.policies])
        self.register_outputs({"policyNames": self.policy_names})

    def _policy(self, plan: PolicyPlan, api_version: str, spec: dict[str, Any],
                validation_actions: Optional[tuple[str, ...]]) -> None:
        """The policy and its binding (which names it), with their former names as aliases."""
        kind, name = plan.policy.kind, plan.policy.name

        def aliased(node: Node, former: str) -> list[pulumi.Input[pulumi.Alias]]:
            """The names and types this object had: its former name, and the other API version
            (a CustomResource's type carries it, and the default version moved from 1.35 to 1.36:
            without these an upgrade adds one object and deletes the other, not one replace)."""
            if not former:
                return []
            versions = {f"{GROUP}/v1", f"{GROUP}/v1beta1"} - {api_version}
            other = [f"kubernetes:{v}:{node.kind}" for v in sorted(versions)]
            return [pulumi.Alias(name=former), *(pulumi.Alias(name=former, type_=t) for t in other),
                    *(pulumi.Alias(type_=t) for t in other)]

        former_policy, former_binding = plan.former
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {"name": name, "labels": labels.MANAGED_BY}
        policy = k8s.apiextensions.CustomResource(
            plan.policy.resource, api_version=api_version, kind=kind, metadata=metadata, spec=spec,
            opts=pulumi.ResourceOptions(parent=self, aliases=aliased(plan.policy, former_policy)),
        )
        self.policies[name] = policy
        binding = BindingSpec(policy_name=name, validation_actions=validation_actions)
        k8s.apiextensions.CustomResource(
            plan.binding.resource, api_version=api_version, kind=plan.binding.kind,
            metadata={"name": name, "labels": labels.MANAGED_BY}, spec=binding.to_wire(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy], aliases=aliased(plan.binding, former_binding)),
        )
