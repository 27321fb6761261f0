"""`backups:apps[].hooks`: commands around an app's backups, for app-consistent copies.

Kopiur runs them (SnapshotPolicy `spec.hooks`): an `exec` in the app's pod, found by its labels,
or an `http` call, before and after each snapshot (each repository's backup runs them again).
A crash-consistent snapshot of a live SQLite database can hold a half-written page; a hook that
runs `sqlite3 db '.backup db.bak'` first makes the copy the backup carries consistent. The
fork's mover runs no hooks: with `mover: volsync` the key is refused (stack.py).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field, model_validator

from .fields import DnsLabel, LabelKey, LabelValue, Model, Text

#: A Go duration (`2m`, `1h30m`): what Kopiur's `timeout` fields take.
_DURATION = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+")
#: http(s), a host, a path; no user part and no query (`?apikey=...`, how the *arr apps take a
#: key): the URL lands in a SnapshotPolicy anyone who may read the app's namespace reads.
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s@?#]*)?")


def _duration(value: str) -> str:
    if not _DURATION.fullmatch(value):
        raise ValueError("must be a Go duration like 30s, 2m or 1h30m")
    return value


def _url(value: str) -> str:
    if not _URL.fullmatch(value):
        raise ValueError("must be an http:// or https:// URL without a user, password or query string "
                         "in it (a query often carries an API key, and the URL is written into the "
                         "SnapshotPolicy in the clear)")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
Url = Annotated[str, AfterValidator(_url)]


class ExecHook(Model):
    """A command run in a container of the app's pod (`kubectl exec`)."""

    pod: Annotated[dict[LabelKey, LabelValue], Field(min_length=1)]
    """The labels that find the app's pod (`app.kubernetes.io/name: bookstack`)."""
    container: Optional[DnsLabel] = None
    """The pod's first container when left out."""
    command: Annotated[tuple[Text, ...], Field(min_length=1)]


class HttpHook(Model):
    """A request to the app (a maintenance-mode endpoint, a webhook)."""

    url: Url
    method: Literal["POST", "PUT", "GET"] = "POST"


class Hook(Model):
    """One step: `exec` or `http`. A failing step stops the backup unless `continueOnFailure`."""

    exec: Optional[ExecHook] = None
    http: Optional[HttpHook] = None
    timeout: Optional[Duration] = None
    continue_on_failure: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Hook:
        if (self.exec is None) == (self.http is None):
            raise ValueError("give exec: {pod, command} or http: {url}, one per step")
        return self


class Hooks(Model):
    before_backup: tuple[Hook, ...] = ()
    """Run in order before each snapshot (quiesce, dump)."""
    after_backup: tuple[Hook, ...] = ()
    """Run in order after it (resume)."""
