"""What the program decides before any resource exists: a plain module, no Pulumi, no mocks.

From a validated StackConfig it decides which repositories each app writes to and restores
from, every scheduled job (typed by kind, never by a marker string in a name slot) and its
concrete schedule, each restore request, the alert windows, and every name; then checks every
name for collisions and limits (`names.NameBook`). `BackupStack` maps a plan to components,
and the tools (`pin_schedules`, the preview's notes) read the plan, not the components.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Optional

from . import names
from .config import (
    App,
    AppVolume,
    ConfigError,
    Database,
    ExternalSecretSource,
    MoverIdentity,
    Repository,
    Retention,
    StackConfig,
)
from .keypath import KeyPath, format_path
from .names import JobKey, JobKind, NameBook, Role
from .schedule import PRESETS, ScheduledJob, longest_gap_of, plan_schedules, stable_hash


@dataclass(frozen=True)
class SourcePlan:
    """One ReplicationSource: an app's backup to one repository."""

    repository: str
    name: str
    """ReplicationSource name."""
    username: str
    hostname: str
    """The Kopia identity its snapshots carry: the app's, the same in every repository."""
    now_name: str
    """The name of the extra, manually triggered source that `backupNow` makes."""
    schedule: str
    """Concrete 5-field cron (already spread)."""
    retain: Retention
    mover: MoverIdentity
    """Who its movers run as: see `mover_identity`."""


@dataclass(frozen=True)
class PointPlan:
    """Which snapshot of which history, in which repository."""

    repository: str
    username: str
    hostname: str
    previous: Optional[int] = None
    restore_as_of: Optional[str] = None
    """UTC, `...Z`: the mover compares it as a string with Kopia's times."""

    @property
    def identity(self) -> str:
        return names.identity(self.username, self.hostname)


@dataclass(frozen=True)
class RestorePlan(PointPlan):
    """A restore asked for in config, into the app's live claim."""

    trigger: str = ""
    """A manual trigger unique to this request: a new request runs once, an unchanged one never again."""


@dataclass(frozen=True)
class AppPlan:
    app: App
    volume: AppVolume
    component: str
    """The Pulumi name of the app's component."""
    sources: tuple[SourcePlan, ...]
    """One per repository the app backs up to, in config order."""
    bootstrap: str
    """The repository the first restore (and the drill) reads from."""
    restore: Optional[RestorePlan]
    drill_schedule: Optional[str]
    first_fill: Optional[PointPlan] = None
    """What fills the claim when it is made: the app's own history in `bootstrap` at its latest
    snapshot, or what `backups:recoveries` says for its namespace. None for an existing claim."""
    generation: str = ""
    """"" for the claim as first made, else the `recreateClaim` generation (names.claim_generation)."""
    readable: tuple[str, ...] = ()
    """Repositories a restore of the app may read: its own and their mirror copies."""

    @property
    def managed_claim(self) -> bool:
        return self.app.existing_claim is None

    def source(self, repository: str) -> SourcePlan:
        return next(s for s in self.sources if s.repository == repository)


@dataclass(frozen=True)
class RepositoryPlan:
    repository: Repository
    namespaces: tuple[str, ...]
    """Namespaces with apps writing to it: each gets the repository Secret."""
    maintained: bool
    """False for a mirror copy: its blobs come from the source, whose maintenance shapes them."""
    maintenance_schedule: str
    mirror_schedule: Optional[str]
    check_schedule: str = ""
    """When the snapshot check runs; "" for a mirror copy (no mover writes it)."""
    expected_identities: tuple[str, ...] = ()
    """`user@host:/data` of every identity a restore from this repository may read."""

    @property
    def has_check(self) -> bool:
        return bool(self.check_schedule and self.expected_identities)


@dataclass(frozen=True)
class DatabaseTarget:
    repository: Repository
    full_schedule: str
    diff_schedule: str


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
class DatabaseRecoveryPlan:
    """`databases[N].recovery`: what the Cluster's `bootstrap.recovery` reads."""

    source: Database
    """The database whose stanza (bucket, path, credentials) the recovery reads."""
    stanza_ref: str
    """The Stanza object the Cluster's external cluster names: the source's, or with
    `repository` one of the recovery's own that holds only that repository."""
    only: Optional[Repository]
    target_time: Optional[str]


@dataclass(frozen=True)
class DatabasePlan:
    database: Database
    key: str
    """Its config key path, `backups:databases[N]`, for messages."""
    component: str
    targets: tuple[DatabaseTarget, ...]
    """In the order of `database.repositories`: pgBackRest numbers them repo1, repo2, ..."""
    recovery: Optional[DatabaseRecoveryPlan] = None
    check_schedule: str = ""
    """When the backup check runs: daily, in the hour after the last repository's backups."""
    check_limits: tuple[RepositoryLimits, ...] = ()


@dataclass(frozen=True)
class StaleWindowPlan:
    repository: str
    alert: str
    crons: tuple[str, ...]
    """Every concrete schedule of the repository's sources (apps may override)."""
    sources: tuple[str, ...]
    """The exact ReplicationSource names writing to it (a suffix match would also take
    `radarr-b-nas`, app `radarr` writing to repository `b-nas`, for repository `nas`)."""


@dataclass(frozen=True)
class AlertPlan:
    repositories: tuple[StaleWindowPlan, ...]
    maintenance_crons: tuple[str, ...]
    drill_crons: tuple[str, ...]
    web_uis: tuple[str, ...] = ()
    """Deployment names of the enabled Kopia web UIs."""
    snapshot_checks: bool = False
    """Whether any repository has a snapshot check (KopiaSnapshotsMissing)."""
    databases: tuple[tuple[str, str], ...] = ()
    """(namespace, name) of every database cluster, for the WAL archiving alert."""


@dataclass(frozen=True)
class StackPlan:
    config: StackConfig
    jobs: tuple[ScheduledJob, ...]
    schedules: dict[JobKey, str]
    repositories: tuple[RepositoryPlan, ...]
    apps: tuple[AppPlan, ...]
    databases: tuple[DatabasePlan, ...]
    alerts: AlertPlan
    names: NameBook
    """Every name the program generates, by domain (read by tests; collisions already refused)."""


def plan_stack(config: StackConfig) -> StackPlan:
    """The plan for `config`. Raises ConfigError when two generated names collide or a name is
    over its limit, naming the config keys they come from."""
    jobs = tuple(scheduled_jobs(config))
    schedules = plan_schedules(jobs, config.defaults.window, config.pins)
    apps = tuple(_app_plan(config, app, schedules) for app in config.apps)
    repositories = tuple(_repository_plan(config, repo, schedules, apps) for repo in config.repositories)
    plan = StackPlan(
        config=config,
        jobs=jobs,
        schedules=schedules,
        repositories=repositories,
        apps=apps,
        databases=tuple(_database_plan(config, db, index) for index, db in enumerate(config.databases)),
        alerts=_alert_plan(config, apps, schedules, repositories),
        names=NameBook(),
    )
    _take_names(plan)
    if plan.names.problems:
        raise ConfigError([f"{format_path(path)}: {message}" for path, message in plan.names.problems])
    return plan


def scheduled_jobs(config: StackConfig) -> list[ScheduledJob]:
    """Every scheduled job in config order: apps x their repositories, then each repository's
    maintenance, mirror and snapshot check, then the restore drills."""
    jobs = [
        ScheduledJob(JobKey(JobKind.BACKUP, app.namespace, app.name, repo.name), app.schedule or repo.schedule)
        for app in config.apps
        for repo in config.repositories_of(app)
    ]
    jobs += [
        ScheduledJob(_maintenance_key(repo), repo.maintenance.schedule)
        for repo in config.repositories
        if repo.name not in config.mirror_targets
    ]
    jobs += [
        ScheduledJob(_mirror_key(repo), repo.mirror.schedule)
        for repo in config.repositories
        if repo.mirror_to
    ]
    jobs += [
        ScheduledJob(_check_key(repo), "daily")
        for repo in config.repositories
        if repo.name not in config.mirror_targets and config.namespaces_of(repo)  # something to check
    ]
    jobs += [
        ScheduledJob(JobKey(JobKind.DRILL, app.namespace, app.name), config.drills.schedule)
        for app in config.apps
        if config.drills.covers(app.name)
    ]
    return jobs


def preset_jobs(plan: StackPlan) -> list[ScheduledJob]:
    """The jobs whose schedule is a preset: the ones `backups:schedulePins` keeps in place."""
    return [job for job in plan.jobs if job.spec in PRESETS]


def volume_of(config: StackConfig, app: App) -> AppVolume:
    """The app's volume with every default applied."""
    d = config.defaults
    return AppVolume(
        claim_name=app.existing_claim or names.claim(app.name, app.claim_name),
        capacity=app.capacity or d.capacity,
        storage_class=app.storage_class or d.storage_class,
        snapshot_class=app.snapshot_class or d.snapshot_class,
        access_modes=app.access_modes or d.access_modes,
        mover=MoverIdentity(
            run_as_user=_first(app.run_as_user, d.mover.run_as_user),
            run_as_group=_first(app.run_as_group, d.mover.run_as_group),
            fs_group=_first(app.fs_group, d.mover.fs_group),
        ),
    )


# --------------------------------------------------------------------------- pieces


def mover_identity(config: StackConfig, volume: AppVolume, repo: Repository) -> MoverIdentity:
    """Who an app's movers for `repo` run as.

    Kopia's filesystem backend writes every file 0600 and directory 0700, owned by the writer, and
    every mover and the maintenance Job of a repository must read all of it. So movers of a
    filesystem repository run as the repository's uid (`defaults.mover.runAsUser`, which the
    KopiaMaintenance runs as too) and read the app's data through its group: the app's gid and
    fsGroup, which kubelet applies to the volume (group read/write, setgid directories). An S3
    repository has no files to share, so its movers keep the app's own uid.
    """
    if not repo.is_filesystem:
        return volume.mover
    return volume.mover.model_copy(update={"run_as_user": config.defaults.mover.run_as_user})


def _maintenance_key(repo: Repository) -> JobKey:
    return JobKey(JobKind.MAINTENANCE, repo.maintenance.namespace, repo.name, repo.name)


def _mirror_key(repo: Repository) -> JobKey:
    return JobKey(JobKind.MIRROR, repo.maintenance.namespace, repo.name, repo.name)


def _check_key(repo: Repository) -> JobKey:
    return JobKey(JobKind.CHECK, repo.maintenance.namespace, repo.name, repo.name)


def _first(value: Optional[int], default: int) -> int:
    return default if value is None else value  # 0 (root) is a real uid, not "unset"


def _app_plan(config: StackConfig, app: App, schedules: dict[JobKey, str]) -> AppPlan:
    volume = volume_of(config, app)
    username, hostname = app.kopia_identity
    sources = tuple(
        SourcePlan(
            repository=repo.name,
            name=names.replication_source(app.name, repo.name),
            username=username,
            hostname=hostname,
            now_name=names.backup_now_source(app.name, repo.name),
            schedule=schedules[JobKey(JobKind.BACKUP, app.namespace, app.name, repo.name)],
            retain=repo.retain,
            mover=mover_identity(config, volume, repo),
        )
        for repo in config.repositories_of(app)
    )
    bootstrap = config.bootstrap_repository(app).name
    return AppPlan(
        app=app,
        volume=volume,
        component=names.app_component(app.namespace, app.name),
        sources=sources,
        bootstrap=bootstrap,
        restore=_restore_plan(config, app, bootstrap),
        drill_schedule=schedules.get(JobKey(JobKind.DRILL, app.namespace, app.name)),
        first_fill=_first_fill(config, app, bootstrap) if app.existing_claim is None else None,
        generation=names.claim_generation(app.recreate_claim),
        readable=tuple(r.name for r in config.readable_repositories(app)),
    )


def _first_fill(config: StackConfig, app: App, bootstrap: str) -> PointPlan:
    """The app's own history, latest snapshot, from its bootstrap repository, unless
    `backups:recoveries` names another repository or point for the app's namespace."""
    username, hostname = app.kopia_identity
    recovery = config.recovery_of(app)
    if recovery is None:
        return PointPlan(repository=bootstrap, username=username, hostname=hostname)
    return PointPlan(
        repository=recovery.repository or bootstrap, username=username, hostname=hostname,
        previous=recovery.previous, restore_as_of=recovery.restore_as_of,
    )


def _restore_plan(config: StackConfig, app: App, bootstrap: str) -> Optional[RestorePlan]:
    restore = app.restore
    if restore is None:
        return None
    repository = restore.repository or bootstrap
    if restore.identity is not None:
        username, _, hostname = restore.identity.partition("@")
    elif restore.from_ is not None:
        origin = restore.from_
        other = next((a for a in config.apps if (a.namespace, a.name) == (origin.namespace, origin.app)), None)
        # An app still in the config has its own (maybe overridden) identity; a removed one
        # had the default.
        username, hostname = other.kopia_identity if other else (origin.app, origin.namespace)
    else:
        username, hostname = app.kopia_identity
    return RestorePlan(
        repository=repository, username=username, hostname=hostname,
        previous=restore.previous, restore_as_of=restore.restore_as_of,
        trigger=f"restore-{_request_digest(app, repository):08x}",
    )


def _request_digest(app: App, repository: str) -> int:
    """The trigger names this exact request, so editing it (a new `previous`, another time)
    runs a new restore and re-applying an unchanged config never restores twice. The text
    hashed is the one earlier versions hashed (pydantic's JSON of the request, fields in this
    order), so upgrading the program does not restore an unchanged request again."""
    restore = app.restore
    assert restore is not None
    fields: dict[str, object] = {
        "previous": restore.previous,
        "restore_as_of": restore.restore_as_of,
        "from_": restore.from_.model_dump() if restore.from_ else None,
        "repository": restore.repository,
    }
    if restore.identity is not None:
        fields["identity"] = restore.identity
    return stable_hash(json.dumps(fields, separators=(",", ":")), repository) % 16**8


def _repository_plan(config: StackConfig, repo: Repository, schedules: dict[JobKey, str],
                     apps: tuple[AppPlan, ...]) -> RepositoryPlan:
    maintained = repo.name not in config.mirror_targets
    expected = [names.identity(s.username, s.hostname) for ap in apps for s in ap.sources if s.repository == repo.name]
    expected += [p.identity for ap in apps for p in (ap.restore, ap.first_fill)
                 if p is not None and p.repository == repo.name]
    return RepositoryPlan(
        repository=repo,
        namespaces=config.namespaces_of(repo),
        maintained=maintained,
        maintenance_schedule=schedules[_maintenance_key(repo)] if maintained else "",
        mirror_schedule=schedules[_mirror_key(repo)] if repo.mirror_to else None,
        check_schedule=schedules.get(_check_key(repo), ""),
        expected_identities=tuple(dict.fromkeys(expected)),
    )


#: Seed 002's B2 at 03:00: the first repository's backups start in this hour, the next one's after.
FIRST_BACKUP_HOUR = 3


def default_database_schedules(db: Database, position: int) -> tuple[str, str]:
    """(full, diff) 6-field crons for the repository at `position`: in the hour from 03:00, 04:00,
    ..., at a minute of the cluster's own, so that clusters sharing a store do not all start at
    once. The minute is a hash of the cluster and repository, not an allocation: adding a cluster
    moves no other cluster's backups (nothing to pin)."""
    hour = (FIRST_BACKUP_HOUR + position) % 24
    minute = stable_hash("database", db.namespace, db.name, db.repositories[position]) % 60
    return f"0 {minute} {hour} * * 0", f"0 {minute} {hour} * * 1-6"


def _database_plan(config: StackConfig, db: Database, index: int) -> DatabasePlan:
    targets = []
    for position, ref in enumerate(db.repositories):
        full, diff = default_database_schedules(db, position)
        targets.append(DatabaseTarget(
            repository=config.repository(ref),
            full_schedule=db.schedule.full[position] if db.schedule.full else full,
            diff_schedule=db.schedule.diff[position] if db.schedule.diff else diff,
        ))
    return DatabasePlan(database=db, key=f"backups:databases[{index}]",
                        component=names.database_component(db.namespace, db.name), targets=tuple(targets),
                        recovery=_recovery_plan(config, db), check_schedule=_check_schedule(db),
                        check_limits=tuple(_limits(n, t) for n, t in enumerate(targets, start=1)))


#: A late backup is not an incident: the schedule's longest gap plus this.
BACKUP_SLACK = timedelta(hours=6)


def _limits(number: int, target: DatabaseTarget) -> RepositoryLimits:
    # CloudNative-PG's crons lead with seconds; the gap is the same without them.
    full, diff = (" ".join(c.split()[1:]) for c in (target.full_schedule, target.diff_schedule))
    return RepositoryLimits(number=number, name=target.repository.name,
                            full=longest_gap_of((full,)) + BACKUP_SLACK, any=longest_gap_of((full, diff)) + BACKUP_SLACK)


def _check_schedule(db: Database) -> str:
    """Daily, in the hour after the default backup hour of the last repository."""
    minute = stable_hash("database-check", db.namespace, db.name) % 60
    return f"{minute} {(FIRST_BACKUP_HOUR + len(db.repositories)) % 24} * * *"


def _recovery_plan(config: StackConfig, db: Database) -> Optional[DatabaseRecoveryPlan]:
    recovery = db.recovery
    if recovery is None:
        return None
    source = config.recovery_source(db)
    assert source is not None  # database_recoveries_read_what_exists refused it otherwise
    only = config.repository(recovery.repository) if recovery.repository is not None else None
    return DatabaseRecoveryPlan(
        source=source, stanza_ref=names.recovery_stanza(db.name) if only else source.name, only=only,
        target_time=postgres_time(recovery.restore_as_of) if recovery.restore_as_of else None,
    )


def postgres_time(rfc3339: str) -> str:
    """`restoreAsOf` as the plugin must pass it on: the plugin hands `targetTime` to pgBackRest
    verbatim, and pgBackRest refuses RFC 3339 ('time format must be YYYY-MM-DD HH:MM:SS'), so the
    Cluster gets PostgreSQL's spelling in UTC, which CloudNative-PG's webhook also takes."""
    moment = datetime.fromisoformat(rfc3339).astimezone(UTC)  # already `...Z` (fields.Rfc3339)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + fraction + "+00"


def _alert_plan(config: StackConfig, apps: tuple[AppPlan, ...], schedules: dict[JobKey, str],
                repositories: tuple[RepositoryPlan, ...]) -> AlertPlan:
    windows = []
    for repo in config.repositories:
        sources = [(s, a) for a in apps for s in a.sources if s.repository == repo.name]
        if sources:
            windows.append(StaleWindowPlan(
                repository=repo.name,
                alert=names.stale_alert(repo.name),
                crons=tuple(sorted({s.schedule for s, _ in sources})),
                sources=tuple(sorted({s.name for s, _ in sources})),
            ))
    return AlertPlan(
        repositories=tuple(windows),
        maintenance_crons=tuple(
            schedules[_maintenance_key(r)] for r in config.repositories if r.name not in config.mirror_targets
        ),
        drill_crons=tuple(sorted({cron for key, cron in schedules.items() if key.kind is JobKind.DRILL})),
        web_uis=tuple(names.web_ui(r.name) for r in config.repositories if r.ui.enabled),
        snapshot_checks=any(rp.has_check for rp in repositories),
        databases=tuple((db.namespace, db.name) for db in config.databases),
    )


# --------------------------------------------------------------------------- every name, checked

#: Pulumi type tokens of the components (a child's URN is unique per parent type, kind, name).
STACK, REPOSITORY, WEB_UI, MIRROR, CHECK, APP, DATABASE, DATABASE_CHECK, ADMISSION, ALERTS = (
    "backups:stack:BackupStack", "backups:kopia:SharedKopiaRepository", "backups:kopia:KopiaWebUi",
    "backups:kopia:RepositoryMirror", "backups:kopia:SnapshotCheck", "backups:app:BackupEnabledApp",
    "backups:postgres:PgBackRestClusterBackup", "backups:postgres:PgBackRestCheck",
    "backups:admission:AdmissionGuardrails", "backups:monitoring:BackupAlerts",
)


def _take_names(plan: StackPlan) -> None:
    """Hand every generated name to the plan's NameBook with the key it comes from and its limit.

    Domains: `("k8s", kind, namespace)` for Kubernetes objects (namespace "" when cluster-scoped)
    and `("pulumi", parent type, kind)` for Pulumi resource names.
    """
    book, config = plan.names, plan.config

    def k8s(kind: str, namespace: str, name: str, limit: int, path: KeyPath) -> None:
        book.take(("k8s", kind, namespace), name, limit, path, f"{kind}")

    def pulumi(parent: str, kind: str, name: str, path: KeyPath) -> None:
        book.take(("pulumi", parent, kind), name, names.SUBDOMAIN * 4, path, f"Pulumi {kind} resource")

    pulumi(STACK, "Resource", "history", ("apps",))  # the history lock (history_lock.py)
    for index, rp in enumerate(plan.repositories):
        repo, path = rp.repository, ("repositories", index, "name")
        maintenance_ns = repo.maintenance.namespace
        secret_kind = "ExternalSecret" if _external(config, repo) else "Secret"
        pulumi(STACK, "SharedKopiaRepository", repo.name, path)
        for namespace in dict.fromkeys((*rp.namespaces, maintenance_ns)):
            k8s("Secret", namespace, names.repository_secret(repo.name), names.SUBDOMAIN, path)
            pulumi(REPOSITORY, secret_kind, names.child(repo.name, namespace), path)
            if repo.cephfs is not None:
                k8s("PersistentVolumeClaim", namespace, names.cephfs_claim(repo.name), names.SUBDOMAIN, path)
                k8s("PersistentVolume", "", names.cephfs_volume(repo.name, namespace), names.SUBDOMAIN, path)
                pulumi(REPOSITORY, "PersistentVolume", names.child(repo.name, namespace, "volume"), path)
                pulumi(REPOSITORY, "PersistentVolumeClaim", names.child(repo.name, namespace, "claim"), path)
        if rp.maintained:
            k8s("KopiaMaintenance", maintenance_ns, names.kopia_maintenance(repo.name), names.LABEL, path)
            pulumi(REPOSITORY, "KopiaMaintenance", names.child(repo.name, "maintenance"), path)
        if repo.s3 is not None and repo.manage_bucket:
            pulumi(REPOSITORY, "Bucket", names.child(repo.name, "bucket"), path)
        if repo.ui.enabled:
            ui = names.web_ui(repo.name)
            k8s("Service", maintenance_ns, ui, names.LABEL, path)
            k8s("Deployment", maintenance_ns, ui, names.LABEL, path)
            k8s("Secret", maintenance_ns, ui, names.SUBDOMAIN, path)
            component = names.child(repo.name, "ui")
            pulumi(STACK, "KopiaWebUi", component, path)
            pulumi(WEB_UI, "Deployment", names.child(component, "deployment"), path)
            pulumi(WEB_UI, "Service", names.child(component, "service"), path)
            pulumi(WEB_UI, _secret_kind_of(repo.ui.password), names.child(component, "login"), path)
            if repo.ui.ingress is not None:
                k8s("Ingress", maintenance_ns, ui, names.SUBDOMAIN, path)
                pulumi(WEB_UI, "Ingress", names.child(component, "ingress"), path)
        if rp.has_check:
            k8s("CronJob", maintenance_ns, names.snapshot_check(repo.name), names.CRONJOB, path)
            component = names.child(repo.name, "check")
            pulumi(STACK, "SnapshotCheck", component, path)
            pulumi(CHECK, "CronJob", names.child(component, "cronjob"), path)
        if repo.mirror_to:
            mirror_path = ("repositories", index, "mirrorTo")
            k8s("CronJob", maintenance_ns, names.mirror_cronjob(repo.name, repo.mirror_to), names.CRONJOB, mirror_path)
            component = names.child(repo.name, "mirror")
            pulumi(STACK, "RepositoryMirror", component, mirror_path)
            pulumi(MIRROR, "CronJob", names.child(component, "cronjob"), mirror_path)

    for index, ap in enumerate(plan.apps):
        app, path = ap.app, ("apps", index, "name")
        claim_key = "existingClaim" if app.existing_claim else "claimName" if app.claim_name else "name"
        claim_path = ("apps", index, claim_key) if claim_key != "name" else path
        # An existing claim is not made here, but two apps backing up one claim is still a mistake.
        k8s("PersistentVolumeClaim", app.namespace, ap.volume.claim_name, names.SUBDOMAIN, claim_path)
        pulumi(STACK, "BackupEnabledApp", ap.component, path)
        if ap.managed_claim:
            pulumi(APP, "PersistentVolumeClaim", claim_resource(ap), path)
        identity_path = ("apps", index, "identity") if app.identity else path
        for source in ap.sources:
            k8s("ReplicationSource", app.namespace, source.name, names.SOURCE, path)
            pulumi(APP, "ReplicationSource", names.child(ap.component, source.repository), path)
            where = config.repository(source.repository).place
            book.take(("identity", where), f"{source.username}@{source.hostname}", 317, identity_path,
                      f"Kopia identity (in repository {source.repository!r})")
            if app.backup_now:
                now_path = ("apps", index, "backupNow")
                k8s("ReplicationSource", app.namespace, source.now_name, names.SOURCE, now_path)
                pulumi(APP, "ReplicationSource", names.child(ap.component, source.repository, "now"), now_path)
        for name, resource in destinations(ap).values():
            k8s("ReplicationDestination", app.namespace, name, names.MOVER_OWNER, path)
            pulumi(APP, "ReplicationDestination", resource, path)

    for index, dp in enumerate(plan.databases):
        db, path = dp.database, ("databases", index, "name")
        c = dp.component
        pulumi(STACK, "PgBackRestClusterBackup", c, path)
        pulumi(DATABASE, "Resource", names.child(c, "stanza-lock"), path)
        k8s("Stanza", db.namespace, db.name, names.SUBDOMAIN, path)
        pulumi(DATABASE, "Stanza", names.child(c, "stanza"), path)
        k8s("PluginConfig", db.namespace, names.plugin_config(db.name), names.SUBDOMAIN, path)
        pulumi(DATABASE, "PluginConfig", names.child(c, "plugin-config"), path)
        if db.manage_cluster:
            k8s("Cluster", db.namespace, db.name, names.SUBDOMAIN, path)
            pulumi(DATABASE, "Cluster", names.child(c, "cluster"), path)
        k8s("CronJob", db.namespace, names.pgbackrest_check(db.name), names.CRONJOB, path)
        pulumi(DATABASE, "PgBackRestCheck", names.child(c, "check"), path)
        pulumi(DATABASE_CHECK, "CronJob", names.child(c, "check", "cronjob"), path)
        if dp.recovery is not None and dp.recovery.only is not None:
            recovery_path = ("databases", index, "recovery", "repository")
            k8s("Stanza", db.namespace, dp.recovery.stanza_ref, names.SUBDOMAIN, recovery_path)
            pulumi(DATABASE, "Stanza", names.child(c, "recovery-stanza"), recovery_path)
        if db.encryption is not None:
            k8s("Secret", db.namespace, names.pgbackrest_encryption(db.name), names.SUBDOMAIN, ("databases", index, "encryption"))
            pulumi(DATABASE, _secret_kind_of(db.encryption.passphrase), names.child(c, "encryption"), path)
        for j, target in enumerate(dp.targets):
            repo, repo_path = target.repository, ("databases", index, "repositories", j)
            k8s("Secret", db.namespace, names.pgbackrest_credentials(db.name, repo.name), names.SUBDOMAIN, repo_path)
            pulumi(DATABASE, "ExternalSecret" if repo.externally_held else "Secret",
                   names.child(c, repo.name, "credentials"), repo_path)
            if repo.manage_bucket:
                pulumi(DATABASE, "Bucket", names.child(c, repo.name, "bucket"), repo_path)
            for kind in ("full", "diff"):
                # CloudNative-PG labels each Backup with its ScheduledBackup's name: a label value.
                k8s("ScheduledBackup", db.namespace, names.scheduled_backup(db.name, repo.name, kind), names.LABEL, repo_path)
                pulumi(DATABASE, "ScheduledBackup", names.child(c, repo.name, kind), repo_path)

    for window in plan.alerts.repositories:
        index = next(i for i, r in enumerate(config.repositories) if r.name == window.repository)
        book.take(("alert",), window.alert, 200, ("repositories", index, "name"), "alert")


def claim_resource(ap: AppPlan) -> str:
    """The Pulumi name of a managed claim: a recreated claim is a new resource (the old one is
    retained, never patched to a smaller size)."""
    return names.child(ap.component, "volume", *_generation(ap))


def destinations(ap: AppPlan) -> dict[Role, tuple[str, str]]:
    """role -> (object name, Pulumi name) of each ReplicationDestination of an app; the
    component takes its names from here, as the NameBook does."""
    found = {}
    if ap.managed_claim:
        found[Role.BOOTSTRAP] = (names.destination(ap.app.name, Role.BOOTSTRAP, ap.generation),
                                 names.child(ap.component, Role.BOOTSTRAP.value, *_generation(ap)))
    for role, wanted in ((Role.RESTORE, ap.restore is not None), (Role.DRILL, ap.drill_schedule is not None)):
        if wanted:
            found[role] = (names.destination(ap.app.name, role), names.child(ap.component, role.value))
    return found


def _generation(ap: AppPlan) -> tuple[str, ...]:
    """The suffix of a recreated claim's Pulumi names: none for the claim as first made."""
    return (ap.generation,) if ap.generation else ()


def _external(config: StackConfig, repo: Repository) -> bool:
    return _secret_kind_of(config.password_of(repo)) == "ExternalSecret"


def _secret_kind_of(value: object) -> str:
    return "ExternalSecret" if isinstance(value, ExternalSecretSource) else "Secret"
