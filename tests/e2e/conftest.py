"""Fixtures of the real-component tests: the built engine, and the program's render of a stack.

Nothing here skips: a real-component test that cannot run fails, saying why (`make engine`
not run, ../shared missing, no root for mount namespaces).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.offline import revealed

from .engine import kubernetes_objects
from .mover import ENGINE_BIN, ENTRY_SH

STACKS = Path(__file__).parent / "stacks"
KOPIA_VERSION = "0.22.3"  # what the fork's v0.17.11 mover image ships (../shared/volsync-mover/SOURCES.md)


@pytest.fixture(scope="session")
def engine() -> Path:
    """.engine/bin with Kopia at the mover image's version; fails with the reason otherwise."""
    kopia = ENGINE_BIN / "kopia"
    if not kopia.exists():
        pytest.fail(f"{kopia} is missing: run `make engine` (or `make e2e`, which builds it first)")
    version = subprocess.run([str(kopia), "--version"], capture_output=True, text=True).stdout
    if not version.startswith(KOPIA_VERSION + " "):
        pytest.fail(f"{kopia} is {version.strip()!r}, not Kopia {KOPIA_VERSION}: run `make engine`")
    if not ENTRY_SH.is_file():
        pytest.fail(f"the fork's mover script is missing at {ENTRY_SH}: the tests need ../shared beside the project")
    if os.geteuid() != 0:
        pytest.fail("the mover tests need root: they run each mover in a mount namespace under the Job's uid")
    for tool in ("unshare", "chroot", "setpriv", "jq"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: the mover script or its harness needs it")
    return ENGINE_BIN


Objects = dict[tuple[str, str, str], dict[str, Any]]




def render(stack: str, **changes: Any) -> Objects:
    """Every Kubernetes object the program registers for tests/e2e/stacks/Pulumi.<stack>.yaml with
    `backups:<key>` replaced by `changes`, as `pulumi up` would send them (secrets in the clear:
    these are the values a Job would get), keyed by (kind, namespace, name)."""
    overrides = {f"backups:{key}": v if isinstance(v, str) else json.dumps(v) for key, v in changes.items()}
    return {key: revealed(inputs) for key, inputs in kubernetes_objects(STACKS / f"Pulumi.{stack}.yaml", stack, overrides).items()}


def stack_config(stack: str) -> dict[str, Any]:
    """The `backups:*` keys of a test stack, as data."""
    document = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())
    return {k.split(":", 1)[1]: v for k, v in document["config"].items()}


def secret_of(objects: Objects, namespace: str, name: str) -> dict[str, str]:
    """The data of a Secret the program renders (stringData), as the Job's environment gets it."""
    return dict(objects[("Secret", namespace, name)]["stringData"])


@pytest.fixture
def folders(tmp_path: Path) -> Callable[[str], Path]:
    """Host folders standing for volumes, world-traversable so the Job's uid can reach its mount."""
    os.chmod(tmp_path, 0o755)

    def make(name: str) -> Path:
        path = tmp_path / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    return make
