"""Stops, at `pulumi preview`, a change that would orphan an app's Kopia history or shrink a
claim in place (the rules are `history.refusals`).

Pulumi programs cannot read the previous state of a resource, but a provider can: this tiny
dynamic provider holds the stack's history ledger (`history.ledger_of`), and its `check` compares
the ledger of the last `pulumi up` with the new one. A refusal is a check failure, which the
engine reports as the resource's problem, message only (an exception from `diff` would reach the
user as the dynamic provider's Python traceback: the real engine showed it). One ledger for the
whole stack, not one per app, because a rename is an app leaving and another arriving in the
same change. The offline preview has no state and cannot show it (the tests call `check`; the
real engine's refusal is tests/e2e/test_engine.py).
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

from .history import refusals


class HistoryLockProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """`olds` are the ledger of the last `pulumi up` (none on the first)."""
        return CheckResult(news, [CheckFailure("claims", problem) for problem in refusals(olds or {}, news)])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="history", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("claims") != news.get("claims"), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)


@dataclass(frozen=True)
class HistoryLockArgs:
    ledger: dict[str, Any]
    """Every claim's app, identity, places, capacity and generation (`history.ledger_of`)."""


class HistoryLock(Resource):
    def __init__(self, name: str, args: HistoryLockArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(HistoryLockProvider(), name, args.ledger, opts)
