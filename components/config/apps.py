"""`backups:apps`: one backed-up PVC per entry; anything left out comes from the defaults."""

from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from .fields import (
    AccessMode,
    AccessModes,
    ClassName,
    Count,
    DnsLabel,
    Id,
    Model,
    Quantity,
    RepositoryNames,
    Rfc3339,
    Schedule,
)
from .shared import MoverIdentity


class RestoreSource(Model):
    namespace: DnsLabel
    app: DnsLabel


class Restore(Model):
    """A restore as a reviewed config change: exactly one of previous, restoreAsOf, from."""

    previous: Optional[Count] = None
    restore_as_of: Optional[Rfc3339] = None
    """Emitted in UTC with a `Z` whatever offset the config gives (see fields._rfc3339)."""
    from_: Optional[RestoreSource] = Field(default=None, alias="from")
    #: Which repository to read from; the app's bootstrap repository by default.
    repository: Optional[DnsLabel] = None

    @model_validator(mode="after")
    def _one_kind(self) -> Restore:
        if sum(x is not None for x in (self.previous, self.restore_as_of)) > 1:
            raise ValueError("give previous or restoreAsOf, not both")
        if self.previous is None and self.restore_as_of is None and self.from_ is None:
            raise ValueError("needs previous: N, restoreAsOf: <RFC 3339 time> or from: {namespace, app}")
        return self


class App(Model):
    """One backed-up PVC. Anything left out comes from `backups:defaults`."""

    name: DnsLabel
    namespace: DnsLabel
    claim_name: Optional[DnsLabel] = None
    capacity: Optional[Quantity] = None
    storage_class: Optional[ClassName] = None
    snapshot_class: Optional[ClassName] = None
    access_modes: Optional[AccessModes] = None
    run_as_user: Optional[Id] = None
    run_as_group: Optional[Id] = None
    fs_group: Optional[Id] = None
    schedule: Optional[Schedule] = None
    repositories: Optional[RepositoryNames] = None
    restore: Optional[Restore] = None


class AppVolume(Model):
    """An app's volume with every default applied: what its PVC and movers are built from."""

    claim_name: str
    capacity: str
    storage_class: str
    snapshot_class: Optional[str]
    access_modes: tuple[AccessMode, ...]
    mover: MoverIdentity
