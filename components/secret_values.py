"""Where a secret value from config goes: a Secret held by Pulumi, or an external store.

Plain data, no Pulumi: the plan decides where each value of a repository's access goes before
any resource exists, and `secrets.cluster_secret` turns the two maps into one object.
"""

from __future__ import annotations

from pydantic import SecretStr

from .config import ExternalSecretRef, ExternalSecretSource, SecretValue


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
