"""Pin every preset-scheduled job's minute into the stack file, so no later edit moves it.

    python -m tools.pin_schedules [--stack dev] [--dir DIR] [--check]

Reads `Pulumi.<stack>.yaml`, plans the schedules exactly as the program does (existing pins
kept, new jobs placed around them) and writes them back as `backups:schedulePins`, replacing
that one block and leaving the rest of the file (comments included) as it was. Pins of jobs that
are gone are dropped. `--check` writes nothing and exits 1 when the pins are not current (for
CI). Exit 2: the stack file or its config is unusable; 3: the file's layout defeated the
line-based edit (nothing written).

Pinned, an app keeps its minutes when any other app is added or removed (components/schedule.py
says why that needs this memory). Unpinned apps still get balanced minutes; they are only stable
while apps are appended at the end of `backups:apps`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Optional

import yaml

from components.config import ConfigError, stack_config_of
from components.plan import StackPlan, plan_stack, preset_jobs

from .offline import PROJECT_DIR, load_stack_file, stack_file
from .stackfile import StackFileError

KEY = "backups:schedulePins"
_HEADER = "# Pinned by `make pin-schedules`: each backup keeps its minute when other apps come and go."


def current_pins(plan: StackPlan) -> dict[str, str]:
    """The pins the stack should have: every preset job's concrete schedule, in config order."""
    return {job.key.pin: plan.schedules[job.key] for job in preset_jobs(plan)}


def pin_command(path: Path) -> str:
    """The command that pins the stack in `path`: `make pin-schedules` pins the project's own
    stack files (STACK=dev unless told), the tool any other file."""
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if path.resolve().parent == PROJECT_DIR.resolve() and path.name == f"Pulumi.{stack}.yaml":
        return "make pin-schedules" + ("" if stack == "dev" else f" STACK={stack}")
    return f"python -m tools.pin_schedules --config-file {shlex.quote(str(path))}"


def pin_report(plan: StackPlan, path: Path, wanted: Optional[dict[str, str]] = None) -> Optional[str]:
    """One line saying how the stack's pins differ from `wanted` (default: current_pins(plan)),
    or None when they match; it ends with the command that pins the stack in `path`."""
    wanted = current_pins(plan) if wanted is None else wanted
    have = plan.schedule_pins
    new = sum(1 for key in wanted if key not in have)
    moved = sum(1 for key in wanted if key in have and have[key] != wanted[key])
    gone = sum(1 for key in have if key not in wanted)
    if not (new or moved or gone):
        return None
    parts = [f"{n} {what}" for n, what in ((new, "unpinned"), (moved, "stale"), (gone, "for jobs no longer configured")) if n]
    return f"schedule pins not current ({', '.join(parts)}): run `{pin_command(path)}`"


def render_block(pins: dict[str, str], indent: str) -> list[str]:
    if not pins:
        return []
    lines = [f"{indent}{_HEADER}", f"{indent}{KEY}:"]
    lines += [f"{indent}  {key}: {_quoted(cron)}" for key, cron in pins.items()]
    return lines


def _quoted(text: str) -> str:
    return '"' + text + '"'  # a cron holds `*`, which YAML would read as an alias


def with_pins(text: str, pins: dict[str, str]) -> str:
    """`text` (a Pulumi.<stack>.yaml) with its `backups:schedulePins` block replaced by `pins`.

    A line-based edit, so comments and layout elsewhere survive (a YAML round trip would drop
    them). The block goes at the end of the top-level `config:` mapping.
    """
    lines = text.splitlines()
    try:
        config_at = next(i for i, line in enumerate(lines) if line.rstrip() == "config:")
    except StopIteration:
        raise ValueError("no top-level `config:` mapping") from None
    end = next((i for i in range(config_at + 1, len(lines)) if _is_top_level(lines[i])), len(lines))
    entries = [i for i in range(config_at + 1, end) if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    indent = lines[entries[0]][: len(lines[entries[0]]) - len(lines[entries[0]].lstrip())] if entries else "  "

    body = lines[config_at + 1:end]
    start = next((i for i, line in enumerate(body) if line.startswith(f"{indent}{KEY}:")), None)
    if start is not None:
        stop = start + 1
        while stop < len(body) and (not body[stop].strip() or _indent_of(body[stop]) > len(indent)):
            stop += 1
        if start > 0 and body[start - 1].strip() == _HEADER:
            start -= 1
        del body[start:stop]
    while body and not body[-1].strip():
        body.pop()
    body += render_block(pins, indent)
    trailer = lines[end:]
    return "\n".join(lines[: config_at + 1] + body + ([""] if trailer else []) + trailer) + "\n"


def _edited(text: str, pins: dict[str, str]) -> Optional[str]:
    """`with_pins(text, pins)` if it reads back as the same config plus exactly these pins."""
    try:
        updated = with_pins(text, pins)
        reread = yaml.safe_load(updated)["config"]
    except (ValueError, yaml.YAMLError, KeyError, TypeError):
        return None
    original = yaml.safe_load(text)["config"]
    same = reread.pop(KEY, {}) == pins and {k: v for k, v in original.items() if k != KEY} == reread
    return updated if same else None


def _is_top_level(line: str) -> bool:
    return bool(line.strip()) and not line[0].isspace() and not line.startswith("#")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.pin_schedules", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--dir", type=Path, default=None, help="where Pulumi.<stack>.yaml is (default: the project)")
    parser.add_argument("--config-file", type=Path, help="a stack file anywhere, by its path (instead of --stack)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when pins are not current")
    args = parser.parse_args(argv)
    path = args.config_file or stack_file(args.stack, args.dir)
    try:
        values, _, _ = load_stack_file(path)
        plan = plan_stack(stack_config_of(values))
    except FileNotFoundError:
        print(f"error: {path.name} not found", file=sys.stderr)
        return 2
    except (ConfigError, StackFileError) as error:
        print(f"error: {path.name}: {error}", file=sys.stderr)
        return 2

    pins = current_pins(plan)
    report = pin_report(plan, path, pins)
    if args.check:
        print(report or f"{path.name}: schedule pins are current")
        return 1 if report else 0
    text = path.read_text()
    updated = _edited(text, pins)
    if updated is None:
        print(f"error: {path.name}: its layout (a block `config:` mapping is needed) does not let the "
              f"pins be written without touching other config; set {KEY} by hand", file=sys.stderr)
        return 3
    if updated != text:
        path.write_text(updated)
    print(f"{path.name}: {len(pins)} schedules pinned" + ("" if report else " (already current)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
