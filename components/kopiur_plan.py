"""Kopiur's part of the plan: which of its objects an app and a repository need, and their names.

The mover's inputs are the plan's, as for VolSync (`volsync_plan.py`): here a backup to a
repository is a SnapshotPolicy (the app's identity and `/data` pinned, so a history the fork
wrote continues) with a SnapshotSchedule of the same name, the claim is filled by a populator
Restore, and a repository is one ClusterRepository. `kopiur_mover.py` makes them.

Plain data: no Pulumi here.
"""

from __future__ import annotations

from dataclasses import dataclass

from backup_contract import KOPIA_PASSWORD

from . import names, tree
from .backends import UI_PASSWORD, UI_PORT, UI_USERNAME
from .config import MoverIdentity, Repository
from .keypath import KeyPath
from .kopiur import (
    AllowedNamespaces,
    Backend,
    Catalog,
    ClaimVolume,
    ClusterRepositorySpec,
    Create,
    Cron,
    Encryption,
    FilesystemBackend,
    FilesystemVolume,
    MaintenanceSchedule,
    Mover,
    NfsVolume,
    ReplicationSync,
    RepositoryMaintenance,
    RepositoryRef,
    RepositoryReplicationSpec,
    RepositoryServer,
    S3Auth,
    S3Backend,
    S3Tls,
    SecretRef,
    ServerAuth,
    ServerSecretRef,
    ServerService,
)
from .names import Role
from .schedule import stable_hash
from .tree import Node
from .volsync import security_context_for
from .volsync_plan import Destinations


def policy(component: str, app: str, namespace: str, repository: str, path: KeyPath) -> Node:
    """The SnapshotPolicy of an app's backup to `repository` (named as the fork's source was)."""
    return Node(names.child(component, repository), "SnapshotPolicy", tree.APP, path,
                names.replication_source(app, repository), namespace, limit=names.LABEL)


def schedule(component: str, app: str, namespace: str, repository: str, path: KeyPath) -> Node:
    """Its SnapshotSchedule, of the same name."""
    return Node(names.child(component, repository, "schedule"), "SnapshotSchedule", tree.APP, path,
                names.replication_source(app, repository), namespace, limit=names.LABEL)


def one_off(component: str, app: str, namespace: str, repository: str, path: KeyPath, token: str) -> Node:
    """`backupNow` as one Snapshot of the policy. A Kopiur Snapshot runs once, when it is made, so
    its name carries the token: a new token is a new Snapshot (the old one stays with Kopiur, to
    its retention), an unchanged one never runs again."""
    return Node(names.child(component, repository, "now"), "Snapshot", tree.APP, path,
                f"{names.backup_now_source(app, repository)}-{stable_hash(token) % 16**8:08x}", namespace)


def destinations(component: str, app: str, namespace: str, path: KeyPath, generation: str,
                 bootstrap: bool, restore: str) -> Destinations:
    """The populator Restore that fills a claim when it is made (a recreated claim's is a new
    one), and the Restore into the live claim that `restore` (its request's digest) asks for. A
    Kopiur Restore runs once, when it is made, so the request is in its name: an edited request
    is a new Restore, an unchanged one never runs again."""
    def node(role: Role, suffix: str) -> Node:
        return Node(names.child(component, role.value, *((suffix,) if suffix else ())), "Restore",
                    tree.APP, path, names.destination(app, role, suffix), namespace)

    return Destinations(bootstrap=node(Role.BOOTSTRAP, generation) if bootstrap else None,
                        restore=node(Role.RESTORE, restore) if restore else None, drill=None)


@dataclass(frozen=True)
class KopiurRepository:
    node: Node
    spec: ClusterRepositorySpec


def repository(repository: str, path: KeyPath, spec: ClusterRepositorySpec) -> KopiurRepository:
    """The repository as one ClusterRepository, readable from every namespace it allows."""
    return KopiurRepository(Node(names.child(repository, "kopiur"), "ClusterRepository", tree.REPOSITORY, path,
                                 repository), spec)


def replication(component: str, source: str, target: str, namespace: str, path: KeyPath) -> Node:
    """`mirrorTo` as a RepositoryReplication in the maintenance namespace, named as the fork's
    mirror CronJob was."""
    return Node(names.child(component, "replication"), "RepositoryReplication", tree.MIRROR, path,
                names.mirror_cronjob(source, target), namespace)


#: Where a filesystem repository's volume is mounted in Kopiur's movers (`backend.filesystem.path`).
FILESYSTEM_MOUNT = "/repository"
#: The path the fork's mover recorded every snapshot under: pinned, so its histories continue.
DATA_PATH = "/data"


def repository_spec(repo: Repository, namespaces: tuple[str, ...], secret: str, maintained: bool,
                    schedule: str, identity: MoverIdentity, ui_login: str = "") -> ClusterRepositorySpec:
    """The ClusterRepository of `repo`: its backend, the password and keys from the repository
    Secret in the maintenance namespace, its maintenance (off for a mirror copy), and with
    `ui_login` (the login Secret's name) the web UI."""
    home = repo.maintenance.namespace
    if repo.s3 is not None:
        backend = Backend(s3=s3_backend(repo, secret, home))
    elif repo.nfs is not None:
        backend = Backend(filesystem=FilesystemBackend(
            path=FILESYSTEM_MOUNT, volume=FilesystemVolume(nfs=NfsVolume(server=repo.nfs.server, path=repo.nfs.path))))
    else:  # CephFS: the static claim on the shared subvolume, made in every namespace it serves
        backend = Backend(filesystem=FilesystemBackend(
            path=FILESYSTEM_MOUNT, volume=FilesystemVolume(pvc=ClaimVolume(name=names.cephfs_claim(repo.name)))))
    return ClusterRepositorySpec(
        allowed_namespaces=AllowedNamespaces(list_=namespaces),
        backend=backend,
        encryption=Encryption(password_secret_ref=SecretRef(name=secret, namespace=home, key=KOPIA_PASSWORD)),
        # The fork's maintenance is one weekly full run; Kopiur also wants a quick one: daily, at
        # the same minute.
        maintenance=_maintenance(home, schedule, identity) if maintained else RepositoryMaintenance(enabled=False),
        # The fork's snapshots are discovered; adopted, they are the policies' history and their
        # retention prunes them, as Kopia's did under the fork. A mirror copy's are the source's,
        # copied blob for blob: nothing but the sync may change them.
        catalog=Catalog(adoption="Adopt" if maintained else "Ignore"),
        # Without `create` a repository must exist already: a first deploy on Kopiur makes it, as
        # the fork's first backup did. A mirror copy must never be made: one Kopiur made in the
        # empty bucket would have its own unique ID, and `sync-to` refuses such a destination.
        create=Create(enabled=maintained),
        mode="ReadWrite" if maintained else "ReadOnly",
        server=_server(home, ui_login, identity) if ui_login else None,
    )


def _server(namespace: str, login: str, identity: MoverIdentity) -> RepositoryServer:
    """The web UI as the fork's was: read-only (Kopiur connects it `--readonly`), the login from
    the program's Secret, the port the program's UI had, as the repository's owner (a filesystem
    repository's files are the movers' uid's, 0600)."""
    return RepositoryServer(
        namespace=namespace,
        auth=ServerAuth(secret_ref=ServerSecretRef(name=login, username_key=UI_USERNAME, password_key=UI_PASSWORD)),
        read_only=True, service=ServerService(port=UI_PORT),
        pod_security_context=security_context_for(identity),
    )


def s3_backend(repo: Repository, secret: str, namespace: str) -> S3Backend:
    """An S3 repository as Kopiur reaches it: its keys (`AWS_*`) from `secret` in `namespace`."""
    assert repo.s3 is not None
    return S3Backend(
        bucket=repo.s3.bucket, endpoint=repo.s3.host, region=repo.region,
        tls=None if repo.s3.tls else S3Tls(disable_tls=True),
        auth=S3Auth(secret_ref=SecretRef(name=secret, namespace=namespace)),
    )


def replication_spec(source: str, target: Repository, secret: str, namespace: str, schedule: str, suspend: bool,
                     identity: MoverIdentity) -> RepositoryReplicationSpec:
    """The fork's mirror CronJob as Kopiur's: `sync-to` the S3 copy on the planned schedule,
    suspended as configured, `deleteExtra` (the CronJob's `--delete`: the copy stays exact, which
    is why no mover may write to it), as the repository's owner."""
    return RepositoryReplicationSpec(
        source_ref=RepositoryRef(kind="ClusterRepository", name=source),
        destination=Backend(s3=s3_backend(target, secret, namespace)),
        schedule=Cron(cron=schedule), suspend=suspend, sync=ReplicationSync(delete_extra=True),
        mover=Mover(pod_security_context=security_context_for(identity)),
    )


def _maintenance(namespace: str, schedule: str, identity: MoverIdentity) -> RepositoryMaintenance:
    """The fork's one (weekly) run is the full one; the quick one runs daily, twelve hours off it
    so the two never start together. `Force`: the same `up` deletes the fork's KopiaMaintenance,
    whose ownership of the repository's maintenance Kopiur would otherwise never take."""
    minute, hour, *_ = schedule.split()
    quick = f"{minute} {(int(hour) + 12) % 24} * * *" if hour.isdigit() else f"{minute} {hour} * * *"
    return RepositoryMaintenance(
        enabled=True, namespace=namespace,
        schedule=MaintenanceSchedule(quick=Cron(cron=quick), full=Cron(cron=schedule)),
        takeover_policy="Force",
        mover=Mover(pod_security_context=security_context_for(identity)),
    )
