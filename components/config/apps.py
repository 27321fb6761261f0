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
    DnsSubdomain,
    Id,
    KopiaIdentity,
    Model,
    Quantity,
    RepositoryNames,
    Rfc3339,
    Schedule,
    Token,
)
from .hooks import Hooks
from .shared import MoverIdentity


class RestoreSource(Model):
    namespace: DnsLabel
    app: DnsLabel


class PointInTime(Model):
    """Which snapshot: the latest by default, `previous: N` before it, or the last one at or
    before `restoreAsOf`."""

    previous: Optional[Count] = None
    restore_as_of: Optional[Rfc3339] = None
    """Emitted in UTC with a `Z` whatever offset the config gives (see fields._rfc3339)."""
    #: Which repository to read from: one the app backs up to, or a mirror copy of one; the
    #: app's bootstrap repository by default.
    repository: Optional[DnsLabel] = None

    @model_validator(mode="after")
    def _one_point(self) -> PointInTime:
        if self.previous is not None and self.restore_as_of is not None:
            raise ValueError("give previous or restoreAsOf, not both")
        return self


class Restore(PointInTime):
    """A restore into the app's live claim as a reviewed config change: at least one of
    previous, restoreAsOf, from, identity."""

    from_: Optional[RestoreSource] = Field(default=None, alias="from")
    #: Read this Kopia history instead of the app's own (an older layout's `radarr-nas@media`).
    identity: Optional[KopiaIdentity] = None

    @model_validator(mode="after")
    def _one_kind(self) -> Restore:
        if self.from_ is not None and self.identity is not None:
            raise ValueError("give from or identity, not both: each names the history to read")
        if (self.previous, self.restore_as_of, self.from_, self.identity) == (None,) * 4:
            raise ValueError("needs previous: N, restoreAsOf: <RFC 3339 time>, from: {namespace, app} "
                             "or identity: user@host")
        return self


class Recovery(PointInTime):
    """`backups:recoveries[]`: where a namespace's claims come back from when they are made
    again (the namespace was deleted, the cluster rebuilt). Every app of the namespace reads its
    bootstrap restore from `repository` at the point given; a live claim is not touched."""

    namespace: DnsLabel


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
    #: The Kopia identity of the app's history in every repository; default `<name>@<namespace>`
    #: (VolSync's own default for a ReplicationSource named after the app, as the seeds have).
    identity: Optional[KopiaIdentity] = None
    #: Set, for the one change, to move the app's history to another identity on purpose.
    allow_identity_change: bool = False
    #: A claim made by something else (a Helm chart): backed up and restored into, never created,
    #: changed or deleted; no bootstrap restore fills it.
    existing_claim: Optional[DnsSubdomain] = None
    #: A new token makes one extra backup to each repository at the next `pulumi up`.
    backup_now: Optional[Token] = None
    #: A new token makes the claim again from the latest backup (how a claim shrinks): a fresh
    #: bootstrap restore fills a new claim object, after the old one was deleted.
    recreate_claim: Optional[Token] = None
    #: Commands before and after each backup (Kopiur only): an app-consistent copy.
    hooks: Optional[Hooks] = None

    @model_validator(mode="after")
    def _claim_is_ours_or_not(self) -> App:
        if self.existing_claim is not None:
            for key, value in (("claimName", self.claim_name), ("recreateClaim", self.recreate_claim)):
                if value is not None:
                    raise ValueError(f"existingClaim is a claim made elsewhere, which this program never "
                                     f"creates or changes: {key} does not apply to it")
        return self

    @property
    def hooks_to_run(self) -> Optional[Hooks]:
        """`hooks` when it has a step to run (an empty `hooks: {}` asks for nothing)."""
        return self.hooks if self.hooks is not None and (self.hooks.before_backup or self.hooks.after_backup) else None

    @property
    def history(self) -> str:
        """The Kopia identity `user@host` of the app's history."""
        return self.identity or f"{self.name}@{self.namespace}"

    @property
    def kopia_identity(self) -> tuple[str, str]:
        """(username, hostname) of the app's history."""
        user, _, host = self.history.partition("@")
        return user, host


class AppVolume(Model):
    """An app's volume with every default applied: what its PVC and movers are built from."""

    claim_name: str
    capacity: str
    storage_class: str
    snapshot_class: Optional[str]
    access_modes: tuple[AccessMode, ...]
    mover: MoverIdentity
