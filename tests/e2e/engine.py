"""A Pulumi project of the test's own for the real engine: the project's program, a stack file
written by the test, state and secrets of its own, every command as a user runs it.

The program is always the project's `__main__.py` (tools.engine runs it); only Pulumi.yaml and
the stack file live in the test's folder, so nothing the tests do touches the project's stacks
or `.engine/state`.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.engine import BIN, PROJECT_DIR, engine_env, missing_binaries, project_beside
from tools.offline import load_stack_file, run_program

#: The passphrase of the test stacks' secrets provider (the state and stack files are the test's).
PASSPHRASE = "e2e-engine-passphrase"


ObjectKey = tuple[str, str, str]


def kubernetes_objects(stack_file: Path, stack: str, overrides: dict[str, str] | None = None) -> dict[ObjectKey, Any]:
    """Every Kubernetes object the offline program registers for a stack file (with `overrides`,
    `namespace:key` -> the engine's value text), as `pulumi up` sends it: keyed by (kind,
    namespace, name), secret values still marked (tools.offline.Secret)."""
    config, secret_keys, _ = load_stack_file(stack_file)
    config.update(overrides or {})
    run = run_program(config, secret_keys, stack=stack, preview=False)
    objects = {}
    for registration in run.registrations:
        if registration.type.startswith("kubernetes:") and "kind" in registration.inputs:
            meta = registration.inputs["metadata"]
            objects[(registration.inputs["kind"], meta.get("namespace", ""), meta["name"])] = registration.inputs
    return objects


def require_engine() -> None:
    """Fail, saying why, when `make engine` has not built what the engine tests run."""
    import pytest

    missing = missing_binaries()
    if missing:
        pytest.fail(f"{', '.join(missing)} missing in {BIN}: run `make engine` (or `make e2e`, which builds it first)")


def secure_paths(value: Any, path: str) -> Iterator[str]:
    """The `pulumi config set --path` paths of every `secure:` value under `path`, in the
    spelling the offline harness names its placeholders with (tools.offline)."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from secure_paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from secure_paths(item, f"{path}[{index}]")


def engine_ready(config: dict[str, Any]) -> dict[str, Any]:
    """A shipped stack's config as the engine here can run it: buckets not managed (the
    pulumi-aws provider cannot be built from the module proxy) and manifests rendered into
    `rendered/` when the stack names no folder (there is no cluster). Nothing else changes."""
    config = copy.deepcopy(config)
    for repository in config.get("backups:repositories") or []:
        if isinstance(repository, dict) and "s3" in repository:
            repository["manageBucket"] = False
    kubernetes = config.setdefault("backups:kubernetes", {})
    kubernetes.setdefault("renderYamlTo", "rendered")
    return config


@dataclass
class EngineProject:
    folder: Path
    stack: str = "e2e"
    extra_env: dict[str, str] = field(default_factory=dict)
    """Added to every command's environment (KUBECONFIG for a cluster)."""

    @classmethod
    def make(cls, folder: Path, config: dict[str, Any], stack: str = "e2e",
             secrets: dict[str, str] | None = None, env: dict[str, str] | None = None) -> EngineProject:
        """A project in `folder` with one stack of `config` (`namespace:key` -> value); each of
        `secrets` (a `--path` key -> value) is set with `pulumi config set --secret`."""
        project_beside(folder)
        self = cls(folder, stack, dict(env or {}))
        self.write_config(config)
        for key, value in (secrets or {}).items():
            self.pulumi("config", "set", "--secret", "--path", key, value)
        return self

    @property
    def stack_file(self) -> Path:
        return self.folder / f"Pulumi.{self.stack}.yaml"

    def document(self) -> dict[str, Any]:
        if not self.stack_file.exists():
            return {}
        return yaml.safe_load(self.stack_file.read_text()) or {}

    def config(self) -> dict[str, Any]:
        return dict(self.document().get("config") or {})

    def write_config(self, config: dict[str, Any]) -> None:
        """The stack file with this config; the salt (and so every `secure:` value) is kept."""
        document = self.document()
        document["config"] = config
        self.stack_file.write_text(yaml.safe_dump(document, sort_keys=False))

    def env(self) -> dict[str, str]:
        env = engine_env()
        env["PULUMI_BACKEND_URL"] = (self.folder / "state").as_uri()
        env["PULUMI_CONFIG_PASSPHRASE"] = PASSPHRASE
        env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
        env.update(self.extra_env)
        (self.folder / "state").mkdir(exist_ok=True)
        return env

    def command(self, verb: str, *flags: str) -> list[str]:
        return [sys.executable, "-m", "tools.engine", verb, "--stack", self.stack,
                "--project-dir", str(self.folder), *flags]

    def run(self, verb: str, *flags: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`python -m tools.engine VERB` on this project's stack, as a user runs it."""
        return subprocess.run(self.command(verb, *flags), cwd=PROJECT_DIR, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The built CLI itself, for what tools.engine does not wrap (config, stack output)."""
        if not self.stack_file.exists() or "encryptionsalt" not in self.stack_file.read_text():
            self._init_stack()
        return subprocess.run([str(BIN / "pulumi"), *args, "--stack", self.stack, "--cwd", str(self.folder)],
                              env=self.env(), capture_output=True, text=True, check=check, timeout=600)

    def _init_stack(self) -> None:
        listed = subprocess.run([str(BIN / "pulumi"), "stack", "ls", "--json", "--cwd", str(self.folder)],
                                env=self.env(), capture_output=True, text=True, timeout=120)
        names = {s["name"] for s in json.loads(listed.stdout or "[]")} if listed.returncode == 0 else set()
        if self.stack not in names:
            subprocess.run([str(BIN / "pulumi"), "stack", "init", self.stack, "--secrets-provider", "passphrase",
                            "--cwd", str(self.folder)], env=self.env(), capture_output=True, text=True,
                           check=True, timeout=120)

    def state_file(self) -> Path:
        return self.folder / "state" / ".pulumi" / "stacks" / "homelab-backups" / f"{self.stack}.json"

    def rendered(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """What the provider rendered (render mode), keyed by (kind, namespace, name)."""
        objects = {}
        for path in sorted((self.folder / "rendered").rglob("*.yaml")):
            for body in yaml.safe_load_all(path.read_text()):
                if body:
                    meta = body["metadata"]
                    objects[(body["kind"], meta.get("namespace", ""), meta["name"])] = body
        return objects

