"""python -m tools.engine VERB [--stack NAME] [--diff] [--policy-pack PATH]... [--json]

The real Pulumi engine (built by `make engine`) on a stack of this project: the same CLI,
engine, Kubernetes provider and policy pack as `pulumi preview/up`, with the program run
through the Automation API (see tools/engine/__init__.py for why).

Verbs: preview, up, destroy, refresh, cancel (removes the lock an interrupted `up` left). The stack is the one whose Pulumi.<stack>.yaml is in the
project, created on first use. State: a local file backend in .engine/state unless
PULUMI_BACKEND_URL is set; secrets: the passphrase provider (PULUMI_CONFIG_PASSPHRASE or
PULUMI_CONFIG_PASSPHRASE_FILE); plugins: only those in .engine/bin, never downloaded.

Exit codes:
  0  clean
  1  a mandatory policy violation
  2  a config error (the program's own message, no traceback), or a wrong command line
  3  the program itself failed (a bug, not a config problem; the traceback is shown)
  4  the engine failed (a provider, the backend, the API server: the engine's message is shown)
  5  a guard refused the change (the history lock or the stanza guard: the key path and the fix)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

from pulumi import automation as auto

from ..gc_pause import gc_paused
from . import (
    EXIT_ENGINE,
    EXIT_OK,
    EXIT_POLICY,
    POLICY_PACK,
    PROJECT_DIR,
    EngineUnavailable,
    Extra,
    Outcome,
    plain,
    select_stack,
)
from .changes import AppChanges

VERBS = ("preview", "up", "destroy", "refresh", "cancel")


def parse(argv: Optional[list[str]]) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m tools.engine", description=doc.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("verb", choices=VERBS)
    parser.add_argument("--stack", default="dev", help="the stack whose Pulumi.<stack>.yaml to use (default dev)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="the folder with Pulumi.yaml and the stack files (default: this project)")
    parser.add_argument("--diff", action="store_true", help="show a detailed diff of every change")
    parser.add_argument("--policy-pack", action="append", type=Path, metavar="PATH",
                        help="run this policy pack (repeatable; default: the project's pack, policies/pack)")
    parser.add_argument("--policy-pack-config", action="append", type=Path, metavar="FILE",
                        help="JSON config of the policy pack at the same position (repeatable)")
    parser.add_argument("--no-policy", action="store_true", help="run no policy pack")
    parser.add_argument("--clear-pending-creates", action="store_true",
                        help="refresh: drop the creates an interrupted update left pending (the next up makes them)")
    parser.add_argument("--json", action="store_true",
                        help="print the engine's JSON (preview) or its event stream as JSON lines")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", args.stack):
        parser.error(f"--stack {args.stack!r} is not a stack name (letters, digits, '-', '_', '.')")
    packs = [] if args.no_policy else (args.policy_pack or [POLICY_PACK])
    for pack in packs:
        if not pack.exists():
            parser.error(f"--policy-pack {pack}: no such file or folder")
    for config in args.policy_pack_config or []:
        if not config.is_file():
            parser.error(f"--policy-pack-config {config}: no such file")
    if len(args.policy_pack_config or []) > len(packs):
        parser.error("more --policy-pack-config files than policy packs: each configures the pack at its position")
    args.packs = [str(p.resolve()) for p in packs]
    args.pack_configs = [str(p.resolve()) for p in args.policy_pack_config or []]
    return args


def run(args: argparse.Namespace, extra: Optional[Extra] = None) -> int:
    outcome = Outcome()
    try:
        stack = select_stack(args.stack, outcome, project_dir=args.project_dir.resolve(), extra=extra,
                             preview=args.verb == "preview")
    except EngineUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except auto.CommandError as error:
        print(f"error: the engine could not select the stack: {error}", file=sys.stderr)
        return EXIT_ENGINE

    def on_output(line: str) -> None:
        if not args.json or args.verb == "preview":
            print(line, flush=True)

    changes = AppChanges()

    def on_event(event: Any) -> None:
        outcome.take(event)
        changes.take(event)
        if args.json and args.verb != "preview":
            print(json.dumps(plain(event), sort_keys=True), flush=True)

    def on_error(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    common: dict[str, Any] = {"on_output": on_output, "on_error": on_error, "on_event": on_event, "color": "never"}
    policy = {"policy_packs": args.packs, "policy_pack_configs": args.pack_configs}
    failed = False
    try:
        # The program runs in this process (the Automation API), and its objects live until the
        # run ends: with the cyclic GC on, its full passes over them took 42% of a 500-app preview.
        with gc_paused():
            if args.verb == "preview":
                stack.preview(diff=args.diff, json=args.json, **policy, **common)
            elif args.verb == "up":
                stack.up(diff=args.diff, **policy, **common)
            elif args.verb == "refresh":
                stack.refresh(clear_pending_creates=args.clear_pending_creates or None, **common)
            elif args.verb == "cancel":
                stack.cancel()
                print(f"cancelled: the lock of stack {args.stack} is removed; now `refresh --clear-pending-creates`, then `up`")
            else:
                stack.destroy(**common)
    except auto.ConcurrentUpdateError:
        failed = True
        print(f"error: stack {args.stack} is locked by another update, or by one that was interrupted. If none "
              f"is running: `python -m tools.engine cancel --stack {args.stack}`, then "
              f"`python -m tools.engine refresh --clear-pending-creates --stack {args.stack}`, then `up` "
              "(README, CI: an interrupted up)", file=sys.stderr)
    except auto.CommandError as error:
        failed = True
        if args.verb == "cancel":
            print(f"error: {error}", file=sys.stderr)
    code = outcome.exit_code(failed)
    if code in (EXIT_OK, EXIT_POLICY) and args.verb in ("preview", "up") and not args.json:
        for line in changes.note():
            print(line)
    if outcome.config_error is not None:
        print(f"error: {outcome.config_error}", file=sys.stderr)
    elif code == EXIT_ENGINE:
        print("error: the engine failed; its messages are above", file=sys.stderr)
    return code


def main(argv: Optional[list[str]] = None, extra: Optional[Extra] = None) -> int:
    args = parse(argv)
    try:
        return run(args, extra)
    except KeyboardInterrupt:
        return EXIT_ENGINE


if __name__ == "__main__":
    sys.exit(main())
