"""The real Pulumi engine (CLI, engine, Kubernetes provider, dynamic-provider plugin and the
policy pack as an analyzer plugin, all built by `make engine`) running the program through
`python -m tools.engine`, as a user does.

From here on the offline harness is checked against the engine: what the engine plans for each
shipped stack must be what the offline preview records for it, and what `up` renders what the
offline render writes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tools.engine import PROJECT_DIR
from tools.offline import Secret, Unknown, load_stack_file, revealed, run_program
from tools.stackfile import read_yaml

from .engine import EngineProject, engine_ready, kubernetes_objects, require_engine, secure_paths

SHIPPED = [PROJECT_DIR / "Pulumi.dev.yaml", *sorted((PROJECT_DIR / "examples").glob("Pulumi.*.yaml"))]
SECRET = "[secret]"
UNKNOWN = "[unknown]"
#: The engine's spelling of a value not known until apply (sdk/go/common/resource/plugin).
ENGINE_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture(scope="module", autouse=True)
def _built() -> None:
    require_engine()


def shipped(folder: Path, path: Path) -> EngineProject:
    """A shipped stack in a project of the test's: as the engine can run it (engine_ready), each
    `secure:` value set with `pulumi config set --secret` to the placeholder the offline preview
    gives it, so that both sides hold the same values."""
    document = read_yaml(path)
    config = engine_ready(document["config"])
    secrets = {p: f"offline-placeholder-for-{p}" for key, value in config.items() for p in secure_paths(value, key)}
    return EngineProject.make(folder, config, stack=path.stem.removeprefix("Pulumi."), secrets=secrets)


def offline_view(value: Any) -> Any:
    if isinstance(value, Secret):
        return SECRET
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {k: offline_view(v) for k, v in value.items()}
    if isinstance(value, list):
        return [offline_view(v) for v in value]
    return value


def engine_view(value: Any) -> Any:
    if value == ENGINE_UNKNOWN:
        return UNKNOWN
    if isinstance(value, dict):
        return {k: engine_view(v) for k, v in value.items()}
    if isinstance(value, list):
        return [engine_view(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def differences(left: Any, right: Any, at: str = "") -> list[str]:
    """Where two values differ, by path: what an assertion message should say."""
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in sorted(left.keys() | right.keys(), key=str):
            if key not in left or key not in right:
                found.append(f"{at}.{key}: {left.get(key, '<absent>')!r} != {right.get(key, '<absent>')!r}")
            else:
                found += differences(left[key], right[key], f"{at}.{key}")
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [d for i, (a, b) in enumerate(zip(left, right)) for d in differences(a, b, f"{at}[{i}]")]
    return [] if left == right else [f"{at}: {left!r} != {right!r}"]


def engine_plan(project: EngineProject, *flags: str) -> tuple[dict[str, Any], str]:
    result = project.run("preview", "--json", *flags)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    digest = json.loads(result.stdout)
    return {step["urn"]: step for step in digest["steps"]}, result.stdout


def offline_plan(project: EngineProject) -> dict[str, Any]:
    """The stack and every resource the program registered (the engine's default providers are
    not steps of its plan, so they are left out here too)."""
    config, secret_keys, _ = load_stack_file(project.stack_file)
    run = run_program(config, secret_keys, stack=project.stack, preview=True)
    assert run.stack is not None
    return {r.urn: r for r in [run.stack, *run.registrations]}


def as_checked(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as the Kubernetes provider's Check leaves them, in the two ways the engine showed:

    * a Secret's `stringData` is folded into `data` (base64), and `data` is secret as a whole;
    * a PersistentVolume's empty `storageClassName` is dropped (a volume with no class either
      way). A claim keeps its empty class (test_an_empty_claim_class_survives_the_provider),
      which matters: absent, the API server would fill in the default class.

    Every other object's inputs are the program's as they are."""
    if inputs.get("kind") == "PersistentVolume" and inputs.get("spec", {}).get("storageClassName") == "":
        return {**inputs, "spec": {k: v for k, v in inputs["spec"].items() if k != "storageClassName"}}
    if inputs.get("kind") != "Secret" or not inputs.get("apiVersion") == "v1":
        return inputs
    checked = {k: v for k, v in inputs.items() if k not in ("data", "stringData")}
    if "data" in inputs or "stringData" in inputs:
        checked["data"] = SECRET
    return checked


# -- the engine plans what the offline preview records ------------------------------------------

@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem.removeprefix("Pulumi."))
def test_the_engine_plans_what_the_offline_preview_records(tmp_path, path):
    project = shipped(tmp_path / "project", path)
    steps, _ = engine_plan(project)
    offline = offline_plan(project)
    assert sorted(steps) == sorted(offline), "the engine and the offline preview plan different resources"
    compared, found = 0, []
    for urn, registration in offline.items():
        state = steps[urn]["newState"]
        assert steps[urn]["op"] == "create", urn
        assert state["type"] == registration.type, urn
        assert state.get("parent", "") == registration.parent, urn
        if registration.type.startswith("kubernetes:") and "kind" in registration.inputs:
            found += [f"{urn.rsplit('::', 1)[1]}{d}" for d in
                      differences(engine_view(state["inputs"]), as_checked(offline_view(registration.inputs)))]
            compared += 1
    assert not found, "engine != offline:\n" + "\n".join(found)
    assert compared > 10


def test_an_empty_claim_class_survives_the_provider(tmp_path):
    """The static claims of a CephFS repository bind to their volume only with class "": the
    provider drops the empty class from the volume, never from the claim."""
    steps, _ = engine_plan(shipped(tmp_path / "project", PROJECT_DIR / "examples" / "Pulumi.cephfs.yaml"))
    claims = [s["newState"]["inputs"] for s in steps.values()
              if s["newState"]["type"] == "kubernetes:core/v1:PersistentVolumeClaim"
              and s["newState"]["inputs"]["spec"].get("volumeName")]
    assert claims and all(c["spec"]["storageClassName"] == "" for c in claims)


# -- the policy gate ------------------------------------------------------------------------------

def dev_project(folder: Path, **changes: Any) -> EngineProject:
    config = engine_ready(read_yaml(PROJECT_DIR / "Pulumi.dev.yaml")["config"])
    config.update({f"backups:{key}": value for key, value in changes.items()})
    return EngineProject.make(folder, config, stack="gate")


def test_a_ceph_filesystem_app_is_a_config_error_and_with_the_guardrail_off_the_gate_stops_it(tmp_path):
    app = {"name": "radarr", "namespace": "media", "storageClass": "ceph-filesystem"}
    refused = dev_project(tmp_path / "p", apps=[app]).run("preview")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "backups:apps[0].storageClass: 'ceph-filesystem' is banned" in refused.stdout + refused.stderr
    result = dev_project(tmp_path / "q", apps=[app], guardrails={"bannedStorageClasses": []}).run("preview")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no-banned-storage-class-for-backups" in result.stdout and "mandatory" in result.stdout
    assert result.stdout.count("media/radarr is backed up on storage class 'ceph-filesystem'") == 1, result.stdout


def garage_project(folder: Path, password: str = "garage-shared-password") -> EngineProject:
    config = engine_ready(read_yaml(PROJECT_DIR / "examples" / "Pulumi.garage.yaml")["config"])
    return EngineProject.make(folder, config, stack="garage", secrets={
        "backups:password": password,
        "backups:repositories[0].credentials.secretAccessKey": "garage-secret-key",
    })


@pytest.mark.parametrize("failure, policy, expected", [
    ("split-password", "kopia-shared-password", "2 different KOPIA_PASSWORDs for the one Kopia repository"),
    ("per-app-prefix", "kopia-repository-at-bucket-root", "has a path below the bucket"),
])
def test_the_seeds_failures_are_stopped_by_the_gate(tmp_path, failure, policy, expected):
    project = garage_project(tmp_path / "p", password="the-one-password-of-garage")
    env = project.env()
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e.hand_written", failure, "preview", "--stack", project.stack,
         "--project-dir", str(project.folder)], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert policy in result.stdout and expected in result.stdout and "mandatory" in result.stdout
    for password in ("the-one-password-of-garage", "radarr-volsync-backup-password"):
        assert password not in result.stdout + result.stderr


def test_advisories_warn_and_pass_and_pack_config_changes_a_level(tmp_path):
    config = engine_ready(read_yaml(PROJECT_DIR / "examples" / "Pulumi.garage.yaml")["config"])
    config["backups:repositories"][0]["s3"]["endpoint"] = "http://s3.example.com:3900"
    project = EngineProject.make(tmp_path / "p", config, stack="advisory", secrets={
        "backups:password": "pw", "backups:repositories[0].credentials.secretAccessKey": "key"})
    advised = project.run("preview")
    assert advised.returncode == 0, advised.stdout + advised.stderr
    assert "s3-tls-off-only-on-private-networks" in advised.stdout and "advisory" in advised.stdout
    levels = tmp_path / "levels.json"
    levels.write_text(json.dumps({"s3-tls-off-only-on-private-networks": "mandatory"}))
    gated = project.run("preview", "--policy-pack-config", str(levels))
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "s3-tls-off-only-on-private-networks" in gated.stdout and "mandatory" in gated.stdout


# -- up in render mode -----------------------------------------------------------------------------

def redacted(body: dict[str, Any], secret_paths: set[tuple[Any, ...]]) -> dict[str, Any]:
    def walk(value: Any, at: tuple[Any, ...]) -> Any:
        if at in secret_paths:
            return SECRET
        if isinstance(value, dict):
            return {k: walk(v, (*at, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*at, i)) for i, v in enumerate(value)]
        return value
    return walk(body, ())


def secret_positions(value: Any, at: tuple[Any, ...] = ()) -> set[tuple[Any, ...]]:
    if isinstance(value, Secret):
        return {at}
    if isinstance(value, dict):
        return set().union(*(secret_positions(v, (*at, k)) for k, v in value.items())) if value else set()
    if isinstance(value, list):
        return set().union(*(secret_positions(v, (*at, i)) for i, v in enumerate(value))) if value else set()
    return set()




def folded(body: dict[str, Any], positions: set[tuple[Any, ...]]) -> tuple[dict[str, Any], set[tuple[Any, ...]]]:
    """A Secret as the provider renders it: `stringData` folded into `data`, base64 (as its
    Check does), the secret positions moving along."""
    if body.get("kind") != "Secret" or "stringData" not in body:
        return body, positions
    data = {**body.get("data", {}),
            **{k: base64.b64encode(v.encode()).decode() for k, v in body["stringData"].items()}}
    moved = {("data", *p[1:]) if p[:1] == ("stringData",) else p for p in positions}
    return {**{k: v for k, v in body.items() if k != "stringData"}, "data": data}, moved


PASSWORD = "e2e-marker-kopia-password-5c1d"
SECRET_KEY = "e2e-marker-garage-secret-key-9e7a"


def test_up_renders_what_the_offline_render_writes_and_keeps_secrets_secret(tmp_path):
    config = engine_ready(read_yaml(PROJECT_DIR / "examples" / "Pulumi.garage.yaml")["config"])
    project = EngineProject.make(tmp_path / "p", config, stack="garage", secrets={
        "backups:password": PASSWORD, "backups:repositories[0].credentials.secretAccessKey": SECRET_KEY})
    first = project.run("up")
    assert first.returncode == 0, first.stdout + first.stderr

    expected = {key: folded(revealed(inputs), secret_positions(inputs)) for key, inputs in
                kubernetes_objects(project.stack_file, project.stack, {"backups:password": PASSWORD}).items()}
    rendered = project.rendered()
    assert sorted(rendered) == sorted(expected)
    for key, (body, positions) in expected.items():
        assert redacted(rendered[key], positions) == redacted(body, positions), key

    second = project.run("preview", "--json")
    assert second.returncode == 0, second.stderr
    ops = {step["op"] for step in json.loads(second.stdout)["steps"]}
    assert ops == {"same"}, ops
    again = project.run("up")
    assert again.returncode == 0 and re.search(r"\b\d+ unchanged", again.stdout), again.stdout

    outputs = project.pulumi("stack", "output", "--json").stdout
    assert PASSWORD not in outputs and SECRET_KEY not in outputs
    state = project.state_file().read_text()
    stack_file = project.stack_file.read_text()
    for value in (PASSWORD, SECRET_KEY):
        assert value not in state, "a secret in plain text in the state file"
        assert value not in stack_file
    assert '"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270"' in state  # secrets, encrypted


# -- the guards under the real engine -------------------------------------------------------------

def guarded_project(folder: Path) -> EngineProject:
    config = engine_ready(read_yaml(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")["config"])
    project = EngineProject.make(folder, config, stack="guards")
    result = project.run("up")
    assert result.returncode == 0, result.stdout + result.stderr
    return project


def changed(project: EngineProject, edit) -> None:  # type: ignore[no-untyped-def]
    config = project.config()
    edit(config)
    project.write_config(config)


def test_the_guards_refuse_at_preview_with_the_key_path_and_let_each_change_through_when_allowed(tmp_path):
    project = guarded_project(tmp_path / "p")
    original = project.config()

    def identity(config: dict[str, Any], allow: bool = False) -> None:
        config["backups:apps"][0]["identity"] = "radarr@elsewhere"
        if allow:
            config["backups:apps"][0]["allowIdentityChange"] = True

    def shrink(config: dict[str, Any], allow: bool = False) -> None:
        config["backups:apps"][0]["capacity"] = "5Gi"
        if allow:
            config["backups:apps"][0]["recreateClaim"] = "shrink-1"

    def stanza(config: dict[str, Any], allow: bool = False) -> None:
        config["backups:databases"][0]["stanza"] = "renamed"
        if allow:
            config["backups:databases"][0]["allowStanzaRename"] = True

    cases = [
        (identity, "backups:apps[0] (radarr)", "allowIdentityChange: true"),
        (shrink, "backups:apps[0].capacity (radarr)", "recreateClaim"),
        (stanza, "backups:databases[0].stanza (database/postgres18-cluster)", "allowStanzaRename: true"),
    ]
    for edit, where, fix in cases:
        project.write_config(original)
        changed(project, edit)
        refused = project.run("preview")
        assert refused.returncode == 5, edit.__name__ + refused.stdout + refused.stderr
        assert where in refused.stdout + refused.stderr and fix in refused.stdout + refused.stderr, edit.__name__
        assert TRACEBACK not in refused.stdout + refused.stderr
        project.write_config(original)
        changed(project, lambda c, e=edit: e(c, allow=True))
        allowed = project.run("preview")
        assert allowed.returncode == 0, edit.__name__ + allowed.stdout + allowed.stderr


# -- config errors -----------------------------------------------------------------------------------

def test_a_bad_config_gives_the_programs_message_and_exit_2(tmp_path):
    project = dev_project(tmp_path / "p", apps=[{"name": "radarr", "namespace": "media", "capacity": "10Gx"}])
    result = project.run("preview")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "backups:apps[0].capacity" in result.stdout + result.stderr
    assert TRACEBACK not in result.stdout + result.stderr


# -- the README's commands, as written -------------------------------------------------------------

def readme_block(heading: str) -> list[str]:
    """The command lines of the first `sh` block under `heading` in the README."""
    text = (PROJECT_DIR / "README.md").read_text()
    section = text.split(f"\n{heading}\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def project_copy(folder: Path) -> Path:
    """The project's files in `folder` (the tree as it is, committed or not), with its
    virtualenv and its built engine linked in: what a clone after `make engine` has."""
    def ignored(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in {".venv", ".engine", ".git", "rendered", "node_modules", "__pycache__"}}
    shutil.copytree(PROJECT_DIR, folder, ignore=ignored, symlinks=True)
    (folder / ".venv").symlink_to(PROJECT_DIR / ".venv")
    (folder / ".engine").mkdir()
    (folder / ".engine" / "bin").symlink_to(PROJECT_DIR / ".engine" / "bin")
    return folder


def test_the_readme_engine_commands_run_as_written(tmp_path):
    lines = readme_block("## The real engine")
    assert lines[0] == "make preview" and any(line.startswith("export ") for line in lines)
    folder = project_copy(tmp_path / "clone")
    # A user's shell: no PULUMI_ settings, and not inside another make (`make e2e` runs this,
    # and a nested make would announce the directory first).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PULUMI_") and k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    outputs = []
    for line in lines:
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
            continue
        result = subprocess.run(["bash", "-c", line], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        outputs.append(result.stdout)
    assert outputs[0].splitlines()[0].startswith("make preview: the real Pulumi engine"), outputs[0][:300]
    assert "homelab-backups-guardrails" in outputs[0] and re.search(r"\+ \d+ to create", outputs[0])
    assert list((folder / "rendered").rglob("*.yaml")), "up rendered nothing"
    assert {step["op"] for step in json.loads(outputs[-1])["steps"]} == {"same"}
    assert (folder / "Pulumi.dev.yaml").read_text() == (PROJECT_DIR / "Pulumi.dev.yaml").read_text()


def test_no_stack_file_or_no_passphrase_is_exit_2_saying_what_to_set(tmp_path):
    project = dev_project(tmp_path / "p")
    env = {k: v for k, v in project.env().items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    unset = subprocess.run(project.command("preview"), cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert unset.returncode == 2 and "set PULUMI_CONFIG_PASSPHRASE" in unset.stderr, unset.stderr
    missing = subprocess.run([*project.command("preview")[:-4], "--stack", "nosuch", "--project-dir", str(project.folder)],
                             cwd=PROJECT_DIR, env=project.env(), capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no stack file" in missing.stderr and TRACEBACK not in missing.stderr, missing.stderr
