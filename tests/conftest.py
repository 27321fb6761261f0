"""Shared helpers: run the real program under mocks with a given config, and find things in it."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from tools.offline import ProgramRun, Registration, load_stack_file, run_program, stack_file

PROJECT_DIR = Path(__file__).resolve().parent.parent

CRDS_DIR = PROJECT_DIR.parent / "shared" / "crds"

#: Where the Python processes the tests start keep their bytecode (see pytest_configure).
PYCACHE = PROJECT_DIR / ".venv" / "pycache"


def pytest_configure(config: pytest.Config) -> None:
    """Every Python process a test starts (a preview, pr_diff's, the engine's policy pack and
    dynamic provider) reuses the bytecode the first one compiled. This machine sets
    PYTHONDONTWRITEBYTECODE, so each would compile the SDKs it imports again: a preview
    subprocess took 4.2 s that way, 1.9 s with the cache. The cache sits in the virtualenv (not
    beside any source) and Python checks each entry against its source, so a stale one is
    recompiled, never run; what a test sees is the same either way."""
    os.environ["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def dev_config() -> dict[str, Any]:
    """The `backups:*` keys of the dev stack as Python data (namespace stripped)."""
    document = yaml.safe_load(stack_file("dev").read_text())
    return {k.split(":", 1)[1]: v for k, v in document["config"].items()}


def program_run(config: Mapping[str, str], secret_keys: Sequence[str], preview: bool = True) -> ProgramRun:
    """`run_program` for the tests that read what a config registers: each (config, secret keys,
    preview) runs once per test process, and each caller gets a copy of its own, so no test sees
    another's edits and none depends on which ran first. The program reads nothing but its
    config, so the copy is what a fresh run would register (a third of the suite's runs were
    repeats: 23 of its 62 s in runs). A run that raises is not kept: it raises again for each
    caller. Tests of the run itself (tests/test_offline.py: isolation, a failing run before a
    clean one) make runs of their own (`run_config(..., fresh=True)`)."""
    return copy.deepcopy(_program_run(tuple(sorted(config.items())), tuple(secret_keys), preview))


@functools.cache
def _program_run(config: tuple[tuple[str, str], ...], secret_keys: tuple[str, ...], preview: bool) -> ProgramRun:
    return run_program(dict(config), list(secret_keys), preview=preview)


def run_config(backups: dict[str, Any], preview: bool = True, secret_keys: Optional[list[str]] = None,
               fresh: bool = False) -> ProgramRun:
    """Run the program with these `backups:*` keys, passed the way the engine passes config
    (`program_run`'s copy, or with `fresh` a run of its own: for the tests of the run itself)."""
    config = {f"backups:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in backups.items()}
    return (run_program if fresh else program_run)(config, secret_keys or [], preview=preview)


def with_changes(**changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(dev_config())
    config.update(changes)
    return config


def of_kind(run: ProgramRun, kind: str) -> list[Registration]:
    return [r for r in run.registrations if r.type.endswith(f":{kind}") and r.custom]


def named(run: ProgramRun, kind: str, namespace: str, name: str) -> Registration:
    matches = [
        r for r in of_kind(run, kind)
        if r.inputs["metadata"].get("namespace") == namespace and r.inputs["metadata"]["name"] == name
    ]
    assert len(matches) == 1, f"expected one {kind} {namespace}/{name}, found {len(matches)}"
    return matches[0]


@pytest.fixture(scope="session")
def dev_run() -> ProgramRun:
    config, secret_keys, _ = load_stack_file(stack_file("dev"))
    return run_program(config, secret_keys)


@pytest.fixture(scope="session")
def crds_dir() -> Path:
    if not CRDS_DIR.is_dir():
        pytest.skip(f"upstream CRDs not found at {CRDS_DIR}: conformance needs ../shared/crds")
    return CRDS_DIR


def registration(resource_type: str, manifest: dict, secret_fields: tuple[str, ...] = ()) -> Registration:
    """A registration as the engine would see it, for objects the program cannot be made to emit
    (a hand-written Secret, a PVC nothing backs up). Top-level `secret_fields` go on the wire as
    Pulumi secrets, exactly as the SDK sends Output.secret values."""
    from google.protobuf import json_format, struct_pb2

    from tools.offline import SECRET_SIG, SIG_KEY, decode

    wire_dict = {
        key: ({SIG_KEY: SECRET_SIG, "value": value} if key in secret_fields else value)
        for key, value in manifest.items()
    }
    wire = json_format.ParseDict(wire_dict, struct_pb2.Struct())
    name = manifest["metadata"]["name"]
    return Registration(
        urn=f"urn:pulumi:dev::homelab-backups::{resource_type}::{name}",
        type=resource_type, name=name, parent="", custom=True, protect=False,
        retain_on_delete=False, dependencies=[], wire=wire, inputs=decode(wire),
    )


def run_preview(*args: str) -> subprocess.CompletedProcess:
    """`python -m tools.preview ARGS` in this process (a subprocess costs ~1.5 s of imports):
    same exit code and output. tests/test_preview_cli.py keeps one true subprocess run."""
    from tools import preview

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = preview.main(list(args))
    return subprocess.CompletedProcess(["tools.preview", *args], code, out.getvalue(), err.getvalue())
