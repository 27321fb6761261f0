"""Benchmark: offline preview cost against the Pulumi SDK's own floor, as the stack grows.

    python -m tools.bench [--apps 10,100,200,500] [--repeat 5] [--engine [--up-apps 100]]

For each N it generates a stack of N apps over two repositories (hourly NFS, daily B2) and
measures, in this one process and one run:

* program: the real `__main__.py` under mocks (tools.offline.run_program),
* pack: the policy pack in-process over what the program registered (tools.policy),
* floor: the same registrations replayed bare under the same mocks (each recorded resource
  registered directly with its recorded inputs: no components' logic, no config, no parents):
  what any Pulumi program emitting these objects pays the SDK,

and prints, over `--repeat` rounds (each measuring every size once), the best times and the
median of each round's ratios: the figures the performance issue asks about.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from .offline import Registration, run_program
from .policy import run_policies
from .replay import replay


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
    replay([(r.type, r.name, r.custom, r.inputs) for r in registrations])


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()  # the previous run's garbage is not this run's cost
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


@dataclass(frozen=True)
class Row:
    apps: int
    resources: int
    secrets: int
    program_s: float
    """Fastest program run of the rounds (likewise pack_s, floor_s): noise only adds time."""
    pack_s: float
    floor_s: float
    program_per_floor: float
    """Median over rounds of program/floor measured in the same round (likewise pack_share).

    This VM's speed drifts by 20% and more from one moment to the next (host contention),
    moving the timings of one round together. A ratio within a round cancels that drift; a ratio
    of two minima taken at different moments would measure the drift instead of the program.
    """
    pack_share: float

    @property
    def total_s(self) -> float:
        return self.program_s + self.pack_s


Round = tuple[float, float, float]
"""(program s, pack s, floor s) of one size, measured back to back."""


def measure_round(config: dict[str, str]) -> tuple[Round, list[Registration]]:
    program_s, run = timed(lambda: run_program(config, []))
    pack_s, report = timed(lambda: run_policies(run.as_engine_sees_it()))
    assert not report.mandatory, report.mandatory
    floor_s = timed(lambda: floor(run.registrations))[0]
    return (program_s, pack_s, floor_s), run.registrations


def summarize(apps: int, rounds: list[Round], registrations: list[Registration]) -> Row:
    return Row(
        apps=apps,
        resources=len(registrations),
        secrets=sum(1 for r in registrations if r.type == "kubernetes:core/v1:Secret"),
        program_s=min(r[0] for r in rounds),
        pack_s=min(r[1] for r in rounds),
        floor_s=min(r[2] for r in rounds),
        program_per_floor=statistics.median(p / f for p, _, f in rounds),
        pack_share=statistics.median(k / (p + k) for p, k, _ in rounds),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--apps", default=None, help="sizes (default 10,100,200,500; 100 with --process)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds (default 5 offline, 1 with --engine)")
    parser.add_argument("--engine", action="store_true",
                        help="the real engine's preview against its floor instead (tools/bench_engine.py)")
    parser.add_argument("--process", action="store_true",
                        help="the whole offline preview process against a bare-registration process "
                             "(tools/bench_process.py; default --apps 100)")
    parser.add_argument("--profile", action="store_true", help="with --process: where the preview process spends its time")
    parser.add_argument("--up-apps", type=int, default=100,
                        help="with --engine: apps of the `up` against an API server (0: none)")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in (args.apps or ("100" if args.process else "10,100,200,500")).split(",")]
    if args.engine:
        from .bench_engine import main as engine_main

        return engine_main(sizes, args.repeat or 1, args.up_apps)
    if args.process:
        from .bench_process import main as process_main

        return process_main(sizes, args.repeat or 5, args.profile)
    args.repeat = args.repeat or 5

    run_program(stack_config(2), [])  # warm-up: imports and first-call caches out of the figures
    # Rounds outermost: every size is measured once per round, so the growth ratio, like the
    # others, compares timings taken moments apart (see Row for why that matters here).
    configs = {apps: stack_config(apps) for apps in sizes}
    rounds: dict[int, list[Round]] = {apps: [] for apps in sizes}
    registrations: dict[int, list[Registration]] = {}
    for _ in range(args.repeat):
        for apps in sizes:
            timing, registrations[apps] = measure_round(configs[apps])
            rounds[apps].append(timing)
    rows = [summarize(apps, rounds[apps], registrations[apps]) for apps in sizes]

    print("apps  resources  per-app  secrets  program s  pack s  total s  floor s  program/floor  pack/total")
    for row in rows:
        print(
            f"{row.apps:4d}  {row.resources:9d}  {row.resources / row.apps:7.2f}  {row.secrets:7d}  "
            f"{row.program_s:9.3f}  {row.pack_s:6.3f}  {row.total_s:7.3f}  {row.floor_s:7.3f}  "
            f"{row.program_per_floor:13.2f}  {row.pack_share:10.1%}"
        )
    if 100 in rounds and 200 in rounds:
        growth = statistics.median(
            (big[0] + big[1]) / (small[0] + small[1]) for small, big in zip(rounds[100], rounds[200], strict=True)
        )
        print(f"growth: total at 200 apps / total at 100 apps = {growth:.2f} (median of rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
