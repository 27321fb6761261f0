"""Typed spec of the external-secrets.io/v1 ExternalSecret this program emits.

Used when a repository's password and credentials live in an external secret manager (the
seeds keep them in 1Password): the operator writes the Secret the movers read, and no secret
value passes through Pulumi at all.
"""

from __future__ import annotations

from typing import Literal, Optional

from backup_contract import EXTERNAL_SECRETS_GROUP
from pydantic import Field

from .volsync import Spec

API_VERSION = f"{EXTERNAL_SECRETS_GROUP}/v1"


class StoreRef(Spec):
    name: str
    kind: Literal["ClusterSecretStore", "SecretStore"]


class RemoteRef(Spec):
    key: str
    property: Optional[str] = None


class DataItem(Spec):
    secret_key: str
    remote_ref: RemoteRef


class Template(Spec):
    engine_version: Literal["v2"] = "v2"
    #: Keep the fetched values and add the non-secret keys rendered below.
    merge_policy: Literal["Merge", "Replace"] = "Merge"
    data: dict[str, str] = Field(default_factory=dict)


class Target(Spec):
    name: str
    creation_policy: Literal["Owner", "Orphan", "Merge", "None"] = "Owner"
    template: Template


class ExternalSecretSpec(Spec):
    secret_store_ref: StoreRef
    refresh_interval: str = "1h"
    target: Target
    data: tuple[DataItem, ...]
