"""`python -m tools.pr_diff`: the README's recipe for the manifest diff a pull request shows."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import yaml

from .conftest import PROJECT_DIR

_SKIP = shutil.ignore_patterns(".git", ".venv", ".engine", "rendered", "node_modules", "__pycache__", ".mypy_cache",
                               ".ruff_cache", ".pytest_cache")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo), *args],
                          check=True, capture_output=True, text=True).stdout


def _checkout(folder: Path, init: Optional[Path] = None) -> Path:
    """The project as a fresh repository (rooted at `init`, default the project) with one commit
    (the code under test, committed or not)."""
    shutil.copytree(PROJECT_DIR, folder, ignore=_SKIP)
    stack = folder / "Pulumi.dev.yaml"  # one app is enough to see a diff, and renders in half the time
    document = yaml.safe_load(stack.read_text())
    document["config"]["backups:apps"] = document["config"]["backups:apps"][:1]
    document["config"].pop("backups:schedulePins")
    stack.write_text(yaml.safe_dump(document))
    root = init or folder
    _git(root, "init", "--quiet")
    _git(root, "add", "-A")
    _git(root, "commit", "--quiet", "-m", "base")
    return folder


def _pr_diff(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.pr_diff", "--project-dir", str(project), *args],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)


def test_the_diff_shows_an_uncommitted_change_and_leaves_stashes_and_the_tree_alone(tmp_path):
    # The project below the repository's root, as in a homelab repository with other things in it.
    root = tmp_path / "repo"
    root.mkdir()
    repo = _checkout(root / "infra" / "backups", init=root)
    (repo / "notes.txt").write_text("someone's stash\n")
    _git(repo, "stash", "push", "--include-untracked", "--quiet", "-m", "unrelated")
    stashes = _git(repo, "stash", "list")
    stack = repo / "Pulumi.dev.yaml"
    document = yaml.safe_load(stack.read_text())
    document["config"]["backups:apps"].append({"name": "sonarr", "namespace": "media"})
    stack.write_text(yaml.safe_dump(document))
    edited = stack.read_text()
    (repo / "Pulumi.lab.yaml").write_text(edited)  # a new, untracked stack file

    result = _pr_diff(repo)
    assert result.returncode == 0, result.stderr
    assert "+  name: sonarr-nas" in result.stdout and "-  name: radarr-nas" not in result.stdout, result.stdout[-3000:]
    new = _pr_diff(repo, "--stack", "lab")
    assert new.returncode == 0 and "note: Pulumi.lab.yaml is not in HEAD: no diff, every object is new" in new.stdout
    assert _git(repo, "stash", "list") == stashes and stack.read_text() == edited
    assert len(_git(repo, "worktree", "list").splitlines()) == 1  # only the checkout itself remains


def test_outside_a_checkout_or_with_an_unknown_base_it_is_a_usage_error(tmp_path):
    plain = _pr_diff(tmp_path)
    assert plain.returncode == 2 and "is not a git checkout" in plain.stderr, plain.stderr
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet")
    unknown = _pr_diff(repo, "--base", "no-such-branch")
    assert unknown.returncode == 2 and "has no commit 'no-such-branch'" in unknown.stderr
    assert "Traceback" not in plain.stderr + unknown.stderr
