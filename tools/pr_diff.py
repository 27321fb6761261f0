"""The manifest diff a pull request would show, made locally: the working tree against a commit.

    python -m tools.pr_diff [--base REV] [--stack NAME] [--project-dir DIR]

The base (default `HEAD`) is checked out into a temporary `git worktree` and rendered there by
the offline preview with the base's own code; then the working tree is previewed with
`--diff-against` that render. Unlike a `git stash` round trip it sees untracked files (a new
stack file is "not in the base": every object new), never pops someone else's stash, and leaves
the working tree alone. The worktree is removed afterwards, whatever happened.

Exit codes: the working tree's preview's (0, 1 policy, 2 config, 3 bug); 2 as well for a
directory that is not a git checkout or a base that does not resolve.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

#: Not imported from tools.offline: that loads the Pulumi SDK, and this process only runs git.
PROJECT_DIR = Path(__file__).resolve().parent.parent


def _git(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True)


def _preview(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The offline preview of `tree` with `tree`'s own code (and its policy pack)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "policies")])}
    return subprocess.run([sys.executable, "-m", "tools.preview", *args], cwd=tree, env=env,
                          capture_output=True, text=True)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.pr_diff", description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="HEAD", help="the commit to diff against (default: HEAD)")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    project = args.project_dir.resolve()
    resolved = _git(project, "rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}")
    if resolved.returncode != 0:
        what = "is not a git checkout" if _git(project, "rev-parse").returncode else f"has no commit {args.base!r}"
        print(f"error: {project} {what}", file=sys.stderr)
        return 2
    stack_file = f"Pulumi.{args.stack}.yaml"
    prefix = _git(project, "rev-parse", "--show-prefix").stdout.strip()  # the project may sit below the root
    with tempfile.TemporaryDirectory(prefix="pr-diff-") as scratch:
        tree, render = Path(scratch) / "base", Path(scratch) / "render"
        base = tree / prefix
        added = _git(project, "worktree", "add", "--quiet", "--detach", str(tree), resolved.stdout.strip())
        if added.returncode != 0:
            print(f"error: git worktree add: {added.stderr.strip()}", file=sys.stderr)
            return 2
        try:
            against: list[str] = []
            if not (base / stack_file).is_file():
                print(f"note: {stack_file} is not in {args.base}: no diff, every object is new")
            else:
                before = _preview(base, "--stack", args.stack, "--render-dir", str(render))
                if before.returncode == 0:
                    against = ["--diff-against", str(render)]
                else:
                    print(f"note: {args.base} does not render {stack_file} (exit {before.returncode}): no diff")
            after = _preview(project, "--stack", args.stack, *against)
        finally:
            _git(project, "worktree", "remove", "--force", str(tree))
            _git(project, "worktree", "prune")  # should the removal have failed, no stale entry stays
    sys.stdout.write(after.stdout)
    sys.stderr.write(after.stderr)
    return after.returncode


if __name__ == "__main__":
    raise SystemExit(main())
