"""Mutation fuzzing of the example stacks through the offline preview, as a user runs it.

Every mutated stack must either render (exit 0 or 1) objects with unique names that pass the
conformance checks, or stop with exit 2 naming a `backups:` key path; never a traceback, never
exit 3, and never a secret in anything printed or written. Mutations: wrong types, deletions,
unicode and control characters, long strings, names made to collide, cron edge cases.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.offline import stack_file

from . import conformance
from .conftest import CRDS_DIR, run_preview

#: Planted in every secret slot of every stack: it must never come out.
PLANTED = "planted-s3cret-value-8f2c"
STACKS = [stack_file("dev"), *sorted(Path(__file__).parent.parent.joinpath("examples").glob("Pulumi.*.yaml"))]
SECRET_KEYS = {"password", "passphrase", "accessKeyId", "secretAccessKey"}


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
        config["backups:password"] = PLANTED
        documents.append({**document, "config": config})
    return documents


DOCUMENTS = _documents()
ODD_TEXT = st.sampled_from([
    "", " ", "radarr\n", "a" * 70, "A", "ü", "😀", "\x00", "\t", "a\"b", "a'b", "${x}", "$(id)", "../x",
    "a-b", "b-c", "c", "nas", "b2", "media", "restore-drill", "kopia-maintenance", "ceph-filesystem",
    "with space", "1.35", "-1", "0", "9007199254740993", "2026-02-30T25:61:61Z", "2026-01-14T13:00:00+01:00",
])
ODD_CRON = st.sampled_from([
    "H/0 * * * *", "0 0 31 2 *", "0 H(0-100) * * *", "0 H(20-30) * * *", "0 0 L * *", "0 0 * * MON", "0 0 * * 1#1",
    "0 0 3 * * *", "*/0 * * * *", "59 23 31 12 6", "H H * * *", "H/7 H(1-3) * * 1-5", "hourly", "daily", "weekly", "",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(allow_nan=True), ODD_TEXT, ODD_CRON,
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3), max_leaves=5
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated_stacks(draw: st.DrawFn) -> dict[str, Any]:
    document = copy.deepcopy(draw(st.sampled_from(DOCUMENTS)))
    config = document["config"]
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(config) if len(p) > 0]
        path = draw(st.sampled_from(paths))
        parent: Any = config
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "duplicate", "duplicate", "cron", "rename", "rename"]))
        if action == "delete" and len(path) > 1:
            del parent[path[-1]]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))  # collisions: the same entry twice
        elif action == "cron":
            parent[path[-1]] = draw(ODD_CRON)
        elif action == "rename" and isinstance(parent, dict) and "name" in parent:
            parent["name"] = draw(st.sampled_from(["a", "a-b", "b-c", "c", "x" * 60, "restore-drill", "kopia-maintenance"]))
        else:
            parent[path[-1]] = draw(VALUES)
    return document


RESULTS: Counter[str] = Counter()


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(mutated_stacks())
def test_mutated_stacks_render_soundly_or_stop_with_a_key_path(tmp_path_factory, document):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "Pulumi.fuzz.yaml"
    try:
        path.write_text(yaml.safe_dump(document, allow_unicode=True))
    except yaml.YAMLError:
        return  # not writable as YAML at all: nothing a user could save
    render, report = folder / "render", folder / "report.json"
    result = run_preview("--config-file", str(path), "--render-dir", str(render), "--report", str(report))
    output = result.stdout + result.stderr
    assert "Traceback" not in output and result.returncode in (0, 1, 2), output
    assert PLANTED not in output
    if result.returncode == 2:
        RESULTS["refused"] += 1
        problems = [line.strip() for line in result.stderr.splitlines()[1:]] or [result.stderr]
        assert result.stderr.startswith("error: ") and all(p.startswith("backups:") for p in problems if p), result.stderr
        return
    RESULTS["rendered"] += 1
    written = report.read_text() + "".join(p.read_text() for p in render.rglob("*.yaml"))
    assert PLANTED not in written
    resources = json.loads(report.read_text())["resources"]
    urns = Counter((r["type"], r["parent"], r["name"]) for r in resources)
    assert max(urns.values()) == 1, [k for k, n in urns.items() if n > 1]
    manifests = [yaml.safe_load(p.read_text()) for p in render.rglob("*.yaml")]
    objects = Counter((r["inputs"].get("kind"), r["inputs"].get("metadata", {}).get("namespace"),
                       r["inputs"].get("metadata", {}).get("name"))
                      for r in resources if r["type"].startswith("kubernetes:") and "kind" in r["inputs"])
    assert max(objects.values(), default=1) == 1, [k for k, n in objects.items() if n > 1]
    if CRDS_DIR.is_dir():
        version = str((document["config"].get("backups:kubernetes") or {}).get("version", "1.35"))
        version = version if version in ("1.35", "1.36") else "1.35"
        assert [p for m in manifests for p in conformance.problems(m, CRDS_DIR, version)] == []


def test_the_fuzzer_reached_both_outcomes():
    """Runs after the fuzz test (pytest keeps file order): a fuzzer that only ever got refused,
    or never, would prove little."""
    print(f"fuzz: {dict(RESULTS)}")
    assert RESULTS["refused"] > 10 and RESULTS["rendered"] >= 5, RESULTS
