"""Where each app's history is, and which changes of it a `pulumi preview` must stop.

A Kopia history is found by two things: the repository's location (its target, not its name in
the config) and the identity `user@host` the snapshots carry. A change that moves either away
from where the snapshots are leaves them behind: the next bootstrap, restore or drill reads an
empty history and hands back an empty volume. This module is plain data and rules, no Pulumi:
`ledger_of` writes down where every claim's history is; `refusals` compares the ledger of the
last `pulumi up` with the new one. `history_lock.HistoryLock` keeps the ledger in the stack's
state and runs `refusals` in its diff, so the engine shows them at preview (as the stanza lock
does for pgBackRest stanzas).

Also here, because it needs the claim's last size: a smaller capacity must never reach the API
server as an in-place patch (it refuses, and the app's claim is stuck half-applied). A claim
shrinks only by being made again from a backup (`recreateClaim`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from backup_contract import normalized_target

from .plan import StackPlan

#: Quantity suffixes (k8s.io/apimachinery resource.Quantity) and their multipliers.
_SUFFIXES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def quantity_bytes(quantity: str) -> Decimal:
    number, suffix = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return Decimal(number) * _SUFFIXES[suffix]


def ledger_of(plan: StackPlan) -> dict[str, Any]:
    """`namespace/claim` -> where its history is, what it is called in the config, its size."""
    claims: dict[str, Any] = {}
    for index, ap in enumerate(plan.apps):
        claims[f"{ap.app.namespace}/{ap.volume.claim_name}"] = {
            "app": ap.app.name,
            "key": f"backups:apps[{index}]",
            "identity": ap.app.history,
            "locations": sorted({s.place for s in ap.sources}),
            "capacity": ap.volume.capacity if ap.managed_claim else None,
            "generation": ap.generation,
            "allowIdentityChange": ap.app.allow_identity_change,
        }
    return {"claims": claims}


def refusals(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """What in going from `olds` to `news` (two ledgers) would orphan a history or patch a claim
    smaller. Empty when the change is safe or says it is meant."""
    before, after = olds.get("claims") or {}, news.get("claims") or {}
    problems: list[str] = []
    for claim in sorted(before.keys() & after.keys()):
        problems += _kept_claim(claim, before[claim], after[claim])
    problems += _renames(before, after)
    return problems


def _kept_claim(claim: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    problems = []
    allowed = new.get("allowIdentityChange")
    # Ledgers written before places were normalised hold raw spellings: compare them as places.
    old = {**old, "locations": sorted({normalized_target(t) for t in old["locations"]})}
    shared = set(old["locations"]) & set(new["locations"])
    if old["identity"] != new["identity"] and shared and not allowed:
        problems.append(
            f"{new['key']} ({new['app']}): claim {claim} has its history as {old['identity']!r}, and "
            f"the config now writes and restores {new['identity']!r}. The snapshots under the old "
            f"identity would no longer be read: a restore would find nothing. Put identity: "
            f"{old['identity']} on the app to keep the history, or set allowIdentityChange: true "
            "for this one change to start a new one."
        )
    gone, added = set(old["locations"]) - set(new["locations"]), set(new["locations"]) - set(old["locations"])
    if gone and added and not allowed:
        problems.append(
            f"{new['key']} ({new['app']}): claim {claim} stops writing to {', '.join(sorted(gone))} and "
            f"starts writing to {', '.join(sorted(added))}: a repository moved, and its history stays "
            "where it was (restores would read the new, empty place). Point the repository back, or "
            "set allowIdentityChange: true for this one change (mirror the old place first to keep "
            "the history)."
        )
    old_size, new_size = old.get("capacity"), new.get("capacity")
    if (old_size and new_size and quantity_bytes(new_size) < quantity_bytes(old_size)
            and old.get("generation") == new.get("generation")):
        problems.append(
            f"{new['key']}.capacity ({new['app']}): claim {claim} is {old_size}; the API server "
            f"cannot shrink a claim to {new_size} in place. To shrink it: (1) scale the app to zero; "
            "(2) set backupNow: <new token> and run pulumi up (a fresh backup); (3) delete the claim "
            f"(kubectl -n {claim.split('/')[0]} delete pvc {claim.split('/')[1]}); (4) set capacity: "
            f"{new_size} and recreateClaim: <new token>, and run pulumi up: a new claim is filled "
            "from that backup; (5) scale the app up. Or put the capacity back."
        )
    return problems


def _renames(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """A claim that leaves the config while, in the same change, a claim in its namespace starts
    a new history in one of its repositories: an app renamed without keeping its identity."""
    still_written = {(loc, c["identity"]) for c in after.values() for loc in c["locations"]}
    problems = []
    for claim in sorted(before.keys() - after.keys()):
        old = before[claim]
        namespace = claim.split("/")[0]
        abandoned = {loc for loc in old["locations"] if (loc, old["identity"]) not in still_written}
        for added in sorted(after.keys() - before.keys()):
            new = after[added]
            if (added.split("/")[0] != namespace or new.get("allowIdentityChange")
                    or not abandoned & set(new["locations"])):
                continue
            problems.append(
                f"{new['key']} ({new['app']}): in this change {old['app']} (claim {claim}, history "
                f"{old['identity']!r}) leaves the config and {new['app']} (claim {added}) starts a new "
                f"history, {new['identity']!r}, in the same repository. If this is a rename, the old "
                f"snapshots would not be read: put identity: {old['identity']} on {new['app']} (and "
                f"claimName: {claim.split('/')[1]} to keep the claim). If they are two apps, set "
                f"allowIdentityChange: true on {new['app']} for this one change."
            )
            break
    return problems
