"""Where a secret value from config goes: a Secret held by Pulumi, or an external store.

Plain data, no Pulumi: the plan decides where each value of a Secret goes before any resource
exists (`SecretValues`), and `secrets.cluster_secret` turns the maps into one object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from .config import ExternalSecretRef, ExternalSecretSource, SecretValue
from .tree import Node


def put_secret(key: str, value: SecretValue, secret: dict[str, SecretStr], external: dict[str, ExternalSecretRef]) -> None:
    """File `value` under `key` in `secret` (held in Pulumi config) or `external` (held in a secret
    manager): the two maps `cluster_secret` takes."""
    if isinstance(value, ExternalSecretSource):
        external[key] = value.external_secret
    else:
        secret[key] = value


def secret_kind(value: SecretValue) -> str:
    """The kind of object that holds `value` in the cluster: an ExternalSecret writes the Secret."""
    return "ExternalSecret" if isinstance(value, ExternalSecretSource) else "Secret"


@dataclass(frozen=True)
class SecretValues:
    """What one Secret holds: values in the clear, values from config (kept Pulumi secrets), and
    values an ExternalSecret fetches from a store (config guarantees it is one or the other)."""

    plain: Mapping[str, str] = field(default_factory=dict)
    secret: Mapping[str, SecretStr] = field(default_factory=dict)
    external: Mapping[str, ExternalSecretRef] = field(default_factory=dict)


def secret_values(values: Mapping[str, SecretValue], plain: Mapping[str, str] | None = None) -> SecretValues:
    """`values` filed by where each is held (`put_secret`), beside the `plain` ones."""
    secret: dict[str, SecretStr] = {}
    external: dict[str, ExternalSecretRef] = {}
    for key, value in values.items():
        put_secret(key, value, secret, external)
    return SecretValues(dict(plain or {}), secret, external)


@dataclass(frozen=True)
class SecretPlan:
    """A Secret (or the ExternalSecret that writes it) and what it holds."""

    node: Node
    values: SecretValues
