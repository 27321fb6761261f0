"""The real Pulumi engine running this program: workspace, environment and outcome.

The Python language host (`pulumi-language-python`) is served by no registry, so the program
runs through Pulumi's Automation API: the SDK serves the language runtime itself, in this
process, and hands the CLI `--client`. The inline program executes `__main__.py` (on a thread of
its own: see on_a_stack_of_its_own), so the code that runs is exactly what `pulumi up` would
run; the CLI, the engine, the Kubernetes provider, the dynamic-provider plugin and the policy
pack are the real ones, built by `make engine` into `.engine/bin`. Only who starts Python differs.

The Go pins of those binaries live beside this file, one folder per binary (go.mod, go.sum).
The command line is `python -m tools.engine` (`__main__.py`).
"""

from __future__ import annotations

import _thread
import asyncio
import contextvars
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from pulumi import automation as auto
from pulumi.automation import events

from components.config import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
PROJECT = "homelab-backups"
PROGRAM = PROJECT_DIR / "__main__.py"
ENGINE_DIR = PROJECT_DIR / ".engine"
BIN = ENGINE_DIR / "bin"
#: The pack as the engine launches it: an executable analyzer plugin (see policies/pack).
POLICY_PACK = PROJECT_DIR / "policies" / "pack"
#: What `make engine` builds for this tool; each is looked up in BIN and nowhere else.
BINARIES = ("pulumi", "pulumi-resource-kubernetes", "pulumi-resource-pulumi-python")

#: Exit codes, named in `--help`.
EXIT_OK, EXIT_POLICY, EXIT_CONFIG, EXIT_PROGRAM, EXIT_ENGINE, EXIT_REFUSED = 0, 1, 2, 3, 4, 5

#: The guards that refuse a change at preview (components/history_lock.py, stanza_lock.py) are
#: the program's only dynamic resources; a refusal is a check failure, reported on the guard.
GUARD_TYPE = "pulumi-python:dynamic:Resource"


class EngineUnavailable(Exception):
    """The engine cannot be started here: what is missing and how to get it, and the exit code
    (EXIT_CONFIG for what the user sets: a stack file, a passphrase; EXIT_ENGINE otherwise)."""

    def __init__(self, message: str, code: int = EXIT_ENGINE) -> None:
        super().__init__(message)
        self.code = code


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if not os.access(BIN / name, os.X_OK)]


def engine_env(base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The environment of the CLI and of every plugin it starts.

    * PATH: `.engine/bin` first (the provider and the dynamic-provider plugin are found there as
      ambient plugins) and the project's virtualenv (the policy pack and the dynamic provider
      run its python).
    * A local file backend in `.engine/state` unless PULUMI_BACKEND_URL says otherwise.
    * PULUMI_HOME in `.engine/home`: no plugin from `~/.pulumi` is ever picked up, and none is
      downloaded (automatic plugin acquisition off).
    """
    env = dict(os.environ if base is None else base)
    venv_bin = PROJECT_DIR / ".venv" / "bin"
    env["PATH"] = os.pathsep.join([str(BIN), str(venv_bin), env.get("PATH", "")])
    env.setdefault("PULUMI_BACKEND_URL", (ENGINE_DIR / "state").as_uri())
    env.setdefault("PULUMI_HOME", str(ENGINE_DIR / "home"))
    env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    return env


def check_ready(env: Mapping[str, str]) -> None:
    missing = missing_binaries()
    if missing:
        raise EngineUnavailable(
            f"not built in {BIN.relative_to(PROJECT_DIR)}: {', '.join(missing)}; run `make engine` "
            "(22 minutes measured cold on 2 cores, nothing when warm)"
        )
    if "PULUMI_CONFIG_PASSPHRASE" not in env and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env:
        raise EngineUnavailable(
            "set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE): the stacks use the "
            "passphrase secrets provider. The dev stack holds no secret and takes the empty one "
            "(`PULUMI_CONFIG_PASSPHRASE= python -m tools.engine preview`, as `make preview` does)",
            EXIT_CONFIG,
        )
    if backend := env.get("PULUMI_BACKEND_URL", ""):
        if backend.startswith("file://"):
            Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)


@dataclass
class Outcome:
    """What one run of the engine did, as the exit code needs it."""

    config_error: Optional[ConfigError] = None
    program_error: Optional[BaseException] = None
    mandatory: list[str] = field(default_factory=list)
    """`policy-name on urn` of every mandatory violation the engine reported."""
    refusals: list[str] = field(default_factory=list)
    """The error-level diagnostics of a guard: a change refused, with its key path and fix."""

    def exit_code(self, failed: bool) -> int:
        if self.config_error is not None:
            return EXIT_CONFIG
        if self.program_error is not None:
            return EXIT_PROGRAM
        if self.mandatory:
            return EXIT_POLICY
        if self.refusals:
            return EXIT_REFUSED
        return EXIT_ENGINE if failed else EXIT_OK

    def take(self, event: events.EngineEvent) -> None:
        policy, diagnostic = event.policy_event, event.diagnostic_event
        if policy is not None and policy.enforcement_level == "mandatory":
            self.mandatory.append(f"{policy.policy_name} on {policy.resource_urn or 'the stack'}")
        if diagnostic is not None and diagnostic.severity == "error" and f"{GUARD_TYPE}::" in (diagnostic.urn or ""):
            self.refusals.append(diagnostic.message)


#: Called with the program's globals once it has run: resources registered beside the program's
#: own (the tests' hand-written objects, as the seeds made them, for the policy gate).
Extra = Callable[[dict[str, Any]], None]


def inline_program(outcome: Outcome, extra: Optional[Extra] = None) -> Callable[[], None]:
    """`__main__.py` as `pulumi up` runs it, with its failure kept for the exit code.

    A ConfigError is a RunError: the SDK's runtime reports its message and no traceback, as the
    released language host does. Anything else is a bug in the program, reported in full.
    """

    def program() -> None:
        try:
            # exec rather than runpy, whose three frames would be in every resource's stack trace
            # (see on_a_stack_of_its_own); the program needs nothing else runpy sets up.
            names: dict[str, Any] = {"__name__": "__main__", "__file__": str(PROGRAM)}
            exec(compile(PROGRAM.read_text(), str(PROGRAM), "exec"), names)  # noqa: S102 the project's own program
            if extra is not None:
                extra(names)
        except ConfigError as error:
            outcome.config_error = error
            raise
        except BaseException as error:
            outcome.program_error = error
            raise

    return program


def on_a_stack_of_its_own(program: Callable[[], None]) -> Callable[[], None]:
    """`program` called from the first frame of a thread of its own, the SDK's thread waiting.

    The SDK records a stack trace with every resource: each frame below the resource's
    constructor becomes a path URI and a protobuf message (`_get_stack_trace` in
    pulumi/runtime/resource.py). Under the Automation API the program is called from deep in
    the language server: gRPC's worker thread, asyncio's loop and the SDK's stack runner put 20
    frames under every resource (26 of 32 at a ReplicationSource), and converting them was 15% of
    the program's Python time at 200 apps (cProfile). Called from a thread of its own, only the
    program's frames are recorded; the source position (the first frame) is the same.

    Nothing else changes: the program runs in a copy of the SDK's context (its settings are
    ContextVars, their values shared), with the SDK's loop as its event loop (the constructors
    queue their registrations on it; the loop's thread is blocked in this call, as it is while
    the program runs there, so the loop does not run meanwhile), and its exception is raised
    here. A bare `_thread`: `threading.Thread`'s bootstrap would add three frames of its own.
    """

    def run() -> None:
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        failure: list[BaseException] = []
        finished = _thread.allocate_lock()
        finished.acquire()

        def thread_main() -> None:
            asyncio.set_event_loop(loop)
            try:
                context.run(program)
            except BaseException as error:  # noqa: BLE001 raised on the SDK's thread
                failure.append(error)
            finally:
                asyncio.set_event_loop(None)
                finished.release()

        _thread.start_new_thread(thread_main, ())
        finished.acquire()
        if failure:
            raise failure[0]

    return run


def project_beside(folder: Path) -> Path:
    """`folder` as a project of its own running this program: the project's Pulumi.yaml, its
    virtualenv named absolutely (the dynamic-provider plugin resolves the option against the
    project folder, which is not this one). For the tests' and the benchmark's stacks."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    settings["runtime"]["options"]["virtualenv"] = str(PROJECT_DIR / ".venv")
    (folder / "Pulumi.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return folder


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


#: What a preview adds to the engine's environment. The file backend gives a preview a snapshot
#: manager too (with a persister that discards what it is given), and that manager serializes and
#: integrity-checks the whole deployment on every step (pkg/backend/snapshot.go saveSnapshot):
#: quadratic in the resources, 64% of the CLI's CPU at 100 apps. Skipping checkpoints makes it
#: do that once, at the end; a preview persists nothing either way. Never for up, destroy or
#: refresh: their checkpoints are what an interrupted update is recovered from.
PREVIEW_ENV = {"PULUMI_SKIP_CHECKPOINTS": "true"}


def select_stack(
    stack: str, outcome: Outcome, project_dir: Path = PROJECT_DIR, env: Optional[Mapping[str, str]] = None,
    extra: Optional[Extra] = None, program: Optional[Callable[[], None]] = None, preview: bool = False,
) -> auto.Stack:
    """The stack whose `Pulumi.<stack>.yaml` is in `project_dir`, created on first use, running
    `__main__.py` (or `program`: the benchmark's floor); `preview` when that is all it will run."""
    env = engine_env(env)
    if preview:
        env.update(PREVIEW_ENV)
    else:
        for key in PREVIEW_ENV:
            env.pop(key, None)  # exported in a shell, it would cost an interrupted up its state
    check_ready(env)
    if not stack_file(project_dir, stack).is_file():
        raise EngineUnavailable(
            f"no stack file {stack_file(project_dir, stack)}: the stacks are the Pulumi.<stack>.yaml files there",
            EXIT_CONFIG,
        )
    workspace = auto.LocalWorkspaceOptions(
        work_dir=str(project_dir),
        pulumi_home=env["PULUMI_HOME"],
        env_vars=env,
        secrets_provider="passphrase",
        pulumi_command=auto.PulumiCommand(root=str(ENGINE_DIR), skip_version_check=True),
    )
    return auto.create_or_select_stack(
        stack, project_name=PROJECT, program=on_a_stack_of_its_own(program or inline_program(outcome, extra)),
        opts=workspace,
    )


def plain(value: Any) -> Any:
    """An engine event as JSON-able data (enums by value, empty fields dropped)."""
    if hasattr(value, "value") and type(value).__module__ == events.__name__:
        return value.value
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items() if v not in (None, [], {})}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
