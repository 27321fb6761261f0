"""The VolSync mover's part of the plan: which objects it needs for an app and a repository,
and what they are called.

The rest of the plan is the mover's inputs, the same whichever mover runs them: an app's volume,
its backups (repository, identity, schedule, retention, who the mover runs as), its restore
points, a repository's access. Here those become VolSync objects: a ReplicationSource per
backup (and per `backupNow`), a ReplicationDestination per bootstrap, restore and drill, a
KopiaMaintenance per maintained repository. `volsync_mover.py` makes them as children of the app
and repository components. A second mover supplies two modules like these, and the app and
repository components call its module where they call `volsync_mover` now.

Plain data: no Pulumi here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import names, tree
from .keypath import KeyPath
from .names import Role
from .tree import Node


@dataclass(frozen=True)
class Destinations:
    """An app's ReplicationDestinations, by what each is for."""

    bootstrap: Optional[Node]
    """Fills the claim when it is made; None for an existing claim."""
    restore: Optional[Node]
    drill: Optional[Node]

    def of(self, role: Role) -> Node:
        node = {Role.BOOTSTRAP: self.bootstrap, Role.RESTORE: self.restore, Role.DRILL: self.drill}[role]
        assert node is not None, role
        return node


def source(component: str, app: str, namespace: str, repository: str, path: KeyPath) -> Node:
    """The ReplicationSource of an app's backup to `repository`."""
    return Node(names.child(component, repository), "ReplicationSource", tree.APP, path,
                names.replication_source(app, repository), namespace, limit=names.SOURCE)


def one_off_source(component: str, app: str, namespace: str, repository: str, path: KeyPath) -> Node:
    """`backupNow`'s extra ReplicationSource: manual trigger, same identity and retention."""
    return Node(names.child(component, repository, "now"), "ReplicationSource", tree.APP, path,
                names.backup_now_source(app, repository), namespace, limit=names.SOURCE)


def destinations(component: str, app: str, namespace: str, path: KeyPath, generation: str,
                 bootstrap: bool, restore: bool, drill: bool) -> Destinations:
    """A recreated claim's bootstrap is a new object (and resource) with its generation: it has no
    `latestImage` yet, so the volume populator waits for the fresh restore."""
    def destination(role: Role, suffix: str = "") -> Node:
        return Node(names.child(component, role.value, *((suffix,) if suffix else ())), "ReplicationDestination",
                    tree.APP, path, names.destination(app, role, suffix), namespace, limit=names.MOVER_OWNER)

    return Destinations(
        bootstrap=destination(Role.BOOTSTRAP, generation) if bootstrap else None,
        restore=destination(Role.RESTORE) if restore else None,
        drill=destination(Role.DRILL) if drill else None,
    )


def maintenance(repository: str, namespace: str, path: KeyPath) -> Node:
    """The repository's KopiaMaintenance (its name becomes a label value of the fork's CronJob)."""
    return Node(names.child(repository, "maintenance"), "KopiaMaintenance", tree.REPOSITORY, path,
                names.kopia_maintenance(repository), namespace, limit=names.LABEL)
