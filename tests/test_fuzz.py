"""Mutation fuzzing of the example stacks through the offline preview, as a user runs it.

Every mutated stack must either render (exit 0 or 1) objects with unique names that pass the
conformance checks and every property of render_properties (one owner per physical place, one
writer per identity, no workload without its Secret, derived values valid, no key silently a
no-op), or stop with exit 2 naming a `backups:` key path; never a traceback, never exit 3, and
never a secret in anything printed or written. Mutations: wrong types, deletions, unicode and
control characters, long strings, names made to collide, cron edge cases; and edits aimed at
the adoption and day-2 keys (identities, existing claims, recoveries, restores, mirrors,
databases, the web UI, places spelt two ways).

Cases are drawn from `random.Random(<case number>)`, nothing else: each case is the same
whatever ran before it. (Hypothesis, used before, seeds its text and number draws with the
constants of every local module imported so far, so the cases changed with the tests that ran
first: 9 of 300 rendered in the whole suite, 16 alone.)
"""

from __future__ import annotations

import copy
import functools
import json
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import KubernetesSettings
from tools.offline import stack_file

from . import conformance, render_properties
from .conftest import CRDS_DIR, run_preview

#: Planted in every secret slot of every stack: it must never come out.
PLANTED = "planted-s3cret-value-8f2c"
STACKS = [stack_file("dev"), *sorted(Path(__file__).parent.parent.joinpath("examples").glob("Pulumi.*.yaml"))]
SECRET_KEYS = {"password", "passphrase", "accessKeyId", "secretAccessKey"}
DEFAULT_VERSION = KubernetesSettings().version


def _minor(version: str) -> int:
    return int(version.split(".")[1])


def _plant(value: Any) -> Any:
    """The stack's config with every secret value (and `secure:` block) replaced by PLANTED."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return PLANTED
        return {k: (PLANTED if k in SECRET_KEYS and not isinstance(v, dict) else _plant(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_plant(v) for v in value]
    return value


def _documents() -> list[dict[str, Any]]:
    documents = []
    for path in STACKS:
        document = yaml.safe_load(path.read_text())
        config = {k: _plant(v) for k, v in document["config"].items()}
        if not isinstance(config.get("backups:password"), dict):  # an external one stays external
            config["backups:password"] = PLANTED
        documents.append({**document, "config": config})
    return documents


DOCUMENTS = _documents()
#: Cases per run; about a third are the aimed edits.
CASES = 300
ODD_TEXT = [
    "", " ", "radarr\n", "a" * 70, "A", "ü", "😀", "\x00", "\t", "a\"b", "a'b", "${x}", "$(id)", "../x",
    "a-b", "b-c", "c", "nas", "b2", "media", "restore-drill", "kopia-maintenance", "ceph-filesystem",
    "with space", "1.35", "-1", "0", "9007199254740993", "2026-02-30T25:61:61Z", "2026-01-14T13:00:00+01:00",
]
ODD_CRON = [
    "H/0 * * * *", "0 0 31 2 *", "0 H(0-100) * * *", "0 H(20-30) * * *", "0 0 L * *", "0 0 * * MON", "0 0 * * 1#1",
    "0 0 3 * * *", "*/0 * * * *", "59 23 31 12 6", "H H * * *", "H/7 H(1-3) * * 1-5", "hourly", "daily", "weekly", "",
    "0 0 31 2 0-6", "0 0 31 2 */1",
]
ODD_TIMES = [
    "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "0999-06-01T00:00:00Z", "2024-02-29T12:00:00+14:00",
    "2026-02-29T00:00:00Z", "1970-01-01T00:00:00Z", "2026-01-14T13:00:00.5+01:00", "2026-01-14 13:00:00Z",
]
ODD_HOSTS = ["Kopia.home.example", "kopia.home.example.", "192.168.1.10", "*.home.example", "kopia.home.example", "-x.y"]
ODD_IDENTITIES = ["a@b@c", "@", "x@y", "radarr@media", "radarr-nas@media", "atuin-src@default", "a\x01@b", "A_b.c@D-e"]


def _scalar(rng: random.Random) -> Any:
    kind = rng.randrange(7)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([-3, -1, 0, 1, 2, 7, 2**31, 2**40])
    if kind == 2:
        return rng.choice([0.5, -0.0, float("inf"), float("nan"), 1e308])
    if kind == 3:
        return rng.choice(ODD_CRON)
    if kind == 4:
        return "".join(rng.choice("aZ-._@:/ü\x00 9") for _ in range(rng.randrange(9)))
    return rng.choice(ODD_TEXT)


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6) if depth < 2 else 0
    if kind == 4:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 5:
        return {rng.choice(ODD_TEXT): _value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return _scalar(rng)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _mutate_anywhere(rng: random.Random, config: dict[str, Any]) -> None:
    path = rng.choice([p for p in _paths(config) if p])
    parent: Any = config
    for step in path[:-1]:
        parent = parent[step]
    action = rng.choice(["replace", "delete", "duplicate", "duplicate", "cron", "rename", "rename"])
    if action == "delete" and len(path) > 1:
        del parent[path[-1]]
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[path[-1]]))  # collisions: the same entry twice
    elif action == "cron":
        parent[path[-1]] = rng.choice(ODD_CRON)
    elif action == "rename" and isinstance(parent, dict) and "name" in parent:
        parent["name"] = rng.choice(["a", "a-b", "b-c", "c", "x" * 60, "restore-drill", "kopia-maintenance"])
    else:
        parent[path[-1]] = _value(rng)


# -- the aimed edits: each takes the config and changes one adoption or day-2 key ----------------


def _list(config: dict[str, Any], key: str) -> list[Any]:
    value = config.get(f"backups:{key}")
    if not isinstance(value, list):
        value = config[f"backups:{key}"] = []
    return value


def _respelt(rng: random.Random, repo: dict[str, Any]) -> dict[str, Any]:
    """The same place, spelt another way (or a path inside it)."""
    twin = copy.deepcopy(repo)
    twin["name"] = f"{repo.get('name', 'r')}-twin"[:63]
    twin["primary"] = False
    twin.pop("mirrorTo", None)
    if isinstance(twin.get("nfs"), dict):
        twin["nfs"]["server"] = rng.choice([str(twin["nfs"].get("server", "")).upper(), f"{twin['nfs'].get('server')}."])
        twin["nfs"]["path"] = rng.choice([f"{twin['nfs'].get('path')}/", f"/{twin['nfs'].get('path')}", f"{twin['nfs'].get('path')}/sub"])
    elif isinstance(twin.get("s3"), dict):
        endpoint = str(twin["s3"].get("endpoint", ""))
        twin["s3"]["endpoint"] = rng.choice([endpoint.upper(), f"{endpoint}:443", f"https://{endpoint}/"])
    if rng.random() < 0.5:
        twin["password"] = PLANTED
    return twin


def _twin_repository(rng: random.Random, config: dict[str, Any]) -> None:
    repos = _list(config, "repositories")
    if repos and isinstance(repos[0], dict):
        repos.append(_respelt(rng, rng.choice([r for r in repos if isinstance(r, dict)])))


def _database_bucket(rng: random.Random, config: dict[str, Any]) -> None:
    repos = [r for r in _list(config, "repositories") if isinstance(r, dict) and isinstance(r.get("s3"), dict)]
    if not repos:
        return
    repo = rng.choice(repos)
    databases = _list(config, "databases")
    if not databases or not isinstance(databases[0], dict):
        databases.append({"name": "postgres", "namespace": "database", "repositories": [repo.get("name")]})
    db = rng.choice([d for d in databases if isinstance(d, dict)] or [{}])
    choice = rng.randrange(3)
    if choice == 0:
        db["bucket"] = repo["s3"].get("bucket")  # the Kopia repository's own bucket
    elif choice == 1:
        db.pop("bucket", None)
        db["name"] = rng.choice(["pg", "ab", str(repo["s3"].get("bucket"))[:63]])  # the default bucket is the name
    else:
        databases.append({**copy.deepcopy(db), "namespace": "other"})  # a second database, the same bucket


def _app(rng: random.Random, config: dict[str, Any]) -> dict[str, Any] | None:
    apps = [a for a in _list(config, "apps") if isinstance(a, dict)]
    return rng.choice(apps) if apps else None


def _identity(rng: random.Random, config: dict[str, Any]) -> None:
    app, other = _app(rng, config), _app(rng, config)
    if app is not None:
        app["identity"] = rng.choice([*ODD_IDENTITIES, f"{(other or {}).get('name')}@{(other or {}).get('namespace')}"])
        if rng.random() < 0.3:
            app["allowIdentityChange"] = True


def _existing_claim(rng: random.Random, config: dict[str, Any]) -> None:
    app = _app(rng, config)
    if app is not None:
        app.pop("claimName", None)
        app["existingClaim"] = rng.choice([f"{app.get('name')}-config", "data", "Data", "x" * 254])
        if rng.random() < 0.5:
            _list(config, "recoveries").append({"namespace": app.get("namespace"), "previous": 1})


def _recovery(rng: random.Random, config: dict[str, Any]) -> None:
    app = _app(rng, config)
    namespace = app.get("namespace") if app and rng.random() < 0.8 else rng.choice(ODD_TEXT)
    point = rng.choice([{"restoreAsOf": rng.choice(ODD_TIMES)}, {"previous": rng.choice([0, 1, -1, 2**31])}, {}])
    _list(config, "recoveries").append({"namespace": namespace, **point})


def _restore(rng: random.Random, config: dict[str, Any]) -> None:
    app, other = _app(rng, config), _app(rng, config)
    if app is not None:
        app["restore"] = rng.choice([
            {"restoreAsOf": rng.choice(ODD_TIMES)}, {"previous": rng.choice([0, 3, -1])},
            {"from": {"namespace": (other or {}).get("namespace"), "app": (other or {}).get("name")}},
            {"identity": rng.choice(ODD_IDENTITIES)}, {"previous": 1, "restoreAsOf": ODD_TIMES[3]},
        ])


def _mirror(rng: random.Random, config: dict[str, Any]) -> None:
    repos = [r for r in _list(config, "repositories") if isinstance(r, dict)]
    if repos:
        repo = rng.choice(repos)
        if rng.random() < 0.6:
            repo["mirrorTo"] = rng.choice(repos).get("name")
        else:
            repo.pop("mirrorTo", None)
            repo["mirror"] = {"suspend": rng.choice([True, False])}


def _web_ui(rng: random.Random, config: dict[str, Any]) -> None:
    repos = [r for r in _list(config, "repositories") if isinstance(r, dict)]
    if repos:
        ui = {"ingress": {"host": rng.choice(ODD_HOSTS), "tlsSecret": "kopia-tls"}}
        if rng.random() < 0.7:
            ui |= {"enabled": True, "password": rng.choice([PLANTED, {"externalSecret": {"store": "vault", "key": "backups", "property": "password"}}])}
        rng.choice(repos)["ui"] = ui


def _backup_now(rng: random.Random, config: dict[str, Any]) -> None:
    app = _app(rng, config)
    if app is not None:
        app[rng.choice(["backupNow", "recreateClaim"])] = rng.choice([2, 0, -1, True, "2026-12-01", "a b", 2**40])


AIMED = [_twin_repository, _database_bucket, _identity, _existing_claim, _recovery, _restore, _mirror, _web_ui,
         _backup_now]


def mutated_stack(case: int) -> dict[str, Any]:
    """Case `case`: a shipped stack with one to three edits, from `random.Random(case)` alone."""
    rng = random.Random(case)
    document = copy.deepcopy(rng.choice(DOCUMENTS))
    config = document["config"]
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.35:
            rng.choice(AIMED)(rng, config)
        else:
            _mutate_anywhere(rng, config)
    return document


@functools.cache
def _conformance(manifest: str, version: str) -> tuple[str, ...]:
    """Conformance of one manifest (as JSON text): most of a mutated stack's objects are the
    unmutated stack's, so each distinct one is judged once (the verdict is the same either way)."""
    return tuple(conformance.problems(json.loads(manifest), CRDS_DIR, version))


def _judge(document: dict[str, Any], folder: Path) -> tuple[str, list[str]]:
    """('refused' | 'rendered' | 'unwritable', what is wrong) for one mutated stack."""
    path = folder / "Pulumi.fuzz.yaml"
    try:
        path.write_text(yaml.dump(document, Dumper=yaml.CSafeDumper, allow_unicode=True))
    except yaml.YAMLError:
        return "unwritable", []  # not writable as YAML at all: nothing a user could save
    render, report = folder / "render", folder / "report.json"
    result = run_preview("--config-file", str(path), "--render-dir", str(render), "--report", str(report))
    output = result.stdout + result.stderr
    wrong = []
    if "Traceback" in output or result.returncode not in (0, 1, 2):
        return "crashed", [f"exit {result.returncode}: {output[-2000:]}"]
    if PLANTED in output:
        wrong.append("a planted secret was printed")
    if result.returncode == 2:
        problems = [line.strip() for line in result.stderr.splitlines()[1:]] or [result.stderr]
        if not (result.stderr.startswith("error: ") and all(p.startswith("backups:") for p in problems if p)):
            wrong.append(f"refused without a key path: {result.stderr[:500]}")
        return "refused", wrong
    written = report.read_text() + "".join(p.read_text() for p in render.rglob("*.yaml"))
    if PLANTED in written:
        wrong.append("a planted secret was written")
    resources = json.loads(report.read_text())["resources"]
    urns = Counter((r["type"], r["parent"], r["name"]) for r in resources)
    wrong += [f"duplicate resource {k}" for k, n in urns.items() if n > 1]
    manifests = [yaml.load(p.read_text(), Loader=yaml.CSafeLoader) for p in render.rglob("*.yaml")]  # libyaml: the same data, faster
    objects = Counter((m.get("kind"), (m.get("metadata") or {}).get("namespace"), (m.get("metadata") or {}).get("name"))
                      for m in manifests)
    wrong += [f"duplicate object {k}" for k, n in objects.items() if n > 1]
    if CRDS_DIR.is_dir():
        # The schemas of the version the program rendered for: 1.36 for 1.36 and later (and for
        # no version given, the default), 1.35 for anything older that rendered at all.
        version = str((document["config"].get("backups:kubernetes") or {}).get("version", DEFAULT_VERSION))
        version = "1.36" if _minor(version) >= 36 else "1.35"
        wrong += [p for m in manifests for p in _conformance(json.dumps(m, sort_keys=True), version)]
    buckets = [r["inputs"]["bucket"] for r in resources if r["type"] == "aws:s3/bucket:Bucket"]
    wrong += render_properties.problems(manifests, buckets, output, document["config"])
    return "rendered", wrong


#: The cases in slices, so that `pytest -n` spreads them over the cores; each case depends on
#: its number alone, so a slice is the same cases however the suite is split or ordered.
SLICES = 6


@pytest.mark.parametrize("first", range(0, CASES, CASES // SLICES), ids=lambda n: f"cases-{n}")
def test_mutated_stacks_render_soundly_or_stop_with_a_key_path(first: int) -> None:
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    for case in range(first, first + CASES // SLICES):
        document = mutated_stack(case)
        with tempfile.TemporaryDirectory() as folder:
            outcome, wrong = _judge(document, Path(folder))
        outcomes[outcome] += 1
        failures += [f"case {case}: {w}" for w in wrong]
    print(f"fuzz {first}: {dict(outcomes)}")
    assert not failures, "\n".join(failures[:20])
    # A fuzzer that only ever got refused, or never, would prove little (of 50 cases, 41 to 46
    # refused and 4 to 9 rendered in each slice, when this was written).
    assert outcomes["refused"] > CASES // SLICES // 3 and outcomes["rendered"] > 0, outcomes


def test_the_cases_depend_on_their_number_alone():
    assert [mutated_stack(n) for n in (0, 7, 123)] == [mutated_stack(n) for n in (0, 7, 123)]
    assert mutated_stack(1) != mutated_stack(2)


def test_the_shipped_stacks_have_every_render_property():
    """The judge passes what it should pass: a property that fails the shipped stacks would make
    the fuzzer's verdicts noise."""
    for document in DOCUMENTS:
        with tempfile.TemporaryDirectory() as folder:
            outcome, wrong = _judge(document, Path(folder))
        assert (outcome, wrong) == ("rendered", []), (document.get("config", {}).get("backups:repositories"), wrong)
