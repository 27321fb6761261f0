"""The README against the program: every YAML example is accepted config (but the kube-state-metrics
values, which must be what the failed-backup alert reads), every command names a real target, tool
and option, and "What it builds" is the render. The next drift fails here.

(The engine's own command block is run as written by tests/e2e/test_engine.py.)
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import cnpg_backups
from components.config import stack_config_of
from components.plan import plan_stack
from tools.offline import load_stack_file, run_program, stack_file
from tools.pin_schedules import current_pins

from .conftest import PROJECT_DIR, dev_config, run_config

README = (PROJECT_DIR / "README.md").read_text()
EXAMPLES = sorted((PROJECT_DIR / "examples").glob("Pulumi.*.yaml"))
_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.M | re.S)
_CONTEXT = re.compile(r"<!-- example stack: (\S+) -->\s*$")
#: A YAML block that is not stack config: kube-state-metrics' Helm values for the failed-backup alert.
KSM_MARK = "<!-- kube-state-metrics values -->"


def _line_before(match: re.Match[str]) -> str:
    """The last non-blank line before a fenced block: where its marker comment goes."""
    return README[:match.start()].rstrip("\n ").rsplit("\n", 1)[-1].strip()


def blocks(language: str) -> Iterator[tuple[str, str, str]]:
    """(heading, context stack or "", text) of every fenced block in `language`, but the
    kube-state-metrics values."""
    for match in _FENCE.finditer(README):
        if match.group(2) != language or _line_before(match) == KSM_MARK:
            continue
        heading = re.findall(r"^#+ (.+)$", README[:match.start()], re.M)[-1]
        context = _CONTEXT.search(_line_before(match))
        yield heading, context.group(1) if context else "", textwrap.dedent(match.group(3))


def kube_state_metrics_values() -> dict[str, Any]:
    """The README's kube-state-metrics Helm values (the one block after KSM_MARK)."""
    (match,) = [m for m in _FENCE.finditer(README) if _line_before(m) == KSM_MARK]
    return dict(yaml.safe_load(textwrap.dedent(match.group(3)))["kube-state-metrics"])


def section(heading: str) -> str:
    return README.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


# -- YAML examples: accepted config ---------------------------------------------------------------

def _config_of(path: str) -> dict[str, Any]:
    document = yaml.safe_load((PROJECT_DIR / path).read_text())
    return {k.split(":", 1)[1]: v for k, v in document["config"].items()}


EXAMPLE_BLOCKS = [b for b in blocks("yaml") if yaml.safe_load(b[2])]


@pytest.mark.parametrize("heading, context, text", EXAMPLE_BLOCKS, ids=[b[0] for b in EXAMPLE_BLOCKS])
def test_every_yaml_example_is_config_the_program_accepts(heading: str, context: str, text: str) -> None:
    keys = yaml.safe_load(text)
    assert all(key.startswith("backups:") for key in keys), keys
    base = _config_of(context) if context else dev_config()
    config = {**base, **{key.split(":", 1)[1]: value for key, value in keys.items()}}
    run = run_config(config)  # raises ConfigError, with every problem, if the example is not config
    assert run.registrations


def test_the_kube_state_metrics_values_are_what_the_failed_backup_alert_reads() -> None:
    # The alert's metric names and labels come from components/cnpg_backups.py; the README's copy
    # is what users paste, and what tests/e2e/test_backup_objects.py runs kube-state-metrics with.
    values = kube_state_metrics_values()
    assert values["customResourceState"] == {"enabled": True, "config": cnpg_backups.kube_state_metrics_config()}
    assert values["rbac"] == {"extraRules": cnpg_backups.kube_state_metrics_rules()}
    # The alert reads the objects' `namespace`, which a scrape without honorLabels renames.
    assert values["prometheus"] == {"monitor": {"honorLabels": True}}


def test_the_sample_pins_are_what_make_pin_schedules_writes_for_the_dev_stack() -> None:
    (sample,) = [yaml.safe_load(t)["backups:schedulePins"] for _, _, t in EXAMPLE_BLOCKS if "backups:schedulePins" in t]
    values, _, _ = load_stack_file(stack_file("dev"))
    pins = current_pins(plan_stack(stack_config_of(values)))
    assert sample and {key: pins.get(key) for key in sample} == sample
    kinds = {key.rsplit(":", 1)[1] if ":" in key else "backup" for key in sample}
    assert kinds == {key.rsplit(":", 1)[1] if ":" in key else "backup" for key in pins}  # one of each kind


def test_the_sample_error_is_what_the_preview_prints(tmp_path: Path) -> None:
    (sample,) = [t for _, _, t in blocks("") if t.startswith("error: invalid stack config")]
    stack = tmp_path / "Pulumi.lab.yaml"
    document = yaml.safe_load(stack_file("dev").read_text())
    document["config"]["backups:apps"] = [{"name": "radarr", "namespace": "media", "capacity": "10Gx", "capacty": "5Gi"}]
    stack.write_text(yaml.safe_dump(document))
    result = subprocess.run([sys.executable, "-m", "tools.preview", "--config-file", str(stack)],
                            cwd=PROJECT_DIR, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr == sample, result.stderr


# -- commands: real targets, tools and options ---------------------------------------------------

def _commands() -> Iterator[str]:
    for _, _, text in blocks("sh"):
        for line in text.replace("\\\n", " ").splitlines():
            if line.strip():
                yield line.split(" # ")[0].split("  #")[0].strip()
    yield from re.findall(r"`((?:\.venv/bin/)?python -m tools\.[^`]+)`", README)
    yield from re.findall(r"`(make [a-z-]+[^`]*)`", README)


COMMANDS = sorted(set(_commands()))
_TARGETS = set(re.findall(r"^([a-z][a-z0-9-]*):", (PROJECT_DIR / "Makefile").read_text(), re.M))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_names_a_real_target_tool_and_option(command: str) -> None:
    for part in re.split(r"\s*(?:&&|\|\|)\s*", command):
        words = shlex.split(part.replace("[", " ").replace("]", " ").replace("|", " "))
        if words[0] == "make":
            assert set(w for w in words[1:] if "=" not in w) <= _TARGETS, part
        elif words[:2] == ["python", "-m"] or words[1:2] == ["-m"]:
            module = words[2]
            spec = importlib.util.find_spec(module)
            assert spec is not None and spec.origin, part
            options = set(re.findall(r"""add_argument\(\s*["'](--[a-z-]+)""", Path(spec.origin).read_text()))
            if module == "tools.engine":  # its options live in the package's command module
                options |= {o for f in Path(spec.origin).parent.glob("*.py")
                            for o in re.findall(r"""["'](--[a-z-]+)["']""", f.read_text())}
            assert {w.split("=")[0] for w in words[3:] if w.startswith("--")} <= options, part
        else:
            assert words[0] in {"pulumi", "kubectl", "export", "git"}, part  # other people's tools


def test_the_layout_names_every_module_and_folder() -> None:
    (layout,) = [t for h, _, t in blocks("") if h == "Layout"]
    for entry in re.findall(r"^([\w./-]+)/\s", layout, re.M):
        assert (PROJECT_DIR / entry).is_dir(), entry
    words = set(re.findall(r"[\w]+", layout))
    for folder in ("components", "components/config", "tools", "policies/backup_policies"):
        for module in (PROJECT_DIR / folder).glob("*.py"):
            assert module.stem == "__init__" or module.stem in words, f"{folder}/{module.name} is not in the Layout"


# -- What it builds: the render ------------------------------------------------------------------

def _feature_stack() -> dict[str, Any]:
    """nfs-b2-r2 plus what no shipped stack uses: a restore, a recreated claim, a backup now, a
    database's encryption passphrase (plain and external), a web UI in the clear."""
    config = _config_of("examples/Pulumi.nfs-b2-r2.yaml")
    apps = [dict(a) for a in config["apps"]]
    apps[0].update(restore={"previous": 1})
    apps[1].update(recreateClaim="2026-12-02", backupNow="2026-12-02")
    databases = [dict(d) for d in config["databases"]]
    databases[0]["encryption"] = {"passphrase": "readme-test-passphrase"}
    databases[1]["encryption"] = {"passphrase": {"externalSecret": {"store": "vault", "key": "pgbackrest"}}}
    repositories = [dict(r) for r in config["repositories"]]
    repositories[0]["ui"] = {"enabled": True, "password": "readme-test-login"}
    return {**config, "apps": apps, "databases": databases, "repositories": repositories}


def _kopiur_feature_stack() -> dict[str, Any]:
    """The feature stack on Kopiur."""
    return {**_feature_stack(), "mover": "kopiur"}


@functools.cache
def _runs() -> tuple[tuple[Any, Any], ...]:
    """(run, config) of the dev stack, every example and the feature stack."""
    runs = []
    for path in [stack_file("dev"), *EXAMPLES]:
        values, secret_keys, _ = load_stack_file(path)
        runs.append((run_program(values, secret_keys, stack=path.stem.split(".", 1)[1]), stack_config_of(values)))
    for features in (_feature_stack(), _kopiur_feature_stack(), _plain_database_stack()):
        runs.append((run_config(features), stack_config_of({f"backups:{k}": v for k, v in features.items()})))
    return tuple(runs)


def _plain_database_stack() -> dict[str, Any]:
    """The dev stack with a B2 repository whose keys are plain config, and a managed database on
    it that recovers from that repository alone."""
    b2 = {"name": "b2", "backend": "b2", "primary": False,
          "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "homelab-readme"},
          "credentials": {"accessKeyId": "readme-key-id", "secretAccessKey": "readme-secret-key"}}
    config = dev_config()
    database = {"name": "postgres18", "namespace": "database", "repositories": ["b2"], "manageCluster": True,
                "recovery": {"repository": "b2"}}
    return {**config, "repositories": [*config["repositories"], b2], "databases": [database]}


def _templated(kind: str, name: str, config: Any) -> str:
    """A rendered name with the config's own names put back as the README's placeholders."""
    names = [(a.claim_name or a.existing_claim, "<claim>") for a in config.apps
             if (a.claim_name or a.existing_claim) not in (None, a.name)]
    names += [(a.name, "<app>") for a in config.apps] + [(r.name, "<repo>") for r in config.repositories]
    names += [(d.name, "<db>") for d in config.databases]
    if kind == "PersistentVolume":
        names += [(n, "<namespace>") for n in {a.namespace for a in config.apps} | {r.maintenance.namespace for r in config.repositories}]
    for value, placeholder in sorted(names, key=lambda n: -len(n[0])):
        name = re.sub(rf"(?<![a-z0-9<]){re.escape(value)}(?![a-z0-9>])", placeholder, name)
    name = re.sub(r"-bootstrap-[a-z0-9]+$", "-bootstrap-<generation>", name)
    # Kopiur's one-off objects carry what they run for: a request's digest, a token's.
    if kind == "Restore":
        name = re.sub(r"-restore-[0-9a-f]{8}$", "-restore-<request>", name)
    return re.sub(r"-now-[0-9a-f]{8}$", "-now-<token>", name) if kind == "Snapshot" else name


def _rendered() -> set[tuple[str, str]]:
    return {(r.inputs["kind"], _templated(r.inputs["kind"], r.inputs["metadata"]["name"], config))
            for run, config in _runs() for r in run.registrations
            if r.type.startswith("kubernetes:") and "kind" in r.inputs}


def _table() -> set[tuple[str, str]]:
    rows = set()
    for line in section("## What it builds").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not line.startswith("| ") or len(cells) != 4 or cells[0] in ("kind", "---"):
            continue
        kinds = [k.strip() for k in re.split(r",| or ", cells[0].replace("(+ Binding)", "")) if k.strip()]
        if "(+ Binding)" in cells[0]:
            kinds += [f"{k}Binding" for k in kinds]
        names = [n.replace("<target>", "<repo>") for n in re.findall(r"`([^`]+)`", cells[1]) if "<" in n or "-" in n]
        rows |= {(kind, name) for kind in kinds for name in names}
    return rows


def test_what_it_builds_lists_every_object_the_program_makes_and_nothing_else() -> None:
    made, table = _rendered(), _table()
    assert len(made) > 25
    assert sorted(made - table) == [], "made but not in the README's table"
    assert sorted(table - made) == [], "in the README's table but never made"


def test_the_diagram_names_every_component() -> None:
    (diagram,) = [t for _, _, t in blocks("mermaid")]
    registrations = [r for run, _ in _runs() for r in run.registrations]
    components = {r.type.rsplit(":", 1)[1] for r in registrations if r.type.startswith("backups:")}
    words = set(re.findall(r"[A-Za-z]+", diagram))
    assert len(components) >= 9 and sorted(components - words) == []
    kinds = {r.inputs["kind"] for r in registrations if "kind" in r.inputs}
    known = kinds | components
    camel = {w for w in words if re.fullmatch(r"(?:[A-Z][a-z]+){2,}", w)}
    singular = {w: w[:-3] + "y" if w.endswith("ies") else w.removesuffix("s") for w in camel}
    assert sorted(w for w, one in singular.items() if w not in known and one not in known) == []


# -- the config table: every key the models take ------------------------------------------------

def _config_rows() -> dict[str, str]:
    rows = {}
    for line in section("## Configuration").splitlines():
        match = re.match(r"\| `backups:(\w+)` \| (.*) \|", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def _model_of(annotation: Any) -> Any:
    """The model a field holds: itself, a tuple's item, an Optional's argument."""
    from pydantic import BaseModel
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def test_the_config_table_names_every_key_of_every_model() -> None:
    from pydantic.alias_generators import to_camel

    from components.config import StackConfig
    from components.names import JobKind
    rows = _config_rows()
    assert set(rows) == {to_camel(f) for f in StackConfig.model_fields}, sorted(rows)
    missing = []
    for field, info in StackConfig.model_fields.items():
        model = _model_of(info.annotation)
        if model is not None:
            words = set(re.findall(r"\w+", rows[to_camel(field)]))
            missing += [f"{to_camel(field)}.{to_camel(f)}" for f in model.model_fields if to_camel(f) not in words]
    assert missing == []
    pins = rows["schedulePins"]
    assert all(f":{kind.value}`" in pins for kind in JobKind if kind is not JobKind.BACKUP), pins
    version = StackConfig.model_fields["kubernetes"].default.version
    assert f'`version` (`"{version}"`:' in rows["kubernetes"]
