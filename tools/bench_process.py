"""The offline guard: the whole offline preview process against a bare-registration process.

    python -m tools.bench --process [--apps 100] [--repeat 5]

For each size, one stack file of N apps (tools.bench.stack_config) and two fresh processes,
timed whole from exec to exit, back to back in each round:

* preview: `python -m tools.preview --config-file <stack> --render-dir <dir> --report <file>`,
  what `make preview` runs offline (imports, the stack-file loader, config, plan and name
  checks, the program under mocks, the pack, rendering, the report);
* floor: `python -m tools.bench_process <registrations>`, which imports the Pulumi SDK and
  registers the same resources bare (types, names and inputs as the program registered them;
  no components, no config, no pack, nothing written).

It prints the best times and the median of each round's preview/floor, and with `--profile`
where the preview process spends its time (cProfile, by cumulative time, and the slowest
imports from `-X importtime`). The last line reads `process: preview/floor <ratio> at <N> apps`.
"""

from __future__ import annotations

import json
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .offline import Secret
from .replay import replay

PROJECT = Path(__file__).resolve().parent.parent


def _wire(value: Any) -> Any:
    if isinstance(value, Secret):
        return {"__secret__": _wire(value.value)}
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _unwire(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__secret__"}:
            return Secret(_unwire(value["__secret__"]))
        return {k: _unwire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwire(v) for v in value]
    return value


def write_inputs(apps: int, folder: Path) -> tuple[Path, Path]:
    """The stack file of `apps` apps and the registrations its program makes, as JSON."""
    from .bench import stack_config
    from .offline import run_program

    config = stack_config(apps)
    stack = folder / "Pulumi.bench.yaml"
    decoded = {k: json.loads(v) if v[:1] in "[{" else v for k, v in config.items()}
    stack.write_text(yaml.safe_dump({"config": decoded}))
    run = run_program(config, [])
    registrations = folder / "registrations.json"
    registrations.write_text(json.dumps([{"type": r.type, "name": r.name, "custom": r.custom, "inputs": _wire(r.inputs)}
                                         for r in run.registrations]))
    return stack, registrations


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=PROJECT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def preview_command(stack: Path, folder: Path) -> list[str]:
    return [sys.executable, "-m", "tools.preview", "--config-file", str(stack),
            "--render-dir", str(folder / "render"), "--report", str(folder / "report.json")]


def _profile(stack: Path, folder: Path) -> None:
    """Where the preview process's time goes: its imports, then its calls."""
    imports = subprocess.run([sys.executable, "-X", "importtime", "-c", "import tools.preview"], cwd=PROJECT,
                             capture_output=True, text=True, check=True).stderr
    rows = []
    for line in imports.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match and len(match.group(3)) <= 2:  # top-level imports and their direct children
            rows.append((int(match.group(2)), match.group(4)))
    print("slowest imports (cumulative ms):", ", ".join(f"{name} {us / 1000:.0f}" for us, name in sorted(rows)[-8:][::-1]))
    out = folder / "preview.prof"
    command = preview_command(stack, folder)
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), *command[1:]], cwd=PROJECT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(r"(components|tools|policies)/", 25)


def main(sizes: list[int], repeat: int, profile: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = {}
        for apps in sizes:
            (folder / str(apps)).mkdir()
            inputs[apps] = write_inputs(apps, folder / str(apps))
        rounds: dict[int, list[tuple[float, float]]] = {apps: [] for apps in sizes}
        _timed([sys.executable, "-c", "import tools.preview"])  # warm the OS file cache and .pyc files
        for _ in range(repeat):
            for apps in sizes:
                stack, registrations = inputs[apps]
                preview_s = _timed(preview_command(stack, folder / str(apps)))
                floor_s = _timed([sys.executable, "-m", "tools.bench_process", str(registrations)])
                rounds[apps].append((preview_s, floor_s))
        print("apps  preview s  floor s  preview/floor")
        for apps in sizes:
            ratio = statistics.median(p / f for p, f in rounds[apps])
            print(f"{apps:4d}  {min(p for p, _ in rounds[apps]):9.2f}  {min(f for _, f in rounds[apps]):7.2f}  "
                  f"{ratio:13.2f}")
        if profile:
            _profile(inputs[sizes[-1]][0], folder / str(sizes[-1]))
        main_size = 100 if 100 in sizes else sizes[-1]
        ratio = statistics.median(p / f for p, f in rounds[main_size])
        print(f"process: preview/floor {ratio:.2f} at {main_size} apps")
    return 0


def floor_process(registrations: Path) -> None:
    """The floor's process: the SDK imported, the resources registered bare, nothing else."""
    records = json.loads(registrations.read_text())
    replay([(r["type"], r["name"], r["custom"], _unwire(r["inputs"])) for r in records])


if __name__ == "__main__":
    floor_process(Path(sys.argv[1]))
