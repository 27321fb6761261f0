"""Run the real program under the Pulumi SDK's mocks and record what it registers.

This is the engine-less half of the offline preview: `__main__.py` runs unchanged, and every
RegisterResource request it sends is recorded as the engine would receive it: the wire-format
properties (with secret and unknown markers intact, which the policy analyzer needs), the
parent, and the resource options `protect` and `retainOnDelete` exactly as the program set them.
"""

from __future__ import annotations

import _thread
import asyncio
import contextvars
import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, TypeVar

import pulumi
from google.protobuf import json_format, struct_pb2

from . import sdk
from .gc_pause import gc_paused
from .stackfile import StackFileError, read_yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "homelab-backups"
PROGRAM = PROJECT_DIR / "__main__.py"
T = TypeVar("T")


@functools.lru_cache(maxsize=1)
def _program_code():
    """`__main__.py` compiled once per process. Executed directly rather than through runpy,
    which would add three frames to the stack trace the SDK records for every resource."""
    return compile(PROGRAM.read_text(), str(PROGRAM), "exec")

SECRET_SIG, SIG_KEY, UNKNOWN = sdk.SECRET_SIG, sdk.SIG_KEY, sdk.UNKNOWN
STACK_TYPE = "pulumi:pulumi:Stack"


class Secret:
    """A secret value from the wire; prints as a placeholder so it cannot leak by accident."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Secret(***)"


def revealed(value: Any) -> Any:
    """A decoded value with every Secret replaced by what it holds: what a Job or the API
    server gets. For tests and tools that compare values; never print it."""
    if isinstance(value, Secret):
        return revealed(value.value)
    if isinstance(value, dict):
        return {k: revealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revealed(v) for v in value]
    return value


class Unknown:
    """A value not known until the engine applies the change (preview only)."""

    def __repr__(self) -> str:
        return "Unknown"


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    protect: bool
    retain_on_delete: bool
    dependencies: list[str]
    wire: struct_pb2.Struct
    """Properties exactly as sent to the engine."""
    inputs: dict = field(default_factory=dict)
    """The same, decoded: secrets as Secret, unknowns as Unknown."""
    provider: str = ""
    """Reference (`urn::id`) of the explicit provider; "" means the package's default provider."""
    version: str = ""
    """Version of the package the SDK asked for (what a default provider is created with)."""
    aliases: list[tuple[str, str]] = field(default_factory=list)
    """(name, type) of each alias spec ("" where it keeps the resource's own), or (URN, "")."""
    outputs: Optional[struct_pb2.Struct] = None
    """What a component (or the stack) registered as its outputs; None for a custom resource,
    whose outputs under these mocks are its inputs."""
    request: Any = None
    """The RegisterResourceRequest itself, every option as the SDK set it (or left it unset)."""


def decode(wire: struct_pb2.Struct) -> dict:
    return _decode(json_format.MessageToDict(wire))


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return Secret(_decode(value.get("value")))
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if value == UNKNOWN:
        return Unknown()
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire has only doubles; Kubernetes integers must stay integers
    return value


def _mock_id(name: str) -> str:
    return f"{name}-id"


class _EchoMocks(pulumi.runtime.Mocks):
    """Every resource's outputs are its inputs; ids are derived from names."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return _mock_id(args.name), args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class _RecordingMonitor(sdk.MockMonitor):
    def __init__(self) -> None:
        super().__init__(_EchoMocks())
        self.registrations: list[Registration] = []
        """Every resource the program registered, in order, without the stack itself."""
        self.stack: Optional[Registration] = None
        self._by_urn: dict[str, Registration] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the engine gives (pkg/resource/deploy/source_eval.go): the parent's whole
        qualified type, `$`-joined, before the type, and nothing for the root stack. The SDK's
        mock keeps only the parent's last type; the engine comparison (tests/e2e/test_engine.py)
        found it."""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != STACK_TYPE:
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request):  # noqa: N802 (the gRPC method name)
        response = super().RegisterResource(request)
        registration = Registration(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=request.custom,
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            dependencies=list(request.dependencies),
            wire=request.object,
            inputs=decode(request.object),
            provider=request.provider,
            version=request.version,
            aliases=[(a.spec.name, a.spec.type) if a.HasField("spec") else (a.urn, "") for a in request.aliases]
            + [(urn, "") for urn in request.aliasURNs],
            outputs=None if request.custom else struct_pb2.Struct(),  # until it registers some
            request=request,
        )
        self._by_urn[registration.urn] = registration
        if request.type == STACK_TYPE:
            self.stack = registration
        else:
            self.registrations.append(registration)
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802 (the gRPC method name)
        self._by_urn[request.urn].outputs = request.outputs
        return super().RegisterResourceOutputs(request)


@dataclass
class ProgramRun:
    registrations: list[Registration]
    """What the program registered, in order, without the stack resource itself."""
    outputs: dict[str, Any]
    """Stack outputs as the engine would receive them: secrets as Secret, where they are."""
    warnings: list[str] = field(default_factory=list)
    """What the program logged at warning level (`pulumi.log.warn`), in order."""
    stack: Optional[Registration] = None
    """The stack resource (`pulumi:pulumi:Stack`), its outputs attached."""

    def as_engine_sees_it(self) -> list[Registration]:
        """Every resource the engine steps through, in order: the stack first, then each
        package's default provider before the first resource that uses it (the engine creates
        it; the SDK names no provider), then the program's resources, each custom resource
        naming its provider. This is what a policy pack is asked about."""
        assert self.stack is not None, "a program run always registers its stack"
        seen = [self.stack]
        defaults: dict[str, Registration] = {}
        for registration in self.registrations:
            if registration.custom and not registration.provider and not _is_provider(registration):
                package = registration.type.split(":", 1)[0]
                if package not in defaults:
                    defaults[package] = _default_provider(package, registration.version, self.stack)
                    seen.append(defaults[package])
                registration = replace(registration, provider=_reference(defaults[package]))
            seen.append(registration)
        return seen


def _is_provider(registration: Registration) -> bool:
    return registration.type.startswith("pulumi:providers:")


def _reference(provider: Registration) -> str:
    return f"{provider.urn}::{_mock_id(provider.name)}"


def _default_provider(package: str, version: str, stack: Registration) -> Registration:
    """The provider the engine registers for resources that name none: `default_<version>`,
    with the version as its only input (and the package's stack config, none here)."""
    name = "default_" + version.replace(".", "_") if version else "default"
    wire = struct_pb2.Struct()
    if version:
        wire.update({"version": version})
    stack_and_project = stack.urn.split("::", 2)[:2]  # urn:pulumi:<stack>, <project>
    return Registration(
        urn="::".join([*stack_and_project, f"pulumi:providers:{package}", name]),
        type=f"pulumi:providers:{package}",
        name=name,
        parent="",
        custom=True,
        protect=False,
        retain_on_delete=False,
        dependencies=[],
        wire=wire,
        inputs=decode(wire),
        version=version,
    )


class _KeepWarnings(logging.Filter):
    """Takes the warnings the program logs through the engine; other levels pass on as ever."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            self.warnings.append(record.getMessage())
            return False
        return True


def _engine_log(keep: _KeepWarnings) -> logging.Logger:
    """The logger the mock engine writes `pulumi.log` to: one per run, outside logging's registry."""
    log = logging.Logger("pulumi.engine", logging.WARNING)  # warnings kept whatever the root's level
    log.parent = logging.getLogger()
    log.addFilter(keep)
    return log


def run_program(
    config: Mapping[str, str],
    secret_keys: list[str],
    stack: str = "dev",
    preview: bool = True,
) -> ProgramRun:
    """Run `__main__.py` under mocks with this config. Exceptions from the program propagate."""
    monitor, warnings = _RecordingMonitor(), _KeepWarnings()

    def set_up() -> None:
        pulumi.runtime.set_all_config(dict(config), list(secret_keys))
        pulumi.runtime.set_mocks(monitor.mocks, PROJECT, stack, preview, _engine_log(warnings), monitor)

    def stack_outputs() -> struct_pb2.Struct:
        root = pulumi.runtime.get_root_resource()
        return sdk.sync_await(_serialized(getattr(root, "outputs", {}) or {}))

    # exec through functools.partial: C calls only, so `__main__.py` is the thread's second frame.
    program = functools.partial(exec, _program_code(), {"__name__": "__main__", "__file__": str(PROGRAM)})
    outputs = run_isolated(set_up, program, stack_outputs)
    if monitor.stack is not None:
        # Under mocks the stack registers its outputs before the program exports them; the
        # engine receives them once the program has run, which is what this is.
        monitor.stack.outputs = outputs
    return ProgramRun(monitor.registrations, decode(outputs), warnings.warnings, monitor.stack)


def run_isolated(set_up: Callable[[], None], program: Callable[[], None], finish: Callable[[], T]) -> T:
    """Run a Pulumi program under mocks on a thread of its own, and return what `finish` gives.

    * A fresh context and event loop: the SDK keeps its settings (root stack, config, mocks) in
      ContextVars and its Outputs on the loop, so runs in one process never see each other.
    * `program` (the resource constructors) is called from the thread's first frame, outside the
      event loop. The SDK records a stack trace for every resource, converting each frame below
      the resource's constructor (a path-to-URI and a protobuf message per frame). Called from
      the caller's stack, every frame of this tool and of its caller (ten and more in the bench)
      was converted for each of the hundreds of resources; now only the thread's entry frame,
      `__main__.py` and the components are. A bare `_thread` rather than `threading.Thread`,
      whose bootstrap would add three frames of its own to every trace.
    * Then the SDK finishes every registration the constructors queued (`run_pulumi_func`
      drains them), even when the program raised, whose error is the one reported.
    * The cyclic GC is paused for the length of the run (see gc_paused).
    """
    context = contextvars.Context()
    outcome: list[T] = []
    failure: list[BaseException] = []
    finished = _thread.allocate_lock()
    finished.acquire()

    def thread_main() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            context.run(_track_outputs_per_run)
            context.run(set_up)
            program_error: Optional[BaseException] = None
            try:
                context.run(program)
            except BaseException as error:  # noqa: BLE001 re-raised once the queued work has drained
                program_error = error
            try:
                context.run(_drain)
            except BaseException:  # noqa: BLE001
                if program_error is None:
                    raise
            if program_error is not None:
                raise program_error
            outcome.append(context.run(finish))
        except BaseException as error:  # noqa: BLE001 handed to the calling thread
            failure.append(error)
        finally:
            try:
                loop.run_until_complete(loop.shutdown_default_executor())  # the SDK's RPC threads
                asyncio.set_event_loop(None)
                loop.close()
            finally:
                finished.release()

    with gc_paused():
        _thread.start_new_thread(thread_main, ())
        finished.acquire()
    if failure:
        raise failure[0]
    return outcome[0]


def _track_outputs_per_run() -> None:
    """A set of outstanding Outputs for this run alone.

    The SDK's drain awaits every Output in `SETTINGS.outputs`, but `set_mocks` does not give a
    run its own set: a fresh context falls back to one set shared by the whole process. An Output
    made outside any run (a test building one on the main thread) would then sit in the next
    run's set, tied to another thread's event loop, and the drain would wait for it forever.
    """
    sdk.track_outputs_per_run()


def _drain() -> None:
    """Let the SDK finish every registration the constructors queued."""
    sdk.drain()


async def _serialized(outputs: dict) -> struct_pb2.Struct:
    """Stack outputs serialized as the SDK sends them to the engine.

    One walk over the values (Outputs awaited where they are, secrets kept as markers), where
    `Output.from_input` would build an Output for every nested dict, list and leaf first.
    """
    wire = struct_pb2.Struct()
    wire.update(await sdk.serialize_properties(outputs, {}))
    return wire


def load_stack_file(path: Path) -> tuple[dict[str, str], list[str], list[str]]:
    """Config of a `Pulumi.<stack>.yaml` file as the engine would pass it to the program.

    Returns (config, secret keys, keys whose `secure:` values could not be decrypted). Offline
    there is no secrets provider, so each `secure:` value becomes a placeholder, still a secret.
    Raises StackFileError for a file that is not a readable stack file.
    """
    document = read_yaml(path)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: not a stack file (a mapping with a `config:` key)")
    entries = document.get("config") or {}
    if not isinstance(entries, dict):
        raise StackFileError(f"{path}: `config:` is not a mapping of `namespace:key: value`")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    placeholders: list[str] = []
    for key, value in entries.items():
        if not isinstance(key, str) or ":" not in key:
            raise StackFileError(f"{path}: config key {_shown_key(key)} is not `namespace:key` (like backups:apps)")
        plain, is_secret = _replace_secure(value, key, placeholders)
        if is_secret:
            secret_keys.append(key)
        config[key] = plain if isinstance(plain, str) else json.dumps(plain)
    return config, secret_keys, placeholders


def _replace_secure(value: Any, path: str, placeholders: list[str]) -> tuple[Any, bool]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        placeholders.append(path)
        return f"offline-placeholder-for-{path}", True
    if isinstance(value, dict):
        pairs = {k: _replace_secure(v, f"{path}.{k}", placeholders) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_replace_secure(v, f"{path}[{i}]", placeholders) for i, v in enumerate(value)]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def _shown_key(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:30] + "..."


def stack_file(stack: str, directory: Optional[Path] = None) -> Path:
    return (directory or PROJECT_DIR) / f"Pulumi.{stack}.yaml"
