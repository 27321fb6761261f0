"""What the program decides before any resource exists: a plain module, no Pulumi, no mocks.

From a validated StackConfig it decides which repositories each app writes to and restores
from, every scheduled job (typed by kind, never by a marker string in a name slot) and its
concrete schedule, each restore request, how a mover reaches each repository, who it runs as,
the alert windows, and every resource: each sub-plan carries the `tree.Node`s of what its
component registers, named. The NameBook check walks those nodes, so it sees exactly what the
components make. `BackupStack` maps a plan to components, which read their names and inputs
from it and never the StackConfig (a sub-plan may carry the validated config model of its app,
repository or database, for the fields a component only passes through); the tools (`pin_schedules`, `snapshots`, the preview's notes) read
the plan too.

The mover's own objects come from its module (`volsync_plan.py`), a database's from
`database_plan.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from pydantic import SecretStr

from . import kopiur_plan, names, tree, volsync_plan
from .backends import UI_PASSWORD, UI_USERNAME, RepositoryAccess, access_of
from .config import (
    App,
    AppVolume,
    CacheSettings,
    ConfigError,
    MoverIdentity,
    Repository,
    Retention,
    StackConfig,
    UiIngress,
)
from .config.cron import PRESETS
from .config.stack import Mover
from .database_plan import DatabasePlan, database_plan
from .keypath import KeyPath, format_path
from .kopiur_plan import KopiurRepository
from .names import JobKey, JobKind, NameBook, job_of_pin
from .schedule import NightWindow, ScheduledJob, plan_schedules, stable_hash
from .secret_values import SecretPlan, secret_kind, secret_values
from .tree import BucketPlan, NameClaim, Node
from .volsync import MoverVolume
from .volsync_plan import Destinations


@dataclass(frozen=True)
class Reader:
    """What a mover needs to reach one repository from an app's namespace."""

    secret_name: str
    mover_volumes: tuple[MoverVolume, ...]
    mover: MoverIdentity
    """Who the mover runs as (`mover_identity`)."""


@dataclass(frozen=True)
class SourcePlan:
    """An app's backup to one repository."""

    repository: str
    place: str
    """Where the repository is (its normalised target): one history per identity there."""
    username: str
    hostname: str
    """The Kopia identity its snapshots carry: the app's, the same in every repository."""
    schedule: str
    """Concrete 5-field cron (already spread)."""
    retain: Retention
    node: Node
    """The mover's object that runs it (VolSync: a ReplicationSource)."""
    identity: NameClaim
    """Its history, `user@host`, which no other app may write in the same place."""
    now: Optional[Node] = None
    """`backupNow`'s extra one-off object, when asked for."""
    schedule_node: Optional[Node] = None
    """Kopiur's SnapshotSchedule beside its SnapshotPolicy (`node`); None for VolSync, whose
    ReplicationSource carries its own schedule."""

    @property
    def name(self) -> str:
        return self.node.name


@dataclass(frozen=True)
class PointPlan:
    """Which snapshot of which history, in which repository."""

    repository: str
    username: str
    hostname: str
    previous: Optional[int] = None
    restore_as_of: Optional[str] = None
    """UTC, `...Z`: the mover compares it as a string with Kopia's times."""
    required: bool = False
    """Asked for in config (`backups:recoveries`): a missing snapshot is an error, not a fresh start."""

    @property
    def identity(self) -> str:
        return names.identity(self.username, self.hostname)


@dataclass(frozen=True)
class RestorePlan(PointPlan):
    """A restore asked for in config, into the app's live claim."""

    request: str = ""
    """Eight hex digits naming this exact request (`_request_digest`): a new request runs once,
    an unchanged one never again."""

    @property
    def trigger(self) -> str:
        """VolSync's manual trigger for it."""
        return f"restore-{self.request}"


@dataclass(frozen=True)
class AppPlan:
    mover: Mover
    """`backups:mover`: which module makes the objects (`volsync_mover`, `kopiur_mover`)."""
    app: App
    volume: AppVolume
    component: Node
    claim: Node
    """The app's PVC; `resource` is "" for an `existingClaim` (named, never made here)."""
    sources: tuple[SourcePlan, ...]
    """One per repository the app backs up to, in config order."""
    bootstrap: str
    """The repository the first restore (and the drill) reads from."""
    restore: Optional[RestorePlan]
    drill_schedule: Optional[str]
    destinations: Destinations
    readers: Mapping[str, Reader]
    """Every repository a restore of the app may read, by name: its own (its sources' movers are
    these readers') and their mirror copies."""
    compression: str
    cache: CacheSettings
    jitter: str = ""
    """Kopiur's own delay before each backup (a Go duration, `admission.jitterSeconds`); VolSync's
    comes from the jitter admission policy instead."""
    first_fill: Optional[PointPlan] = None
    """What fills the claim when it is made: the app's own history in `bootstrap` at its latest
    snapshot, or what `backups:recoveries` says for its namespace. None for an existing claim."""
    generation: str = ""
    """"" for the claim as first made, else the `recreateClaim` generation (names.claim_generation)."""

    @property
    def readable(self) -> tuple[str, ...]:
        """Repositories a restore of the app may read: its own and their mirror copies."""
        return tuple(self.readers)

    @property
    def managed_claim(self) -> bool:
        return self.app.existing_claim is None

    @property
    def drill_point(self) -> PointPlan:
        """The drill reads the app's own history, latest snapshot, from its bootstrap repository."""
        username, hostname = self.app.kopia_identity
        return PointPlan(repository=self.bootstrap, username=username, hostname=hostname)

    def source(self, repository: str) -> SourcePlan:
        return next(s for s in self.sources if s.repository == repository)


@dataclass(frozen=True)
class CephfsVolume:
    """A static PV on the repository's one CephFS subvolume, and the PVC bound to it."""

    volume: Node
    claim: Node


@dataclass(frozen=True)
class Placement:
    """What a repository puts in one namespace: its Secret and, for CephFS, the volume."""

    namespace: str
    secret: Node
    cephfs: Optional[CephfsVolume] = None


@dataclass(frozen=True)
class IngressPlan:
    node: Node
    settings: UiIngress


@dataclass(frozen=True)
class WebUiPlan:
    component: Node
    instance: str
    """What its Service selects the pod by, and the pod's labels say."""
    login: SecretPlan
    """The server's username in the clear, its password from config or a store."""
    deployment: Node
    service: Node
    ingress: Optional[IngressPlan]


@dataclass(frozen=True)
class CheckPlan:
    component: Node
    cronjob: Node
    identities: tuple[str, ...]
    """`user@host:/data` of every identity a restore from this repository may read."""
    schedule: str


@dataclass(frozen=True)
class MirrorPlan:
    component: Node
    runner: Node
    """What runs the copy: a CronJob of `kopia repository sync-to` (VolSync), or Kopiur's
    RepositoryReplication, which runs the same command."""
    target: Repository
    target_secret: str
    """The copy's repository Secret in the maintenance namespace: its S3 keys come from there."""
    schedule: str
    suspend: bool
    """Suspended by default: a copy is made when the user says so (`mirror.suspend: false`)."""


@dataclass(frozen=True)
class RepositoryPlan:
    repository: Repository
    namespaces: tuple[str, ...]
    """Namespaces with apps writing to it: each gets the repository Secret."""
    maintained: bool
    """False for a mirror copy: its blobs come from the source, whose maintenance shapes them."""
    maintenance_schedule: str
    access: RepositoryAccess
    """What a mover needs to open it; secret values only leave the plan as Pulumi secrets."""
    secret_name: str
    """The repository Secret's name, the same in every namespace."""
    identity: MoverIdentity
    """Who the maintenance and the program's own Kopia pods run as (`defaults.mover`)."""
    kopia_image: str
    cache: CacheSettings
    component: Node
    placements: tuple[Placement, ...]
    """The app namespaces in order, then the maintenance namespace."""
    maintenance: Optional[Node]
    """VolSync's KopiaMaintenance; None for a mirror copy, and with Kopiur, whose repository
    object maintains it."""
    cluster_repository: Optional[KopiurRepository]
    """Kopiur's ClusterRepository; None with VolSync."""
    bucket: Optional[BucketPlan]
    ui: Optional[WebUiPlan]
    check: Optional[CheckPlan]
    """None for a mirror copy (no mover writes it) or a repository nothing writes to."""
    mirror: Optional[MirrorPlan]


@dataclass(frozen=True)
class StaleWindowPlan:
    repository: str
    alert: str
    crons: tuple[str, ...]
    """Every concrete schedule of the repository's sources (apps may override)."""
    sources: tuple[str, ...]
    """The exact ReplicationSource names writing to it (a suffix match would also take
    `radarr-b-nas`, app `radarr` writing to repository `b-nas`, for repository `nas`)."""
    name: NameClaim
    """The alert's name, unique among the rule's alerts."""


@dataclass(frozen=True)
class RulePlan:
    component: Node
    rules: Node
    """The PrometheusRule."""


@dataclass(frozen=True)
class AlertPlan:
    mover: Mover
    """Whose metrics the rules read."""
    repositories: tuple[StaleWindowPlan, ...]
    maintenance_crons: tuple[str, ...]
    drill_crons: tuple[str, ...]
    drilled: tuple[str, ...]
    """Kopiur: the SnapshotPolicies whose deep verification is an app's drill."""
    maintained: tuple[str, ...]
    """Kopiur: the repositories its Maintenance runs (named after them), for the Jobs' names."""
    web_uis: tuple[str, ...]
    """Deployment names of the enabled Kopia web UIs."""
    snapshot_checks: bool
    """Whether any repository has a snapshot check (KopiaSnapshotsMissing)."""
    databases: tuple[tuple[str, str], ...]
    """(namespace, name) of every database cluster, for the WAL archiving alert."""
    namespace: str
    rule_labels: Mapping[str, str]
    """What the user's Prometheus selects rules by."""
    rule: Optional[RulePlan]
    """None with `alerts.enabled: false`: nothing is registered."""


@dataclass(frozen=True)
class PolicyPlan:
    policy: Node
    binding: Node
    former: tuple[str, str] = ("", "")
    """The names the policy and its binding had before, aliased so that an upgrade renames them
    in place; empty for a policy that was never renamed."""


@dataclass(frozen=True)
class GuardrailsPlan:
    component: Node
    kubernetes_minor: int
    jitter_seconds: int
    jitter_image: str
    banned_storage_classes: tuple[str, ...]
    jitter: Optional[PolicyPlan]
    """The mover jitter (MutatingAdmissionPolicy); None with `jitterSeconds: 0`."""
    pvc_guard: Optional[PolicyPlan]
    volsync_guard: Optional[PolicyPlan]
    """The storage class guards (ValidatingAdmissionPolicies); None with `storageClassGuard: false`."""
    kopiur_policy_guard: Optional[PolicyPlan] = None
    kopiur_restore_guard: Optional[PolicyPlan] = None
    """With `mover: kopiur`, the guards of its SnapshotPolicies and Restores."""

    @property
    def kopiur(self) -> bool:
        """The PVC guard also takes claims a Kopiur Restore fills."""
        return self.kopiur_policy_guard is not None

    @property
    def policies(self) -> tuple[PolicyPlan, ...]:
        return tuple(p for p in (self.jitter, self.pvc_guard, self.volsync_guard, self.kopiur_policy_guard,
                                 self.kopiur_restore_guard) if p is not None)


@dataclass(frozen=True)
class BucketProviderPlan:
    """One explicit aws provider per S3 endpoint and credentials."""

    node: Node
    endpoint: str
    region: Optional[str]
    keys: Optional[tuple[SecretStr, SecretStr]]
    """(access key id, secret key) from config; None: the environment of `pulumi up` has them."""


@dataclass(frozen=True)
class RenderPlan:
    node: Node
    directory: str


@dataclass(frozen=True)
class StackPlan:
    mover: Mover
    jobs: tuple[ScheduledJob, ...]
    schedules: dict[JobKey, str]
    schedule_pins: Mapping[str, str]
    """`backups:schedulePins` as written (for `make pin-schedules`)."""
    render: Optional[RenderPlan]
    """The rendering provider, with `kubernetes.renderYamlTo`."""
    bucket_providers: tuple[BucketProviderPlan, ...]
    history: Node
    """The history lock (`history_lock.py`): registered before anything else."""
    repositories: tuple[RepositoryPlan, ...]
    apps: tuple[AppPlan, ...]
    databases: tuple[DatabasePlan, ...]
    guardrails: GuardrailsPlan
    alerts: AlertPlan
    names: NameBook
    """Every name the program generates, by domain (read by tests; collisions already refused)."""

    def repository(self, name: str) -> RepositoryPlan:
        return next(rp for rp in self.repositories if rp.repository.name == name)


def plan_stack(config: StackConfig) -> StackPlan:
    """The plan for `config`. Raises ConfigError when two generated names collide or a name is
    over its limit, naming the config keys they come from."""
    jobs = tuple(scheduled_jobs(config))
    schedules = plan_schedules(jobs, night_window(config), {job_of_pin(k): c for k, c in config.schedule_pins.items()})
    access = {r.name: access_of(r, config.password_of(r)) for r in config.repositories}
    places = {r.name: r.place for r in config.repositories}
    providers = _BucketProviders(config)
    apps = tuple(_app_plan(config, index, app, schedules, access, places) for index, app in enumerate(config.apps))
    repositories = tuple(_repository_plan(config, index, repo, schedules, apps, access[repo.name], providers)
                         for index, repo in enumerate(config.repositories))
    databases = tuple(database_plan(config, db, index, providers.name_of) for index, db in enumerate(config.databases))
    render = config.kubernetes.render_yaml_to
    plan = StackPlan(
        mover=config.mover,
        jobs=jobs,
        schedules=schedules,
        schedule_pins=dict(config.schedule_pins),
        render=RenderPlan(Node("render", "pulumi:providers:kubernetes", tree.STACK, ("kubernetes", "renderYamlTo")), render)
        if render else None,
        bucket_providers=providers.plans(),
        history=Node("history", "Resource", tree.STACK, ("apps",)),
        repositories=repositories,
        apps=apps,
        databases=databases,
        guardrails=_guardrails_plan(config),
        alerts=_alert_plan(config, apps, schedules, repositories),
        names=NameBook(),
    )
    _check_names(plan)
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


def night_window(config: StackConfig) -> NightWindow:
    """The hours daily and weekly backups spread over (`defaults.nightWindow`)."""
    return NightWindow(*config.defaults.night_hours)


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


def _app_plan(config: StackConfig, index: int, app: App, schedules: dict[JobKey, str],
              access: dict[str, RepositoryAccess], places: dict[str, str]) -> AppPlan:
    volume = volume_of(config, app)
    kopiur = config.mover == "kopiur"
    path: KeyPath = ("apps", index, "name")
    component = names.app_component(app.namespace, app.name)
    username, hostname = app.kopia_identity
    identity_path: KeyPath = ("apps", index, "identity" if app.identity else "name")
    readable = config.readable_repositories(app)
    # Every repository it writes to is readable too: its sources' movers are these readers'.
    readers = {r.name: Reader(names.repository_secret(r.name), access[r.name].mover_volumes,
                              mover_identity(config, volume, r)) for r in readable}
    sources = tuple(
        SourcePlan(
            repository=repo.name,
            place=places[repo.name],
            username=username,
            hostname=hostname,
            schedule=schedules[JobKey(JobKind.BACKUP, app.namespace, app.name, repo.name)],
            retain=repo.retain,
            node=(kopiur_plan.policy if kopiur else volsync_plan.source)(component, app.name, app.namespace, repo.name,
                                                                         path),
            identity=NameClaim(("identity", places[repo.name]), f"{username}@{hostname}", 317, identity_path,
                               f"Kopia identity (in repository {repo.name!r})"),
            now=None if not app.backup_now
            else kopiur_plan.one_off(component, app.name, app.namespace, repo.name, ("apps", index, "backupNow"),
                                     app.backup_now) if kopiur
            else volsync_plan.one_off_source(component, app.name, app.namespace, repo.name, ("apps", index, "backupNow")),
            schedule_node=kopiur_plan.schedule(component, app.name, app.namespace, repo.name, path) if kopiur else None,
        )
        for repo in config.repositories_of(app)
    )
    bootstrap = config.bootstrap_repository(app).name
    generation = names.claim_generation(app.recreate_claim)
    restore = _restore_plan(config, app, bootstrap)
    drill_schedule = schedules.get(JobKey(JobKind.DRILL, app.namespace, app.name))
    managed = app.existing_claim is None
    return AppPlan(
        mover=config.mover,
        app=app,
        volume=volume,
        component=Node(component, "BackupEnabledApp", tree.STACK, path),
        claim=_claim(index, app, component, volume.claim_name, generation),
        sources=sources,
        bootstrap=bootstrap,
        restore=restore,
        drill_schedule=drill_schedule,
        destinations=kopiur_plan.destinations(component, app.name, app.namespace, path, generation, bootstrap=managed,
                                              restore=restore.request if restore else "")
        if kopiur else volsync_plan.destinations(component, app.name, app.namespace, path, generation,
                                                 bootstrap=managed, restore=restore is not None,
                                                 drill=drill_schedule is not None),
        readers=readers,
        compression=config.defaults.compression,
        cache=config.defaults.cache,
        jitter=f"{config.admission.jitter_seconds}s" if kopiur and config.admission.jitter_seconds else "",
        first_fill=_first_fill(config, app, bootstrap) if managed else None,
        generation=generation,
    )


def _claim(index: int, app: App, component: str, claim_name: str, generation: str) -> Node:
    """The app's PVC. A recreated claim is a new resource (the old one is retained, never
    patched to a smaller size); an existing claim is not made here, but two apps backing up one
    claim is still a mistake, so its name is claimed."""
    key = "existingClaim" if app.existing_claim else "claimName" if app.claim_name else "name"
    resource = names.child(component, "volume", *((generation,) if generation else ())) if not app.existing_claim else ""
    return Node(resource, "PersistentVolumeClaim", tree.APP, ("apps", index, "name"), claim_name, app.namespace,
                name_path=("apps", index, key))


def _first_fill(config: StackConfig, app: App, bootstrap: str) -> PointPlan:
    """The app's own history, latest snapshot, from its bootstrap repository, unless
    `backups:recoveries` names another repository or point for the app's namespace."""
    username, hostname = app.kopia_identity
    recovery = config.recovery_of(app)
    if recovery is None:
        return PointPlan(repository=bootstrap, username=username, hostname=hostname)
    return PointPlan(
        repository=recovery.repository or bootstrap, username=username, hostname=hostname,
        previous=recovery.previous, restore_as_of=recovery.restore_as_of, required=True,
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
        request=f"{_request_digest(app, repository):08x}",
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


def _repository_plan(config: StackConfig, index: int, repo: Repository, schedules: dict[JobKey, str],
                     apps: tuple[AppPlan, ...], access: RepositoryAccess,
                     providers: _BucketProviders) -> RepositoryPlan:
    path: KeyPath = ("repositories", index, "name")
    maintained = repo.name not in config.mirror_targets
    maintenance_ns = repo.maintenance.namespace
    namespaces = config.namespaces_of(repo)
    expected = [names.identity(s.username, s.hostname) for ap in apps for s in ap.sources if s.repository == repo.name]
    expected += [p.identity for ap in apps for p in (ap.restore, ap.first_fill)
                 if p is not None and p.repository == repo.name]
    check_schedule = schedules.get(_check_key(repo), "")
    return RepositoryPlan(
        repository=repo,
        namespaces=namespaces,
        maintained=maintained,
        maintenance_schedule=schedules[_maintenance_key(repo)] if maintained else "",
        access=access,
        secret_name=names.repository_secret(repo.name),
        identity=config.defaults.mover,
        kopia_image=config.defaults.kopia_image,
        cache=config.defaults.cache,
        component=Node(repo.name, "SharedKopiaRepository", tree.STACK, path),
        placements=tuple(_placement(repo, namespace, secret_kind(config.password_of(repo)), path)
                         for namespace in dict.fromkeys((*namespaces, maintenance_ns))),
        maintenance=volsync_plan.maintenance(repo.name, maintenance_ns, path)
        if maintained and config.mover == "volsync" else None,
        cluster_repository=kopiur_plan.repository(repo.name, path, kopiur_plan.repository_spec(
            repo, tuple(dict.fromkeys((*namespaces, maintenance_ns))), names.repository_secret(repo.name), maintained,
            schedules[_maintenance_key(repo)] if maintained else "", config.defaults.mover,
            ui_login=names.web_ui(repo.name) if repo.ui.enabled else ""))
        if config.mover == "kopiur" else None,
        bucket=BucketPlan(Node(names.child(repo.name, "bucket"), "Bucket", tree.REPOSITORY, path),
                          repo.s3.bucket, providers.name_of(repo))
        if repo.s3 is not None and repo.manage_bucket else None,
        ui=_web_ui_plan(repo, path, config.mover == "kopiur") if repo.ui.enabled else None,
        check=CheckPlan(*_job_nodes(repo, "check", "SnapshotCheck", tree.CHECK, names.snapshot_check(repo.name), path),
                        identities=tuple(dict.fromkeys(expected)), schedule=check_schedule)
        if check_schedule and expected else None,
        mirror=_mirror_plan(config, index, repo, schedules) if repo.mirror_to else None,
    )


def _placement(repo: Repository, namespace: str, kind: str, path: KeyPath) -> Placement:
    """The repository Secret in `namespace` (an ExternalSecret writes it when the password is
    held outside), and for CephFS a static PV on the one shared subvolume with its PVC."""
    secret = Node(names.child(repo.name, namespace), kind, tree.REPOSITORY, path, names.repository_secret(repo.name),
                  namespace, object_kind="Secret")
    if repo.cephfs is None:
        return Placement(namespace, secret)
    return Placement(namespace, secret, CephfsVolume(
        volume=Node(names.child(repo.name, namespace, "volume"), "PersistentVolume", tree.REPOSITORY, path,
                    names.cephfs_volume(repo.name, namespace)),
        claim=Node(names.child(repo.name, namespace, "claim"), "PersistentVolumeClaim", tree.REPOSITORY, path,
                   names.cephfs_claim(repo.name), namespace),
    ))


def _web_ui_plan(repo: Repository, path: KeyPath, kopiur: bool) -> WebUiPlan:
    ui, namespace, component = names.web_ui(repo.name), repo.maintenance.namespace, names.child(repo.name, "ui")
    assert repo.ui.password is not None  # config: an enabled UI has a login

    def node(role: str, kind: str, object_kind: str = "") -> Node:
        # A Service's and a Deployment's names are DNS labels; a Secret's and an Ingress's subdomains.
        limit = names.SUBDOMAIN if kind in ("Secret", "ExternalSecret", "Ingress") else names.LABEL
        return Node(names.child(component, role), kind, tree.WEB_UI, path, ui, namespace, object_kind, limit)

    def kopiurs(kind: str) -> Node:
        """Made by Kopiur from the ClusterRepository's `server`: named, never made here."""
        return Node("", kind, tree.WEB_UI, path, names.kopiur_web_ui(repo.name), namespace, limit=names.LABEL)

    return WebUiPlan(
        component=Node(component, "KopiaWebUi", tree.STACK, path),
        instance=ui,
        login=SecretPlan(node("login", secret_kind(repo.ui.password), object_kind="Secret"),
                         secret_values({UI_PASSWORD: repo.ui.password}, {UI_USERNAME: repo.ui.username})),
        deployment=kopiurs("Deployment") if kopiur else node("deployment", "Deployment"),
        service=kopiurs("Service") if kopiur else node("service", "Service"),
        ingress=IngressPlan(node("ingress", "Ingress"), repo.ui.ingress) if repo.ui.ingress is not None else None,
    )


def _job_nodes(repo: Repository, role: str, kind: str, token: str, cronjob: str, path: KeyPath) -> tuple[Node, Node]:
    """A Kopia CronJob's component (`<repo>-<role>`, class `kind`, type `token`) and its CronJob
    in the maintenance namespace."""
    component = names.child(repo.name, role)
    return (Node(component, kind, tree.STACK, path),
            Node(names.child(component, "cronjob"), "CronJob", token, path, cronjob, repo.maintenance.namespace,
                 limit=names.CRONJOB))


def _mirror_plan(config: StackConfig, index: int, repo: Repository, schedules: dict[JobKey, str]) -> MirrorPlan:
    assert repo.mirror_to is not None
    target = config.repository(repo.mirror_to)
    path: KeyPath = ("repositories", index, "mirrorTo")
    component, runner = _job_nodes(repo, "mirror", "RepositoryMirror", tree.MIRROR,
                                   names.mirror_cronjob(repo.name, target.name), path)
    if config.mover == "kopiur":
        runner = kopiur_plan.replication(component.resource, repo.name, target.name, repo.maintenance.namespace, path)
    return MirrorPlan(component, runner, target, names.repository_secret(target.name), schedules[_mirror_key(repo)],
                      suspend=repo.mirror.suspend)


class _BucketProviders:
    """One aws provider per S3 endpoint and credentials, for every repository whose bucket the
    program makes (the databases on it make theirs with the same one)."""

    def __init__(self, config: StackConfig) -> None:
        self._plans: dict[tuple[str, str, str], BucketProviderPlan] = {}
        for index, repo in enumerate(config.repositories):
            if repo.s3 is not None and repo.manage_bucket:
                self._plans.setdefault(self._key(repo), self._plan(repo, ("repositories", index, "s3")))

    @staticmethod
    def _keys(repo: Repository) -> Optional[tuple[SecretStr, SecretStr]]:
        credentials = repo.credentials
        assert credentials is not None
        if credentials.access_key_id is not None and credentials.secret_access_key is not None:
            return credentials.access_key_id, credentials.secret_access_key
        return None

    def _key(self, repo: Repository) -> tuple[str, str, str]:
        assert repo.s3 is not None
        keys = self._keys(repo)
        return repo.s3.url, str(repo.region), keys[0].get_secret_value() if keys else "environment"

    def _plan(self, repo: Repository, path: KeyPath) -> BucketProviderPlan:
        assert repo.s3 is not None
        # The name must not depend on config order: renaming a provider replaces its buckets.
        name = names.s3_provider(repo.s3.host, stable_hash(*self._key(repo)))
        return BucketProviderPlan(Node(name, "pulumi:providers:aws", tree.STACK, path), repo.s3.url, repo.region,
                                  self._keys(repo))

    def name_of(self, repo: Repository) -> str:
        return self._plans[self._key(repo)].node.resource

    def plans(self) -> tuple[BucketProviderPlan, ...]:
        return tuple(self._plans.values())


def _guardrails_plan(config: StackConfig) -> GuardrailsPlan:
    admission = config.admission

    def policy(kind: str, name: str, key: str, former: str = "") -> PolicyPlan:
        path: KeyPath = ("admission", key)
        return PolicyPlan(Node(name, kind, tree.ADMISSION, path, name),
                          Node(f"{name}-binding", f"{kind}Binding", tree.ADMISSION, path, name),
                          (former, f"{former}-binding") if former else ("", ""))

    guard = admission.storage_class_guard
    return GuardrailsPlan(
        component=Node("admission", "AdmissionGuardrails", tree.STACK, ("admission",)),
        kubernetes_minor=config.kubernetes.minor,
        jitter_seconds=admission.jitter_seconds,
        jitter_image=admission.jitter_image,
        banned_storage_classes=config.guardrails.banned_storage_classes,
        # With Kopiur the jitter is its schedules' own (`AppPlan.jitter`): no policy on its Jobs.
        jitter=policy("MutatingAdmissionPolicy", names.JITTER_POLICY, "jitterSeconds", names.FORMER_JITTER_POLICY)
        if admission.jitter_seconds and config.mover == "volsync" else None,
        pvc_guard=policy("ValidatingAdmissionPolicy", names.PVC_GUARD, "storageClassGuard") if guard else None,
        volsync_guard=policy("ValidatingAdmissionPolicy", names.VOLSYNC_GUARD, "storageClassGuard") if guard else None,
        kopiur_policy_guard=policy("ValidatingAdmissionPolicy", names.KOPIUR_POLICY_GUARD, "storageClassGuard")
        if guard and config.mover == "kopiur" else None,
        kopiur_restore_guard=policy("ValidatingAdmissionPolicy", names.KOPIUR_RESTORE_GUARD, "storageClassGuard")
        if guard and config.mover == "kopiur" else None,
    )


def _alert_plan(config: StackConfig, apps: tuple[AppPlan, ...], schedules: dict[JobKey, str],
                repositories: tuple[RepositoryPlan, ...]) -> AlertPlan:
    windows = []
    for index, repo in enumerate(config.repositories):
        sources = [(s, a) for a in apps for s in a.sources if s.repository == repo.name]
        if sources:
            windows.append(StaleWindowPlan(
                repository=repo.name,
                alert=names.stale_alert(repo.name),
                crons=tuple(sorted({s.schedule for s, _ in sources})),
                sources=tuple(sorted({s.name for s, _ in sources})),
                name=NameClaim(("alert",), names.stale_alert(repo.name), 200, ("repositories", index, "name"), "alert"),
            ))
    alerts = config.alerts
    path: KeyPath = ("alerts",)
    return AlertPlan(
        mover=config.mover,
        repositories=tuple(windows),
        maintenance_crons=tuple(
            schedules[_maintenance_key(r)] for r in config.repositories if r.name not in config.mirror_targets
        ),
        drill_crons=tuple(sorted({cron for key, cron in schedules.items() if key.kind is JobKind.DRILL})),
        drilled=tuple(sorted(a.source(a.bootstrap).name for a in apps if a.drill_schedule is not None)),
        maintained=tuple(r.name for r in config.repositories if r.name not in config.mirror_targets)
        if config.mover == "kopiur" else (),
        web_uis=tuple(rp.ui.deployment.name for rp in repositories if rp.ui is not None),
        snapshot_checks=any(rp.check is not None for rp in repositories),
        databases=tuple((db.namespace, db.name) for db in config.databases),
        namespace=alerts.namespace,
        rule_labels=dict(alerts.labels),
        rule=RulePlan(Node("alerts", "BackupAlerts", tree.STACK, path),
                      Node("alerts-rules", "PrometheusRule", tree.ALERTS, path, names.PROMETHEUS_RULE, alerts.namespace))
        if alerts.enabled else None,
    )


# --------------------------------------------------------------------------- every name, checked


def _check_names(plan: StackPlan) -> None:
    """Hand every name in the plan, each resource's and each claimed one, to its NameBook, in
    the plan's order (a collision names the earlier key as the one that also makes it)."""
    for found in tree.named(plan):
        tree.take(plan.names, found)
