"""What a preview or an update changes, per app: a note under the engine's own output.

The engine lists every step, resource by resource; a reviewer wants to know which apps a change
touches. Adding a repository, say, fans every app out to it: ten new sources in the step list,
one line per app here. The steps are the engine's (its resource events), grouped by the
`BackupEnabledApp` component each resource belongs to, so the note says what the engine will
do, state and all, not what the config seems to say.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from pulumi.automation import events

from components import tree

APP_TYPE = tree.APP
#: How each kind of step reads; create-replacement and delete-replaced are the halves of a
#: replace, which is listed once.
_SIGNS = {"create": "+", "delete": "-", "update": "~", "replace": "+-"}


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _type(urn: str) -> str:
    return urn.rsplit("::", 2)[-2].rsplit("$", 1)[-1]


@dataclass
class AppChanges:
    """The steps of one run, by app."""

    steps: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """App component name -> (sign, `Kind pulumi-name`) of each step of its resources."""
    apps: dict[str, str] = field(default_factory=dict)
    """App component name -> "added" or "removed", when the app itself comes or goes."""

    def take(self, event: events.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is None or pre.metadata.op.value not in _SIGNS:
            return
        step = pre.metadata
        if step.type == APP_TYPE:
            if step.op.value in ("create", "delete"):
                self.apps[_name(step.urn)] = "added" if step.op.value == "create" else "removed"
            return
        parent = self._parent(step)
        if parent is not None and _type(parent) == APP_TYPE:
            kind = step.type.rsplit(":", 1)[-1]
            self.steps.setdefault(_name(parent), []).append((_SIGNS[step.op.value], f"{kind} {_name(step.urn)}"))

    @staticmethod
    def _parent(step: events.StepEventMetadata) -> Optional[str]:
        for state in (step.new, step.old):
            if state is not None and state.parent:
                return state.parent
        return None

    def note(self) -> list[str]:
        """One line per app the run changes, apps in the order the engine stepped them."""
        lines = []
        for app in dict.fromkeys([*self.apps, *self.steps]):
            steps = self.steps.get(app, [])
            if app in self.apps:
                kinds = Counter(what.split(" ", 1)[0] for _, what in steps)
                listed = ", ".join(f"{kind}{f' x{n}' if n > 1 else ''}" for kind, n in kinds.items())
                kept = " (its claim is kept: retained on delete)" if self.apps[app] == "removed" else ""
                lines.append(f"  {app}: {self.apps[app]}{f' ({listed})' if listed else ''}{kept}")
            else:
                lines.append(f"  {app}: " + "; ".join(f"{sign} {what}" for sign, what in steps))
        return ["changes per app:", *lines] if lines else []
