"""The plan of one database's pgBackRest backup: schedules, retention limits, a recovery, and
every object of it, named (see `tree.Node`).

Plain data: no Pulumi here. `postgres.py` maps a DatabasePlan to resources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Optional

from backup_contract import AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY

from . import names, tree
from .config import Database, Repository, StackConfig
from .keypath import KeyPath
from .pgbackrest import (
    ACCESS_KEY,
    ENCRYPTION_KEY,
    SECRET_KEY,
    CipherConfig,
    RetentionPolicy,
    S3Repository,
    S3SecretRef,
    SecretKeyRef,
    StanzaConfiguration,
    StanzaSpec,
)
from .schedule import longest_gap_of, stable_hash
from .secret_values import SecretPlan, SecretValues, secret_kind, secret_values
from .tree import BucketPlan, Node


@dataclass(frozen=True)
class DatabaseTarget:
    """One repository of a database: pgBackRest's repo1, repo2, ... in config order."""

    repository: Repository
    full_schedule: str
    diff_schedule: str
    credentials: SecretPlan
    """The repository's S3 keys in the database's namespace, under the plugin's key names."""
    bucket: Optional[BucketPlan]
    full: Node
    diff: Node
    """The weekly full and the daily differential ScheduledBackup."""

    def scheduled(self) -> tuple[tuple[str, str, Node], ...]:
        """(backup type, 6-field cron, ScheduledBackup) of each of the two."""
        return ("full", self.full_schedule, self.full), ("diff", self.diff_schedule, self.diff)


@dataclass(frozen=True)
class RepositoryLimits:
    number: int
    """pgBackRest's repository number (its place in the Stanza)."""
    name: str
    """The config's repository name, for the message."""
    full: timedelta
    """The newest full backup may be this old."""
    any: timedelta
    """The newest backup of any type may be this old."""


@dataclass(frozen=True)
class DatabaseCheckPlan:
    component: Node
    cronjob: Node
    schedule: str
    """When the backup check runs: daily, in the hour after the last repository's backups."""
    limits: tuple[RepositoryLimits, ...]
    image: str
    """`backups:defaults.pgbackrestImage`: pgBackRest, sh, awk and GNU date, user postgres (uid 26)."""


@dataclass(frozen=True)
class StanzaPlan:
    node: Node
    spec: StanzaSpec


@dataclass(frozen=True)
class DatabaseRecoveryPlan:
    """`databases[N].recovery`: what the Cluster's `bootstrap.recovery` reads."""

    source: Database
    """The database whose stanza (bucket, path, credentials) the recovery reads."""
    stanza_ref: str
    """The Stanza object the Cluster's external cluster names: the source's, or with
    `repository` one of the recovery's own that holds only that repository."""
    only: Optional[Repository]
    target_time: Optional[str]
    stanza: Optional[StanzaPlan] = None
    """The recovery's own Stanza (with `repository`); None when it reads the source's."""


@dataclass(frozen=True)
class DatabasePlan:
    database: Database
    key: str
    """Its config key path, `backups:databases[N]`, for messages."""
    component: Node
    stanza_lock: Node
    stanza: StanzaPlan
    plugin_config: Node
    cluster_name: str
    """The CloudNative-PG Cluster the backups are of (made here with `manageCluster`, or not)."""
    cluster: Optional[Node]
    """The CloudNative-PG Cluster, with `manageCluster`."""
    check: DatabaseCheckPlan
    recovery: Optional[DatabaseRecoveryPlan]
    encryption: Optional[SecretPlan]
    targets: tuple[DatabaseTarget, ...]
    """In the order of `database.repositories`: pgBackRest numbers them repo1, repo2, ..."""
    wal_spool_class: str
    cluster_storage_class: str


#: Seed 002's B2 at 03:00: the first repository's backups start in this hour, the next one's after.
FIRST_BACKUP_HOUR = 3
#: A late backup is not an incident: the schedule's longest gap plus this.
BACKUP_SLACK = timedelta(hours=6)


def default_database_schedules(db: Database, position: int) -> tuple[str, str]:
    """(full, diff) 6-field crons for the repository at `position`: in the hour from 03:00, 04:00,
    ..., at a minute of the cluster's own, so that clusters sharing a store do not all start at
    once. The minute is a hash of the cluster and repository, not an allocation: adding a cluster
    moves no other cluster's backups (nothing to pin)."""
    hour = (FIRST_BACKUP_HOUR + position) % 24
    minute = stable_hash("database", db.namespace, db.name, db.repositories[position]) % 60
    return f"0 {minute} {hour} * * 0", f"0 {minute} {hour} * * 1-6"


class _Nodes:
    """The nodes of one database's component, named `<namespace>-<database>-<suffix>`."""

    def __init__(self, db: Database, path: KeyPath) -> None:
        self.db, self.path = db, path
        self.component = names.database_component(db.namespace, db.name)

    def __call__(self, suffix: tuple[str, ...], kind: str, path: Optional[KeyPath] = None, name: str = "",
                 object_kind: str = "", limit: int = names.SUBDOMAIN, name_path: Optional[KeyPath] = None) -> Node:
        return Node(names.child(self.component, *suffix), kind, tree.DATABASE, path or self.path, name,
                    self.db.namespace if name else "", object_kind, limit, name_path)


def database_plan(config: StackConfig, db: Database, index: int, bucket_provider_of: Callable[[Repository], str]
                  ) -> DatabasePlan:
    node = _Nodes(db, ("databases", index, "name"))
    targets = tuple(_target(db, index, position, config.repository(ref), node, bucket_provider_of)
                    for position, ref in enumerate(db.repositories))
    return DatabasePlan(
        database=db, key=f"backups:databases[{index}]",
        component=Node(node.component, "PgBackRestClusterBackup", tree.STACK, node.path),
        stanza_lock=node(("stanza-lock",), "Resource"),
        stanza=StanzaPlan(node(("stanza",), "Stanza", name=db.name), stanza_spec(db, tuple(t.repository for t in targets))),
        plugin_config=node(("plugin-config",), "PluginConfig", name=names.plugin_config(db.name)),
        cluster_name=db.name,
        cluster=node(("cluster",), "Cluster", name=db.name, limit=names.CNPG_CLUSTER) if db.manage_cluster else None,
        check=DatabaseCheckPlan(
            component=node(("check",), "PgBackRestCheck"),
            cronjob=Node(names.child(node.component, "check", "cronjob"), "CronJob", tree.DATABASE_CHECK, node.path,
                         names.pgbackrest_check(db.name), db.namespace, limit=names.CRONJOB),
            schedule=_check_schedule(db),
            limits=tuple(_limits(n, t) for n, t in enumerate(targets, start=1)),
            image=config.defaults.pgbackrest_image,
        ),
        recovery=_recovery_plan(config, db, index, node),
        encryption=SecretPlan(
            node(("encryption",), secret_kind(db.encryption.passphrase), name=names.pgbackrest_encryption(db.name),
                 object_kind="Secret", name_path=("databases", index, "encryption")),
            secret_values({ENCRYPTION_KEY: db.encryption.passphrase})) if db.encryption else None,
        targets=targets,
        wal_spool_class=db.wal_spool.storage_class or config.defaults.storage_class,
        cluster_storage_class=config.defaults.storage_class,
    )


def _target(db: Database, index: int, position: int, repo: Repository, node: _Nodes,
            bucket_provider_of: Callable[[Repository], str]) -> DatabaseTarget:
    full, diff = default_database_schedules(db, position)
    path: KeyPath = ("databases", index, "repositories", position)
    # CloudNative-PG labels each Backup with its ScheduledBackup's name: a label value.
    scheduled = {kind: node((repo.name, kind), "ScheduledBackup", path, names.scheduled_backup(db.name, repo.name, kind),
                            limit=names.LABEL) for kind in ("full", "diff")}
    return DatabaseTarget(
        repository=repo,
        full_schedule=db.schedule.full[position] if db.schedule.full else full,
        diff_schedule=db.schedule.diff[position] if db.schedule.diff else diff,
        credentials=SecretPlan(
            node((repo.name, "credentials"), "ExternalSecret" if repo.externally_held else "Secret", path,
                 names.pgbackrest_credentials(db.name, repo.name), object_kind="Secret"),
            _credentials(repo)),
        bucket=BucketPlan(node((repo.name, "bucket"), "Bucket", path), db.bucket_name, bucket_provider_of(repo))
        if repo.manage_bucket else None,
        full=scheduled["full"],
        diff=scheduled["diff"],
    )


def _credentials(repo: Repository) -> SecretValues:
    """The repository's S3 keys under the plugin's key names: from config, or from the same store
    item the Kopia repository reads them from, under the same field names."""
    credentials = repo.credentials
    assert credentials is not None
    if credentials.external_secret is not None:
        ref = credentials.external_secret
        return SecretValues(external={ACCESS_KEY: ref.model_copy(update={"property": AWS_ACCESS_KEY_ID}),
                                      SECRET_KEY: ref.model_copy(update={"property": AWS_SECRET_ACCESS_KEY})})
    assert credentials.access_key_id is not None and credentials.secret_access_key is not None
    return SecretValues(secret={ACCESS_KEY: credentials.access_key_id, SECRET_KEY: credentials.secret_access_key})


def _limits(number: int, target: DatabaseTarget) -> RepositoryLimits:
    # CloudNative-PG's crons lead with seconds; the gap is the same without them.
    full, diff = (" ".join(c.split()[1:]) for c in (target.full_schedule, target.diff_schedule))
    return RepositoryLimits(number=number, name=target.repository.name,
                            full=longest_gap_of((full,)) + BACKUP_SLACK, any=longest_gap_of((full, diff)) + BACKUP_SLACK)


def _check_schedule(db: Database) -> str:
    """Daily, in the hour after the default backup hour of the last repository."""
    minute = stable_hash("database-check", db.namespace, db.name) % 60
    return f"{minute} {(FIRST_BACKUP_HOUR + len(db.repositories)) % 24} * * *"


def _recovery_plan(config: StackConfig, db: Database, index: int, node: _Nodes) -> Optional[DatabaseRecoveryPlan]:
    recovery = db.recovery
    if recovery is None:
        return None
    source = config.recovery_source(db)
    assert source is not None  # database_recoveries_read_what_exists refused it otherwise
    only = config.repository(recovery.repository) if recovery.repository is not None else None
    stanza_ref = names.recovery_stanza(db.name) if only else source.name
    return DatabaseRecoveryPlan(
        source=source, stanza_ref=stanza_ref, only=only,
        target_time=postgres_time(recovery.restore_as_of) if recovery.restore_as_of else None,
        stanza=StanzaPlan(node(("recovery-stanza",), "Stanza", ("databases", index, "recovery", "repository"), stanza_ref),
                          stanza_spec(source, (only,))) if only else None,
    )


def postgres_time(rfc3339: str) -> str:
    """`restoreAsOf` as the plugin must pass it on: the plugin hands `targetTime` to pgBackRest
    verbatim, and pgBackRest refuses RFC 3339 ('time format must be YYYY-MM-DD HH:MM:SS'), so the
    Cluster gets PostgreSQL's spelling in UTC, which CloudNative-PG's webhook also takes."""
    moment = datetime.fromisoformat(rfc3339).astimezone(UTC)  # already `...Z` (fields.Rfc3339)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + fraction + "+00"


def stanza_spec(source: Database, repositories: tuple[Repository, ...]) -> StanzaSpec:
    """`source`'s stanza in `repositories` (pgBackRest's repo1, repo2, ... in this order)."""
    entries = tuple(_s3_entry(source, repo) for repo in repositories)
    # The plugin drops `retentionPolicy.history` (its field is tagged `ENV:` instead of `env:`),
    # so the seed's "30 days of history" reaches pgBackRest only as its own variable.
    history = {f"PGBACKREST_REPO{n}_RETENTION_HISTORY": str(source.retention.history_days)
               for n in range(1, len(entries) + 1)}
    return StanzaSpec(stanza_configuration=StanzaConfiguration(
        name=source.stanza_name, s3_repositories=entries, custom_env_var=history,
    ))


def _s3_entry(db: Database, repo: Repository) -> S3Repository:
    """`db`'s stanza in `repo`, as the plugin's `s3Repositories` entry: bucket, path, retention,
    and the Secrets the database's component renders for its credentials and passphrase."""
    s3 = repo.s3
    assert s3 is not None and repo.region is not None
    secret_name, retention = names.pgbackrest_credentials(db.name, repo.name), db.retention
    return S3Repository(
        bucket=db.bucket_name,
        endpoint=s3.host,
        region=repo.region,
        repo_path=f"/{db.name}",
        # Garage (and most self-hosted stores) only serve path-style URLs.
        uri_style="path" if repo.backend == "garage" else "host",
        verify_tls=True,
        retention_policy=RetentionPolicy(
            full=retention.full,
            diff=retention.diff,
            archive=retention.wal_days,
            archive_type="diff",
            history=retention.history_days,
        ),
        secret_ref=S3SecretRef(
            access_key_id=SecretKeyRef(name=secret_name, key=ACCESS_KEY),
            secret_access_key=SecretKeyRef(name=secret_name, key=SECRET_KEY),
        ),
        cipher_config=(
            CipherConfig(encryption_pass=SecretKeyRef(name=names.pgbackrest_encryption(db.name), key=ENCRYPTION_KEY))
            if db.encryption else None
        ),
    )
