"""The whole stack config, and the rules that span keys (each a small named function)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from backup_contract import normalized_target, overlaps
from pydantic import Field, PrivateAttr, SecretStr, model_validator

from ..keypath import KeyPath
from . import advice
from .apps import App, PointInTime, Recovery
from .cluster import Admission, Alerts, Defaults, Drills, Guardrails, KubernetesSettings, PinKey, PinnedCron
from .databases import Database
from .fields import Model, check_bucket_name
from .repositories import S3_BACKENDS, Repository
from .shared import ExternalSecretSource, SecretValue

#: The operator that runs the backups and restores (`backups:mover`).
Mover = Literal["volsync", "kopiur"]

#: One cross-key problem: where, and what is wrong.
Problem = tuple[KeyPath, str]


class StackConfig(Model):
    """All `backups:*` keys of one stack."""

    kubernetes: KubernetesSettings = KubernetesSettings()
    mover: Mover = "volsync"
    """Which operator moves the data: the VolSync Kopia fork (`volsync`, final at v0.17.11) or
    Kopiur (`kopiur`). Stack-wide; the identities and repositories are the same either way."""
    password: SecretValue
    defaults: Defaults = Defaults()
    repositories: Annotated[tuple[Repository, ...], Field(min_length=1)]
    apps: tuple[App, ...] = ()
    recoveries: tuple[Recovery, ...] = ()
    """Namespaces whose claims, when made again, come back from a chosen repository and time."""
    databases: tuple[Database, ...] = ()
    admission: Admission = Admission()
    alerts: Alerts = Alerts()
    drills: Drills = Drills()
    guardrails: Guardrails = Guardrails()
    schedule_pins: dict[PinKey, PinnedCron] = {}
    """Where each preset-scheduled job already runs (`make pin-schedules` writes them): pinned
    jobs never move when apps are added or removed. Pins of jobs no longer in the config, or
    that no longer fit their preset, are ignored."""

    #: Config keys the engine marked secret (`pulumi config set --secret`); set by the loader.
    _secret_keys: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @model_validator(mode="after")
    def _cross_references(self) -> StackConfig:
        problems = [problem for rule in CROSS_KEY_RULES for problem in rule(self)]
        if problems:
            raise CrossKeyProblems(problems)
        return self

    # Derived views: what the config means, computed once here so every reader agrees.

    @property
    def primary_repository(self) -> Repository:
        return next((r for r in self.repositories if r.primary), self.repositories[0])

    def password_of(self, repository: Repository) -> SecretValue:
        return repository.password if repository.password is not None else self.password

    @property
    def warnings(self) -> tuple[str, ...]:
        """Advice on a config that works but should change; each names its key path."""
        return advice.warnings(self)

    @property
    def mirror_targets(self) -> frozenset[str]:
        return frozenset(r.mirror_to for r in self.repositories if r.mirror_to)

    def repository(self, name: str) -> Repository:
        return next(r for r in self.repositories if r.name == name)

    def recovery_source(self, db: Database) -> Optional[Database]:
        """The database whose stanza `db`'s recovery reads: `db` itself, or the one `from` names in
        its namespace (None when there is none)."""
        name = db.name if db.recovery is None or db.recovery.from_ is None else db.recovery.from_
        return next((d for d in self.databases if d.namespace == db.namespace and d.name == name), None)

    def repositories_of(self, app: App) -> tuple[Repository, ...]:
        """An app's destinations: the listed ones, else every repository that is not a mirror
        copy (a mirror is written by `sync-to`, never by movers)."""
        if app.repositories is None:
            return tuple(r for r in self.repositories if r.name not in self.mirror_targets)
        return tuple(r for r in self.repositories if r.name in app.repositories)

    def bootstrap_repository(self, app: App) -> Repository:
        """Where the app's first restore reads from: the primary if the app uses it."""
        mine = self.repositories_of(app)
        primary = self.primary_repository
        return primary if primary in mine else mine[0]

    def readable_repositories(self, app: App) -> tuple[Repository, ...]:
        """Where the app's history can be read: its repositories and their mirror copies."""
        mine = self.repositories_of(app)
        names = {r.name for r in mine} | {r.mirror_to for r in mine if r.mirror_to}
        return tuple(r for r in self.repositories if r.name in names)

    def namespaces_of(self, repository: Repository) -> tuple[str, ...]:
        """Namespaces with an app that writes to `repository` or can restore from it (a mirror
        copy): each needs the repository Secret, so a restore from the copy is one config change."""
        return tuple(sorted({a.namespace for a in self.apps if repository in self.readable_repositories(a)}))

    def recovery_of(self, app: App) -> Recovery | None:
        return next((r for r in self.recoveries if r.namespace == app.namespace), None)


class CrossKeyProblems(ValueError):
    """Raised by the stack model's cross-key rules; errors.py lists each with its key path."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


# --------------------------------------------------------------------------- the rules


def unique_names(config: StackConfig) -> Iterator[Problem]:
    yield from _duplicates(("repositories",), [r.name for r in config.repositories], "repository")
    yield from _duplicates(("apps",), [f"{a.namespace}/{a.name}" for a in config.apps], "app")
    yield from _duplicates(("databases",), [f"{d.namespace}/{d.name}" for d in config.databases], "database")


def one_primary(config: StackConfig) -> Iterator[Problem]:
    primaries = [i for i, r in enumerate(config.repositories) if r.primary]
    for index in primaries[1:]:
        yield (("repositories", index, "primary"), "more than one repository is primary: set primary: true on one only")


def app_repositories_exist(config: StackConfig) -> Iterator[Problem]:
    names = [r.name for r in config.repositories]
    for index, app in enumerate(config.apps):
        for j, ref in enumerate(app.repositories or ()):
            if ref not in names:
                yield (("apps", index, "repositories", j), _unknown(ref, names))
            elif ref in config.mirror_targets:
                yield (("apps", index, "repositories", j),
                       f"{ref!r} is a mirror (sync-to replaces its contents): back up to the "
                       "repository it mirrors instead")
        yield from _duplicates(("apps", index, "repositories"), list(app.repositories or ()), "repository", key=False)


def one_secret_source_per_repository(config: StackConfig) -> Iterator[Problem]:
    """One Secret holds a repository's password and keys: all from config or all external."""
    for index, repo in enumerate(config.repositories):
        password = config.password_of(repo)
        external_password = isinstance(password, ExternalSecretSource)
        if repo.externally_held and not external_password:
            yield (("repositories", index, "credentials", "externalSecret"),
                   "one Secret holds the credentials and the password, so an external "
                   "credential needs the password from an external secret too "
                   "(password: {externalSecret: {store, key}})")
        if repo.externally_held and isinstance(password, ExternalSecretSource):
            assert repo.credentials is not None and repo.credentials.external_secret is not None
            refs = (password.external_secret, repo.credentials.external_secret)
            if len({(ref.store, ref.store_kind) for ref in refs}) > 1:
                yield (("repositories", index, "credentials", "externalSecret", "store"),
                       "the password and the credentials come from different secret stores; one "
                       "ExternalSecret writes the repository Secret, so use one store for both")
        if repo.backend in S3_BACKENDS and external_password and not repo.externally_held:
            yield (("repositories", index, "credentials"),
                   "the password comes from an external secret, so the credentials must too "
                   "(credentials: {externalSecret: {store, key}})")
    # Two entries with one target are refused by one_owner_per_place; a hand-written Secret
    # with another password is the policy pack's (kopia-shared-password), which judges what
    # reaches the cluster by any road.


def mirrors_are_sound(config: StackConfig) -> Iterator[Problem]:
    names = [r.name for r in config.repositories]
    mirrored_into: dict[str, int] = {}
    for index, repo in enumerate(config.repositories):
        if repo.mirror_to is None:
            continue
        path = ("repositories", index, "mirrorTo")
        target = next((r for r in config.repositories if r.name == repo.mirror_to), None)
        if target is None:
            yield (path, _unknown(repo.mirror_to, names))
        elif not repo.is_filesystem or target.backend not in S3_BACKENDS:
            yield (path, "a mirror copies a filesystem repository (nfs, cephfs) to an S3 one")
        elif _differs(config.password_of(repo), config.password_of(target)):
            yield (path, f"a mirror is a copy of the repository, so {target.name!r} "
                   "must have the same password as its source")
        elif repo.mirror_to in mirrored_into:
            # `sync-to --delete` makes the target an exact copy: two sources would erase each other.
            yield (path, f"backups:repositories[{mirrored_into[repo.mirror_to]}].mirrorTo already "
                   f"mirrors into {repo.mirror_to!r}, and each sync deletes what the other copied: "
                   "give each mirror its own repository")
        if repo.mirror_to is not None:
            mirrored_into.setdefault(repo.mirror_to, index)


def admission_fits_the_cluster(config: StackConfig) -> Iterator[Problem]:
    # With Kopiur the jitter is its schedules' own: no MutatingAdmissionPolicy to need.
    if config.admission.jitter_seconds and config.kubernetes.minor < 34 and config.mover == "volsync":
        yield (("kubernetes", "version"),
               f"{config.kubernetes.version} has no MutatingAdmissionPolicy (v1beta1 from 1.34 with "
               "its feature gate, v1 from 1.36): upgrade, or set backups:admission.jitterSeconds: 0")


def drilled_apps_exist(config: StackConfig) -> Iterator[Problem]:
    if isinstance(config.drills.apps, tuple):
        known = [a.name for a in config.apps]
        for j, name in enumerate(config.drills.apps):
            if name not in known:
                hint = difflib.get_close_matches(name, known, n=1)
                yield (("drills", "apps", j), f"unknown app {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))


def restores_read_a_repository_of_the_app(config: StackConfig) -> Iterator[Problem]:
    """A restore reads a repository the app backs up to, or a mirror copy of one."""
    for index, app in enumerate(config.apps):
        if app.restore is not None:
            yield from _readable(config, app, app.restore, ("apps", index, "restore", "repository"))
    seen: dict[str, int] = {}
    for index, recovery in enumerate(config.recoveries):
        if recovery.namespace in seen:
            yield (("recoveries", index, "namespace"),
                   f"backups:recoveries[{seen[recovery.namespace]}] already recovers {recovery.namespace!r}")
        seen.setdefault(recovery.namespace, index)
        apps = [a for a in config.apps if a.namespace == recovery.namespace]
        if not apps:
            yield (("recoveries", index, "namespace"), f"no app in backups:apps is in namespace {recovery.namespace!r}")
        elif all(a.existing_claim for a in apps):
            yield (("recoveries", index, "namespace"),
                   f"every app in {recovery.namespace!r} has an existingClaim, which no bootstrap restore "
                   "fills, so this recovery would restore nothing: restore them with backups:apps[N].restore")
        for app in apps:
            yield from _readable(config, app, recovery, ("recoveries", index, "repository"))


def _readable(config: StackConfig, app: App, point: PointInTime, path: KeyPath) -> Iterator[Problem]:
    readable = [r.name for r in config.readable_repositories(app)]
    if point.repository is not None and point.repository not in readable:
        yield (path, f"{app.namespace}/{app.name} neither backs up to {point.repository!r} nor to a "
                     f"repository mirrored into it; use one of: {', '.join(readable)}")


def database_repositories_are_s3(config: StackConfig) -> Iterator[Problem]:
    names = [r.name for r in config.repositories]
    for index, db in enumerate(config.databases):
        for j, ref in enumerate(db.repositories):
            path = ("databases", index, "repositories", j)
            if ref not in names:
                yield (path, _unknown(ref, names))
                continue
            repo = config.repository(ref)
            if repo.is_filesystem:
                yield (path, f"{ref!r} is a filesystem repository; pgBackRest writes to S3 repositories (garage, b2, r2)")
            elif repo.s3 is not None and not repo.s3.tls:
                yield (path, f"{ref!r} is plain HTTP; pgBackRest speaks only HTTPS to S3 (give the "
                       "endpoint TLS, e.g. Garage behind a TLS proxy)")
        yield from _duplicates(("databases", index, "repositories"), list(db.repositories), "repository", key=False)
        for field in ("full", "diff"):
            given = getattr(db.schedule, field)
            if given is not None and len(given) != len(db.repositories):
                yield (("databases", index, "schedule", field),
                       f"{len(given)} schedules for {len(db.repositories)} repositories: give one per repository")


def database_recoveries_read_what_exists(config: StackConfig) -> Iterator[Problem]:
    """A recovery reads a stanza and repository the config has, into a Cluster the program makes."""
    for index, db in enumerate(config.databases):
        recovery, path = db.recovery, ("databases", index, "recovery")
        if recovery is None:
            continue
        if not db.manage_cluster:
            yield (path, "is the Cluster's bootstrap, which the program renders only with manageCluster: true")
        if recovery.from_ == db.name:
            yield ((*path, "from"), f"names {db.namespace}/{db.name} itself: leave from out to read its own stanza")
        source = config.recovery_source(db)
        if source is None:
            here = [d.name for d in config.databases if d.namespace == db.namespace and d is not db]
            yield ((*path, "from"), f"no database {db.namespace}/{recovery.from_} (its Stanza is what a "
                   f"recovery reads; the namespace has: {', '.join(here) or 'no other database'})")
            continue
        if recovery.repository is not None and recovery.repository not in source.repositories:
            yield ((*path, "repository"), f"{db.namespace}/{source.name} does not back up to "
                   f"{recovery.repository!r}; use one of: {', '.join(source.repositories)}")


def derived_values_are_valid(config: StackConfig) -> Iterator[Problem]:
    """A value the program derives is judged as the typed one would be: a database's default
    bucket is its name, which a DNS label allows but S3 may refuse (`pg` is too short)."""
    for index, db in enumerate(config.databases):
        if db.bucket is None:
            try:
                check_bucket_name(db.name)
            except ValueError as error:
                yield (("databases", index, "name"), f"is also the default bucket, and {error}: set bucket")


def one_owner_per_place(config: StackConfig) -> Iterator[Problem]:
    """One physical place has one owner in the config: an S3 bucket on its endpoint, an NFS
    export path, a CephFS path (compared as the pack compares them: `place`), nor one inside
    another. Two repositories there are one repository with two maintenances; a database in a
    Kopia repository's bucket has its archive deleted by the mirror's `sync-to --delete` or by
    Kopia's maintenance. Two databases may share a bucket only as pgBackRest allows it: each
    under its own path (`/<name>`) and the bucket managed by neither (two Bucket resources
    would each manage it)."""
    owners: list[_Owner] = []
    for index, repo in enumerate(config.repositories):
        yield from _owned(owners, _Owner(repo.place, f"backups:repositories[{index}] ({repo.name})"),
                          ("repositories", index, repo.target_key))
    known = {r.name: r for r in config.repositories}
    for index, db in enumerate(config.databases):
        key = "bucket" if db.bucket is not None else "name"  # the default bucket is the name
        for ref in dict.fromkeys(db.repositories):
            store = known.get(ref)
            if store is None or store.s3 is None:
                continue  # reported by database_repositories_are_s3
            owner = _Owner(normalized_target(store.bucket_target(db.bucket_name)),
                           f"backups:databases[{index}] ({db.namespace}/{db.name}, in repository {ref!r})",
                           archive=f"/{db.name}", managed=store.manage_bucket)
            yield from _owned(owners, owner, ("databases", index, key))


@dataclass(frozen=True)
class _Owner:
    place: str
    who: str
    #: A database's path in its bucket (None for a Kopia repository, which owns it whole).
    archive: Optional[str] = None
    managed: bool = False

    def clashes(self, other: _Owner) -> bool:
        if not overlaps(self.place, other.place):
            return False
        if self.archive is not None and other.archive is not None:
            return self.archive == other.archive or self.managed or other.managed
        return True


def _owned(owners: list[_Owner], owner: _Owner, path: KeyPath) -> Iterator[Problem]:
    for other in owners:
        if owner.clashes(other):
            relation = "is the place" if owner.place == other.place else "overlaps the place"
            if owner.archive is not None and other.archive is None:
                why = "Kopia's maintenance, and a mirror's sync-to --delete, would delete the database's archive"
            elif owner.archive is not None:
                why = ("pgBackRest would write both archives to one path" if owner.archive == other.archive
                       else "two Bucket resources would each manage the bucket (manageBucket: false lets them share it)")
            else:
                why = "two owners would each maintain and manage it"
            yield (path, f"{relation} {other.place} that {other.who} already uses: one place, one owner, "
                         f"as {why}; give each repository and each database a bucket or path of its own")
            return
    owners.append(owner)


def backed_up_classes_are_not_banned(config: StackConfig) -> Iterator[Problem]:
    """What the pack's `no-banned-storage-class-for-backups` would refuse on every object of an
    app, said once, at the key that chose the class (the pack still guards every other road)."""
    banned = set(config.guardrails.banned_storage_classes)
    why = ("is banned for backed-up volumes (backups:guardrails.bannedStorageClasses): CephFS restores "
           "can silently zero sparse files; use a block class (like ceph-block)")
    by_default = []
    for index, app in enumerate(config.apps):
        if app.storage_class in banned:
            yield (("apps", index, "storageClass"), f"{app.storage_class!r} {why}")
        elif app.storage_class is None and config.defaults.storage_class in banned:
            by_default.append(f"{app.namespace}/{app.name}")
    if by_default:
        apps = ", ".join(by_default[:5]) + (f" and {len(by_default) - 5} more" if len(by_default) > 5 else "")
        yield (("defaults", "storageClass"), f"{config.defaults.storage_class!r} {why} (the class of {apps})")
    if config.defaults.cache.storage_class in banned:
        yield (("defaults", "cache", "storageClass"), f"{config.defaults.cache.storage_class!r} {why} (every "
               "mover's cache volume)")


def the_mover_has_what_is_configured(config: StackConfig) -> Iterator[Problem]:
    """Refuse what the chosen mover does not render, rather than silently dropping it: hooks on
    the fork (its mover runs none)."""
    if config.mover != "volsync":
        return
    for index, app in enumerate(config.apps):
        if app.hooks_to_run is not None:
            yield (("apps", index, "hooks"), "the VolSync fork's mover runs no hooks: set backups:mover: kopiur "
                   "(see the README's Movers), or quiesce the app yourself (scale it down before its backup)")


CROSS_KEY_RULES: tuple[Callable[[StackConfig], Iterator[Problem]], ...] = (
    unique_names,
    one_primary,
    app_repositories_exist,
    one_secret_source_per_repository,
    mirrors_are_sound,
    admission_fits_the_cluster,
    drilled_apps_exist,
    restores_read_a_repository_of_the_app,
    database_repositories_are_s3,
    database_recoveries_read_what_exists,
    derived_values_are_valid,
    one_owner_per_place,
    backed_up_classes_are_not_banned,
    the_mover_has_what_is_configured,
)


# --------------------------------------------------------------------------- helpers


def _duplicates(path: KeyPath, names: list[str], what: str, key: bool = True) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            where = (*path, index, "name") if key else (*path, index)
            yield (where, f"duplicate {what} {name!r}: names must be unique")
        seen.add(name)


def _differs(one: SecretValue, other: SecretValue) -> bool:
    """Two known passwords that differ; external ones cannot be compared here (the policy pack
    compares what reaches the cluster)."""
    if isinstance(one, SecretStr) and isinstance(other, SecretStr):
        return one.get_secret_value() != other.get_secret_value()
    return False


def _unknown(ref: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(ref, known, n=1)
    suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"unknown repository {ref!r}{suffix}; defined: {', '.join(known)}"


__all__ = ["CROSS_KEY_RULES", "CrossKeyProblems", "Problem", "StackConfig"]
