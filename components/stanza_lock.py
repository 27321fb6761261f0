"""Stops a stanza rename at preview: renaming a pgBackRest stanza orphans every backup in it.

Pulumi programs cannot read the previous state of a resource, but a provider can: this tiny
dynamic provider holds the stanza name, and its `check` refuses a new name unless the config says
`allowStanzaRename: true` for that change (a check failure: the engine shows the message alone).
Under the real engine the error shows at `pulumi preview`; the offline preview has no state and
cannot show it (the tests call `check`; the real engine's refusal is tests/e2e/test_engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)


class StanzaLockProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """`olds` are the inputs of the last `pulumi up` (none on the first)."""
        renamed = (olds or {}).get("stanza") not in (None, news["stanza"])
        if not renamed or news.get("allowRename"):
            return CheckResult(news, [])
        return CheckResult(news, [CheckFailure(
            "stanza",
            f"{news['key']}.stanza ({news['namespace']}/{news['database']}): the pgBackRest stanza "
            f"is {olds['stanza']!r} and the config now says {news['stanza']!r}. Renaming a "
            "stanza orphans every backup and WAL archive stored under the old name. Put the "
            "old name back, or set allowStanzaRename: true for this one change.",
        )])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['namespace']}/{props['database']}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("stanza",) if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)


@dataclass(frozen=True)
class StanzaLockArgs:
    database: str
    namespace: str
    stanza: str
    allow_rename: bool
    """`allowStanzaRename`: this one change may rename the stanza."""
    key: str
    """The database's config key path, for the message."""


class StanzaLock(Resource):
    def __init__(self, name: str, args: StanzaLockArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(
            StanzaLockProvider(),
            name,
            {"database": args.database, "namespace": args.namespace, "stanza": args.stanza,
             "allowRename": args.allow_rename, "key": args.key},
            opts,
        )
