"""Benchmark: offline preview cost against the Pulumi SDK's own floor, as the stack grows.

    python -m tools.bench [--apps 10,100,200,500] [--repeat 3]

For each N it generates a stack of N apps over two repositories (hourly NFS, daily B2) and
measures, in this one process and one run:

* program: the real `__main__.py` under mocks (tools.offline.run_program),
* pack: the policy pack in-process over what the program registered (tools.policy),
* floor: the same registrations replayed bare under the same mocks (each recorded resource
  registered directly with its recorded inputs: no components' logic, no config, no parents):
  what any Pulumi program emitting these objects pays the SDK,

and prints the best of `--repeat` runs, with the ratios the performance issue asks about.
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import json
import time
from typing import Callable

import pulumi

from .offline import Registration, Secret, _RecordingMonitor, gc_paused, run_program, run_then_drain
from .policy import run_policies


def stack_config(apps: int) -> dict[str, str]:
    """`backups:*` config of a stack with `apps` apps in ten namespaces and two repositories."""
    backups = {
        "password": "bench-password",
        "repositories": [
            {"name": "nas", "backend": "nfs", "nfs": {"server": "nas.home", "path": "/mnt/kopia"},
             "schedule": "hourly", "retain": {"hourly": 24, "daily": 7}, "primary": True},
            {"name": "b2", "backend": "b2",
             "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "volsync"},
             "credentials": {"accessKeyId": "id", "secretAccessKey": "key"},
             "schedule": "daily", "retain": {"daily": 14}},
        ],
        "apps": [{"name": f"app{i:03d}", "namespace": f"ns{i % 10}"} for i in range(apps)],
    }
    return {f"backups:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in backups.items()}


def floor(registrations: list[Registration]) -> None:
    """Replay `registrations` bare: same types, names and inputs, straight to the SDK."""

    def body() -> None:
        monitor = _RecordingMonitor()
        pulumi.runtime.set_mocks(monitor.mocks, "bench", "bench", True, monitor=monitor)

        def program() -> None:
            for reg in registrations:
                if reg.custom:
                    pulumi.CustomResource(reg.type, reg.name, _as_inputs(reg.inputs))
                else:
                    pulumi.ComponentResource(reg.type, reg.name)

        run_then_drain(program)  # exactly as the program is run

    with gc_paused():  # the same conditions as the program's run
        contextvars.Context().run(body)


def _as_inputs(value):
    if isinstance(value, Secret):
        return pulumi.Output.secret(_as_inputs(value.value))
    if isinstance(value, dict):
        return {k: _as_inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_inputs(v) for v in value]
    return value


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()  # the previous run's garbage is not this run's cost
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def measure(apps: int, repeat: int) -> tuple:
    """Best of `repeat` rounds; each round times program, pack and floor back to back, so a
    slow moment of the machine hits all three rather than skewing their ratio."""
    config = stack_config(apps)
    program_s = pack_s = floor_s = float("inf")
    for _ in range(repeat):
        seconds, run = timed(lambda: run_program(config, []))
        program_s = min(program_s, seconds)
        seconds, report = timed(lambda: run_policies(run.registrations))
        pack_s = min(pack_s, seconds)
        assert not report.mandatory, report.mandatory
        floor_s = min(floor_s, timed(lambda: floor(run.registrations))[0])
    resources = len(run.registrations)
    secrets = sum(1 for r in run.registrations if r.type == "kubernetes:core/v1:Secret")
    return apps, resources, secrets, program_s, pack_s, floor_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--apps", default="10,100,200,500")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.apps.split(",")]

    run_program(stack_config(2), [])  # warm-up: imports and first-call caches out of the figures
    rows = [measure(apps, args.repeat) for apps in sizes]

    print("apps  resources  per-app  secrets  program s  pack s  total s  floor s  program/floor  pack/total")
    for apps, resources, secrets, program_s, pack_s, floor_s in rows:
        total = program_s + pack_s
        print(
            f"{apps:4d}  {resources:9d}  {resources / apps:7.2f}  {secrets:7d}  {program_s:9.3f}  "
            f"{pack_s:6.3f}  {total:7.3f}  {floor_s:7.3f}  {program_s / floor_s:13.2f}  {pack_s / total:10.1%}"
        )
    by_size = {r[0]: r for r in rows}
    if 100 in by_size and 200 in by_size:
        t100 = by_size[100][3] + by_size[100][4]
        t200 = by_size[200][3] + by_size[200][4]
        print(f"growth: total at 200 apps / total at 100 apps = {t200 / t100:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
