"""The engine's speed: `preview` of the program against a floor, under the real engine.

    python -m tools.bench --engine [--apps 10,100,200,500] [--repeat 1] [--up-apps 100]

For each size, one stack of N apps (tools.bench.stack_config, buckets not managed, manifests
rendered so that no cluster is needed) is previewed twice under the same engine, in one run:

* program: the real `__main__.py` through tools.engine (the Automation API, the CLI, the
  Kubernetes provider, the dynamic-provider plugin);
* floor: the same resources registered bare by an inline program of their own (the types,
  names and inputs the offline run records, secrets kept secret; no components, no parents,
  no config), the Kubernetes provider rendering through its stack config instead.

Then `up` of `--up-apps` apps (100; 0 skips it) against a real kube-apiserver 1.36 (built by
`make engine`, the upstream CRDs from ../shared/crds installed, the namespaces made), the program
and its floor each on a fresh API server and etcd, so neither finds the other's objects.

At 100 apps a third side splits the ratio in two: the floor with the program's component tree
(tree_floor_program: the same bare resources under the same components, which register the
same outputs). tree/floor is what the components cost; program/tree the rest (the provider
SDK's typed classes, the resource options, the SDK's stack trace per resource, the program's
own config and plan).

Neither runs the policy pack: the pack's share is the offline bench's figure. Each preview and
each up is timed whole (the CLI starting, the plugins loading, the plan, the API calls), which
is what a user waits for, with the cyclic GC paused and the program on a thread of its own, as
`python -m tools.engine` runs it. The last line reads `engine: program/floor <ratio> at 100 apps;
200/100 <growth>`.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import pulumi
import yaml

from .apiserver import ApiServer
from .bench import stack_config, timed
from .engine import BIN, PROJECT_DIR, Outcome, project_beside, select_stack
from .gc_pause import gc_paused
from .offline import Registration, decode, run_program
from .replay import as_inputs

PASSPHRASE = "bench"
CRDS = PROJECT_DIR.parent / "shared" / "crds"
UP_VERSION = "1.36"
#: The size at which the floor is measured a second time with the program's component tree.
ATTRIBUTED = 100


def engine_config(apps: int) -> dict[str, Any]:
    """`namespace:key` -> value of the stack, as the engine here can run it."""
    config = {key: json.loads(value) if value[:1] in "[{" else value for key, value in stack_config(apps).items()}
    for repository in config["backups:repositories"]:
        if "s3" in repository:
            repository["manageBucket"] = False
    config["backups:kubernetes"] = {"renderYamlTo": "rendered"}
    return config


def project(folder: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    project_beside(folder)
    for name, config in stacks.items():
        (folder / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return folder


def recorded(config: dict[str, Any], preview: bool) -> list[Registration]:
    """What the program registers for `config` (the offline run): the floor replays it."""
    flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return run_program(flat, [], preview=preview).registrations


def floor_program(registrations: list[Registration]):  # type: ignore[no-untyped-def]
    def program() -> None:
        for reg in registrations:
            if reg.custom and not reg.type.startswith("pulumi:providers:"):
                pulumi.CustomResource(reg.type, reg.name, as_inputs(reg.inputs))
    return program


def tree_floor_program(registrations: list[Registration]):  # type: ignore[no-untyped-def]
    """The floor with the program's component tree: the same bare resources, each under its
    component (the same types and names, the same parents), each component registering the
    outputs the program's did. What it costs over the floor is the components' share."""
    def program() -> None:
        made: dict[str, pulumi.Resource] = {}
        components: list[tuple[pulumi.ComponentResource, Registration]] = []
        for reg in registrations:  # in the order the engine got them: a parent before its children
            if reg.type.startswith("pulumi:providers:"):
                continue
            opts = pulumi.ResourceOptions(parent=made.get(reg.parent))  # None: the stack
            if reg.custom:
                made[reg.urn] = pulumi.CustomResource(reg.type, reg.name, as_inputs(reg.inputs), opts)
            else:
                made[reg.urn] = component = pulumi.ComponentResource(reg.type, reg.name, None, opts)
                components.append((component, reg))
        for component, reg in components:
            component.register_outputs(as_inputs(decode(reg.outputs)) if reg.outputs else {})
    return program


def paused(operation: Any) -> None:
    with gc_paused():  # as `python -m tools.engine` runs every operation
        operation(color="never")


def timed_preview(folder: Path, stack: str, env: dict[str, str], program=None) -> float:  # type: ignore[no-untyped-def]
    outcome = Outcome()
    selected = select_stack(stack, outcome, project_dir=folder, env=env, program=program, preview=True)
    elapsed, _ = timed(lambda: paused(selected.preview))
    assert outcome.config_error is None and outcome.program_error is None
    return elapsed


def up_config(apps: int) -> dict[str, Any]:
    """The bench stack applied for real: no renderYamlTo, the API server's version."""
    config = engine_config(apps)
    config["backups:kubernetes"] = {"version": UP_VERSION}
    return config


def up_missing() -> list[str]:
    """What `up` against an API server needs and this machine lacks."""
    missing = [str(BIN / b) for b in ("etcd", f"kube-apiserver-{UP_VERSION}") if not (BIN / b).exists()]
    return missing + ([] if CRDS.is_dir() else [f"{CRDS} (the upstream CRDs, ../shared beside the project)"])


def timed_up(folder: Path, stack: str, env: dict[str, str], registrations: list[Registration],
             scratch: Path, program=None) -> float:  # type: ignore[no-untyped-def]
    """`up` of one stack against an API server of its own, made for it and stopped after."""
    server = ApiServer(UP_VERSION, scratch).start()
    try:
        server.install_crds(CRDS)
        namespaces = {(r.inputs.get("metadata") or {}).get("namespace") for r in registrations if r.type.startswith("kubernetes:")}
        for namespace in sorted(n for n in namespaces if n):
            status, body = server.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            assert status < 300, body
        outcome = Outcome()
        selected = select_stack(stack, outcome, project_dir=folder, program=program,
                                env={**env, "KUBECONFIG": str(server.kubeconfig(scratch / "kubeconfig"))})
        elapsed, _ = timed(lambda: paused(selected.up))
        assert outcome.config_error is None and outcome.program_error is None
        return elapsed
    finally:
        server.stop()


def main(sizes: list[int], repeat: int, up_apps: int = 100) -> int:
    if up_apps and up_missing():
        print(f"error: `up` against an API server needs {', '.join(up_missing())} (or --up-apps 0)")
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    try:
        stacks: dict[str, dict[str, Any]] = {}
        registrations: dict[int, list[Registration]] = {}
        for apps in sizes:
            config = engine_config(apps)
            stacks[f"program-{apps}"] = config
            stacks[f"floor-{apps}"] = {"kubernetes:renderYamlToDirectory": "rendered-floor"}
            registrations[apps] = recorded(config, preview=True)
        if up_apps:
            # A stack per round: a second `up` of the same stack would find its state and do nothing.
            for round_ in range(repeat):
                stacks[f"up-program-{up_apps}-{round_}"] = up_config(up_apps)
                stacks[f"up-floor-{up_apps}-{round_}"] = {}
            up_registrations = recorded(up_config(up_apps), preview=False)
        folder = project(root / "project", stacks)
        env = {"PULUMI_BACKEND_URL": (root / "state").as_uri(), "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}
        (root / "state").mkdir()
        timed_preview(folder, f"program-{sizes[0]}", env)  # warm-up: the first CLI start and imports
        rounds: dict[int, list[tuple[float, float]]] = {apps: [] for apps in sizes}
        tree_rounds: list[float] = []  # the floor with the component tree, at ATTRIBUTED apps
        for _ in range(repeat):
            for apps in sizes:
                program_s = timed_preview(folder, f"program-{apps}", env)
                floor_s = timed_preview(folder, f"floor-{apps}", env, floor_program(registrations[apps]))
                rounds[apps].append((program_s, floor_s))
                if apps == ATTRIBUTED:
                    tree_rounds.append(timed_preview(folder, f"floor-{apps}", env, tree_floor_program(registrations[apps])))
        print("apps  resources  program s  floor s  program/floor")
        for apps in sizes:
            best = min(p for p, _ in rounds[apps]), min(f for _, f in rounds[apps])
            ratio = statistics.median(p / f for p, f in rounds[apps])
            print(f"{apps:4d}  {len(registrations[apps]):9d}  {best[0]:9.2f}  {best[1]:7.2f}  {ratio:13.2f}")
        if tree_rounds:
            components = sum(1 for r in registrations[ATTRIBUTED] if not r.custom)
            tree = statistics.median(t / f for t, (_, f) in zip(tree_rounds, rounds[ATTRIBUTED], strict=True))
            rest = statistics.median(p / t for t, (p, _) in zip(tree_rounds, rounds[ATTRIBUTED], strict=True))
            print(f"at {ATTRIBUTED} apps, the floor with the program's {components} components: {min(tree_rounds):.2f} s; "
                  f"tree/floor {tree:.2f} (the components), program/tree {rest:.2f} "
                  "(typed classes, options, stack traces, the program's own work)")
        if up_apps:
            ups = []
            for round_ in range(repeat):
                program_up = timed_up(folder, f"up-program-{up_apps}-{round_}", env, up_registrations,
                                      root / f"k8s-p{round_}")
                floor_up = timed_up(folder, f"up-floor-{up_apps}-{round_}", env, up_registrations,
                                    root / f"k8s-f{round_}", floor_program(up_registrations))
                ups.append((program_up, floor_up))
            ratio = statistics.median(p / f for p, f in ups)
            print(f"up of {up_apps} apps against kube-apiserver {UP_VERSION} ({len(up_registrations)} resources): "
                  f"program {min(p for p, _ in ups):.2f} s, floor {min(f for _, f in ups):.2f} s, "
                  f"program/floor {ratio:.2f}")
        if 100 in rounds and 200 in rounds:
            ratio = statistics.median(p / f for p, f in rounds[100])
            growth = statistics.median(big[0] / small[0] for small, big in zip(rounds[100], rounds[200], strict=True))
            print(f"engine: program/floor {ratio:.2f} at 100 apps; 200/100 {growth:.2f}")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
