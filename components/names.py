"""Every name the program generates, derived here and nowhere else, and checked.

Kubernetes object names, Pulumi resource names, label values and schedule-pin keys are all
built from user names (apps, namespaces, repositories, databases) by the functions below. Only
the plan's plain modules call them (`plan.py`, `volsync_plan.py`, `database_plan.py`,
`backends.py`): the plan names every resource as a `tree.Node`, the components read the nodes,
and the plan hands each node's names to a `NameBook`, which turns a collision (`a` + `b-c` and
`a-b` + `c` both make `a-b-c`) or a name over its limit into a config problem naming both keys.
A component makes no name (`tests/test_tree.py`); the one use it makes of this module is a
selector over every CronJob of a kind (`snapshot_check("")`, the prefix) in the alerts.

Pulumi resource names are kept exactly as they were before this module existed: a new name
would be a new URN, and the engine would replace live objects to follow it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Optional

from .keypath import KeyPath, format_path

# ------------------------------------------------------------------------------- limits

#: A DNS-1123 label: Services, label values, namespaces, and names that become label values.
LABEL = 63
#: VolSync names a mover Job `volsync-src-<ReplicationSource>` / `volsync-dst-<Destination>`,
#: and a Job's name becomes a 63-character label value on its pods.
MOVER_OWNER = LABEL - len("volsync-src-")
#: A ReplicationSource without an explicit username gets its name as Kopia username, cut at 50
#: characters (builder.go maxUsernameLength). This program always sets the username, but a
#: source kept within 50 stays readable by a hand-made destination that relies on the default.
SOURCE = 50
#: The CronJob controller appends an 11-character suffix to a CronJob's name for each Job.
CRONJOB = 52
#: Any other object name (a DNS-1123 subdomain).
SUBDOMAIN = 253
#: CloudNative-PG's webhook refuses a Cluster name over 50 characters.
CNPG_CLUSTER = 50


class Role(StrEnum):
    """What a ReplicationDestination of an app is for."""

    BOOTSTRAP = "bootstrap"
    RESTORE = "restore"
    DRILL = "drill"


# ------------------------------------------------------------------------------- Kubernetes names


def claim(app: str, claim_name: Optional[str]) -> str:
    return claim_name or app


def replication_source(app: str, repository: str) -> str:
    return f"{app}-{repository}"


def backup_now_source(app: str, repository: str) -> str:
    """The extra ReplicationSource of `backupNow`: manual trigger, same identity, same retention."""
    return f"{app}-{repository}-now"


def destination(app: str, role: Role, generation: str = "") -> str:
    """`<app>-<role>`; a recreated claim's bootstrap gets `-<generation>`: a new object with no
    `latestImage` yet, so the volume populator waits for the fresh restore."""
    return f"{app}-{role.value}" + (f"-{generation}" if generation else "")


def claim_generation(token: Optional[str]) -> str:
    """"" for the claim as first made; 6 hex digits of a `recreateClaim` token after that."""
    return hashlib.sha256(token.encode()).hexdigest()[:6] if token else ""


def repository_secret(repository: str) -> str:
    return f"volsync-kopia-{repository}"


def kopia_maintenance(repository: str) -> str:
    return f"kopia-{repository}"


def cephfs_claim(repository: str) -> str:
    return f"kopia-{repository}"


def cephfs_volume(repository: str, namespace: str) -> str:
    return f"kopia-{repository}-{namespace}"


def web_ui(repository: str) -> str:
    return f"kopia-ui-{repository}"


def kopiur_web_ui(repository: str) -> str:
    """The Deployment and Service Kopiur makes for a repository's `spec.server` (its naming:
    crates/controller/src/server/mod.rs `server_object_name`)."""
    return f"{repository}-kopia-ui"


def mirror_cronjob(source: str, target: str) -> str:
    return f"kopia-mirror-{source}-to-{target}"


def snapshot_check(repository: str) -> str:
    return f"kopia-check-{repository}"


def identity(username: str, hostname: str) -> str:
    """The Kopia source of an app's snapshots: `user@host:/data` (the mover's data path)."""
    return f"{username}@{hostname}:/data"


def plugin_config(database: str) -> str:
    return f"{database}-pgbackrest"


def pgbackrest_check(database: str) -> str:
    """`pgbackrest-check-<database>`. A database is a CloudNative-PG Cluster, whose name may be 50
    characters, which that CronJob name cannot hold: the longer ones keep the prefix (the alert
    selects the checks by it) and the start of the name, and end in a digest of the whole."""
    name = f"pgbackrest-check-{database}"
    if len(name) <= CRONJOB:
        return name
    return f"{name[:CRONJOB - 7].rstrip('-')}-{hashlib.sha256(database.encode()).hexdigest()[:6]}"


def recovery_stanza(database: str) -> str:
    """The Stanza a recovery reads when it names one repository: that repository alone."""
    return f"{database}-recovery"


def scheduled_backup(database: str, repository: str, kind: str) -> str:
    return f"{database}-{repository}-{kind}"


def pgbackrest_credentials(database: str, repository: str) -> str:
    return f"pgbackrest-{database}-{repository}"


def pgbackrest_encryption(database: str) -> str:
    return f"pgbackrest-{database}-encryption"


#: Fixed names of cluster-wide objects.
PROMETHEUS_RULE = "homelab-backups"
#: The program's own name: seeds 003 and 004 deploy a `volsync-mover-jitter` of their own, and a
#: migration that lets Flux prune the seed's copy must never delete the program's.
JITTER_POLICY = "backups-mover-jitter"
#: The name this policy had before (and its binding, with `-binding`): aliased, so an upgrade
#: replaces the object in place of adding one and deleting the other.
FORMER_JITTER_POLICY = "volsync-mover-jitter"
PVC_GUARD = "backups-storage-class-guard-pvcs"
VOLSYNC_GUARD = "backups-storage-class-guard-volsync"
#: Kopiur's kinds each get a guard of their own: the API server type-checks a policy's CEL against
#: each matched kind's schema, and their volume fields differ.
KOPIUR_POLICY_GUARD = "backups-storage-class-guard-kopiur-policies"
KOPIUR_RESTORE_GUARD = "backups-storage-class-guard-kopiur-restores"


def stale_alert(repository: str) -> str:
    """`BackupStale<Repository>`: the repository name in CamelCase, '-' kept where dropping it
    would make two names one (`a-b` and `a--b`)."""
    return "BackupStale" + "".join(part.capitalize() if part else "_" for part in repository.split("-"))


# ------------------------------------------------------------------------------- Pulumi resource names


def app_component(namespace: str, app: str) -> str:
    return f"{namespace}-{app}"


def database_component(namespace: str, database: str) -> str:
    return f"{namespace}-{database}"


def s3_provider(host: str, digest: int) -> str:
    """The aws provider of one S3 endpoint and credentials: `digest` is a stable hash of them."""
    return f"s3-{host.replace(':', '-')}-{digest % 16**6:06x}"


def child(component: str, *parts: str) -> str:
    """A component's child resource: the component's name and the child's role."""
    return "-".join((component, *parts))


# ------------------------------------------------------------------------------- schedule pins


class JobKind(StrEnum):
    """What a scheduled job is. The plan is keyed by kind, never by a marker string in a name
    slot: an app called `kopia-maintenance` is an app, whatever its name."""

    BACKUP = "backup"
    MAINTENANCE = "maintenance"
    MIRROR = "mirror"
    DRILL = "drill"
    CHECK = "check"


@dataclass(frozen=True)
class JobKey:
    """One scheduled job. `owner` is the app (backup, drill) or the repository (maintenance,
    mirror); `repository` is empty for a drill, which reads its app's bootstrap repository."""

    kind: JobKind
    namespace: str
    owner: str
    repository: str = ""

    @property
    def pin(self) -> str:
        """The `backups:schedulePins` key: `media/radarr/nas` for a backup (its original form),
        `volsync-system/nas:maintenance`, `volsync-system/nas:mirror`, `media/radarr:drill`.
        ':' is in no Kubernetes name, so no app or repository name can forge another job's key."""
        if self.kind is JobKind.BACKUP:
            return f"{self.namespace}/{self.owner}/{self.repository}"
        return f"{self.namespace}/{self.owner}:{self.kind.value}"

    @property
    def seed(self) -> tuple[str, ...]:
        """What the job's home minute is hashed from. These are the tuples the schedules were
        hashed from before jobs had kinds, so no unpinned job moved when they got them."""
        if self.kind is JobKind.BACKUP:
            return (self.owner, self.namespace, self.repository)
        if self.kind is JobKind.DRILL:
            return (self.owner, self.namespace, "restore-drill")
        return (f"kopia-{self.kind.value}", self.namespace, self.owner)

    @property
    def pool(self) -> tuple[str, str]:
        """Jobs that share minutes: a repository's backups, maintenance and mirror (they all
        lock the repository), or the drills among themselves."""
        return ("drills", "") if self.kind is JobKind.DRILL else ("repository", self.repository or self.owner)


def job_of_pin(key: str) -> JobKey:
    """The job a pin key names (the inverse of JobKey.pin); the key must match `config.cron.PIN_KEY`."""
    namespace, rest = key.split("/", 1)
    if ":" in rest:
        owner, kind = rest.split(":")
        return JobKey(JobKind(kind), namespace, owner, owner if kind != JobKind.DRILL.value else "")
    owner, repository = rest.split("/")
    return JobKey(JobKind.BACKUP, namespace, owner, repository)


# ------------------------------------------------------------------------------- the check

@dataclass
class NameBook:
    """Names handed out so far, by the domain in which each must be unique."""

    problems: list[tuple[KeyPath, str]] = field(default_factory=list)
    _taken: dict[tuple[object, ...], tuple[str, KeyPath, str]] = field(default_factory=dict)
    _pairs: set[tuple[KeyPath, KeyPath]] = field(default_factory=set)

    def take(self, domain: tuple[object, ...], name: str, limit: int, path: KeyPath, what: str) -> str:
        """Record `name` (made from the config at `path`) in `domain`; a collision or an
        over-long name becomes a problem. Returns the name.

        One collision is reported once per pair of keys: an app whose component name collides
        also collides in each child's name, and those say nothing new."""
        if len(name) > limit:
            self.problems.append(
                (path, f"makes the {what} name {name!r} ({len(name)} characters), longer than its "
                       f"limit of {limit}: shorten the names it is made of")
            )
        earlier = self._taken.get((*domain, name))
        if earlier is None:
            self._taken[(*domain, name)] = (what, path, name)
        elif earlier[1] != path and (path, earlier[1]) not in self._pairs:
            self._pairs.add((path, earlier[1]))
            also = "" if earlier[0] == what else f" (as the {earlier[0]} name)"
            self.problems.append(
                (path, f"makes the {what} name {name!r}, which {format_path(earlier[1])} also "
                       f"makes{also}: rename one of them")
            )
        return name
