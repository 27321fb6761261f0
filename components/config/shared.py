"""Config pieces used under several keys: secrets, mover identity, cache, retention."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Discriminator, Tag, model_validator

from .fields import Count, DnsSubdomain, Id, Model, Quantity, Secret, Text


class ExternalSecretRef(Model):
    """A value kept in an external secret manager (1Password, Vault...), synced into the cluster
    by external-secrets.io from a ClusterSecretStore."""

    store: DnsSubdomain
    key: Text
    #: The field of the item holding the value; defaults to the mover's variable name.
    property: Optional[Text] = None
    store_kind: Literal["ClusterSecretStore", "SecretStore"] = "ClusterSecretStore"


class ExternalSecretSource(Model):
    external_secret: ExternalSecretRef


#: Tags of the one union of the config: a secret is a plain value or {externalSecret: ...}.
#: pydantic puts the tag into an error's location; errors.py drops these from key paths.
PLAIN_TAG, EXTERNAL_TAG = "(plain)", "(external)"


def _secret_kind(value: Any) -> str:
    return EXTERNAL_TAG if isinstance(value, (dict, ExternalSecretSource)) else PLAIN_TAG


SecretValue = Annotated[
    Union[Annotated[Secret, Tag(PLAIN_TAG)], Annotated[ExternalSecretSource, Tag(EXTERNAL_TAG)]],
    Discriminator(_secret_kind),
]


class MoverIdentity(Model):
    """uid/gid/fsGroup the movers run as: they must be able to read the app's files."""

    run_as_user: Id = 1000
    run_as_group: Id = 1000
    fs_group: Id = 1000


class CacheSettings(Model):
    capacity: Quantity = "2Gi"
    storage_class: Optional[DnsSubdomain] = None


class Retention(Model):
    """Every key is emitted explicitly: an unset key would fall back to Kopia's defaults
    (24 monthly, 3 annual) and silently keep years of data."""

    latest: Count = 0
    hourly: Count = 0
    daily: Count = 0
    weekly: Count = 0
    monthly: Count = 0
    yearly: Count = 0

    @model_validator(mode="after")
    def _keeps_something(self) -> Retention:
        if not any(self.model_dump().values()):
            raise ValueError("keeps nothing: set at least one of latest/hourly/daily/weekly/"
                             "monthly/yearly above 0 (like {hourly: 24, daily: 7})")
        return self
