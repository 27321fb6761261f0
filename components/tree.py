"""The resource tree: every resource the program registers, as the plan names it.

A `Node` is one resource before it exists: its Pulumi name under the type of its parent
component, and for a Kubernetes object its name, namespace and name limit, with the config key
it comes from. The plan builds one for every resource and the components read them (a
component never derives a name). A `NameClaim` is a name that is no resource's but must be
unique all the same (a Kopia identity in one place, an alert). `nodes` walks a plan, and the
plan's check hands each name it finds to the `NameBook` (`take`), so the collision and length
check sees exactly what the components register.

Plain data: no Pulumi here.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Optional

from . import names
from .keypath import KeyPath
from .names import NameBook

# Pulumi type tokens, defined once: a child's URN is unique per parent type, its own type and name.
STACK = "backups:stack:BackupStack"
REPOSITORY = "backups:kopia:SharedKopiaRepository"
WEB_UI = "backups:kopia:KopiaWebUi"
MIRROR = "backups:kopia:RepositoryMirror"
CHECK = "backups:kopia:SnapshotCheck"
APP = "backups:app:BackupEnabledApp"
DATABASE = "backups:postgres:PgBackRestClusterBackup"
DATABASE_CHECK = "backups:postgres:PgBackRestCheck"
ADMISSION = "backups:admission:AdmissionGuardrails"
ALERTS = "backups:monitoring:BackupAlerts"

#: No limit of ours on a Pulumi resource name (the engine has none; URNs get long).
_PULUMI_LIMIT = names.SUBDOMAIN * 4


@dataclass(frozen=True)
class Node:
    """One resource, named."""

    resource: str
    """Its Pulumi name; "" for an object the program does not make but whose name it claims
    (an `existingClaim`: two apps backing up one claim is still a mistake)."""
    kind: str
    """What it is to Pulumi under its parent: a Kubernetes kind, `Bucket`, `Resource` (a dynamic
    resource), a provider's token (`pulumi:providers:aws`) or a component's class name."""
    parent: str
    """The type token of the component it is registered under."""
    path: KeyPath
    """The config key it comes from, for a collision's message."""
    name: str = ""
    """Its Kubernetes name; "" for anything else."""
    namespace: str = ""
    """"" for a cluster-scoped object."""
    object_kind: str = ""
    """The kind whose names it must not collide with, when not `kind`: an ExternalSecret
    writes the Secret of its name."""
    limit: int = names.SUBDOMAIN
    name_path: Optional[KeyPath] = None
    """Where the Kubernetes name comes from, when not `path`."""

    @property
    def metadata(self) -> dict[str, str]:
        """`name` and `namespace` (when namespaced), for an object's metadata."""
        return {"name": self.name, "namespace": self.namespace} if self.namespace else {"name": self.name}


@dataclass(frozen=True)
class NameClaim:
    """A name that is no resource's and must still be unique in its domain."""

    domain: tuple[str, ...]
    name: str
    limit: int
    path: KeyPath
    what: str
    """What the message calls it."""


@dataclass(frozen=True)
class BucketPlan:
    """A bucket the program makes (protected, retained), with the S3 provider it is made with."""

    node: Node
    bucket: str
    provider: str
    """The Pulumi name of its endpoint's aws provider (`StackPlan.bucket_providers`)."""


def nodes(value: object) -> Iterator[Node]:
    """Every node in a plan, depth first in field order."""
    return (found for found in named(value) if isinstance(found, Node))


def named(value: object) -> Iterator[Node | NameClaim]:
    """Every node and name claim in a plan, depth first in field order (the order names are
    handed out, which decides which of two colliding keys a message names first)."""
    if isinstance(value, (Node, NameClaim)):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for name in _named_fields(type(value)):
            yield from named(getattr(value, name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from named(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from named(item)


@functools.cache
def _named_fields(cls: type) -> tuple[str, ...]:
    """The fields of a plan dataclass whose declared type can hold a node or a name claim: the
    walk skips the rest (schedules, jobs, access, readers), most of a plan by size."""
    hints = typing.get_type_hints(cls)
    return tuple(f.name for f in dataclasses.fields(cls) if _may_hold_a_name(hints[f.name]))


def _may_hold_a_name(annotation: object) -> bool:
    if annotation in (Node, NameClaim):
        return True
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return bool(_named_fields(annotation))
    return any(_may_hold_a_name(argument) for argument in typing.get_args(annotation))


def take(book: NameBook, node: Node | NameClaim) -> None:
    """Hand a node's names (or a claimed name) to the book. Domains: `("k8s", kind, namespace)`
    for Kubernetes names and `("pulumi", parent type, kind)` for Pulumi names."""
    if isinstance(node, NameClaim):
        book.take(node.domain, node.name, node.limit, node.path, node.what)
        return
    if node.name:
        kind = node.object_kind or node.kind
        book.take(("k8s", kind, node.namespace), node.name, node.limit, node.name_path or node.path, kind)
    if node.resource:
        book.take(("pulumi", node.parent, node.kind), node.resource, _PULUMI_LIMIT, node.path,
                  f"Pulumi {node.kind} resource")
