"""The offline preview as a user runs it: exit codes, summary, render, report, redaction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tools.offline import stack_file

from .conftest import PROJECT_DIR, dev_config, run_preview

DEV_PASSWORD = dev_config()["password"]


def preview(*args: str) -> subprocess.CompletedProcess:
    return run_preview(*args)


def preview_process(*args: str) -> subprocess.CompletedProcess:
    """The real command, as a user and the workflows run it."""
    return subprocess.run(
        [sys.executable, "-m", "tools.preview", *args], cwd=PROJECT_DIR, capture_output=True, text=True
    )


def write_stack(path, **changes):
    document = yaml.safe_load(stack_file("dev").read_text())
    for key, value in changes.items():
        document["config"][f"backups:{key}"] = value
    path.write_text(yaml.safe_dump(document))
    return path


def test_dev_stack_renders_reports_and_leaks_nothing(tmp_path):
    render, report = tmp_path / "rendered", tmp_path / "report.json"
    result = preview_process("--stack", "dev", "--render-dir", str(render), "--report", str(report))
    assert result.returncode == 0, result.stderr
    # Its password is plain config on purpose (it runs with no secrets provider): one warning,
    # naming the key, not one per Secret. Two apps set a uid the NFS movers do not run as.
    assert "  warning: backups:password: a secret in plain config" in result.stdout
    assert "39 resources, 3 warnings; policy pack passed: 6 rules ran, 0 mandatory and 0 advisory" in result.stdout
    assert "kubernetes:volsync.backube/v1alpha1:ReplicationSource" in result.stdout

    document = json.loads(report.read_text())
    assert set(document) >= {"resources", "policy", "summary"}
    claim = next(r for r in document["resources"] if r["type"] == "kubernetes:core/v1:PersistentVolumeClaim")
    assert claim["options"] == {"protect": False, "retainOnDelete": True}
    assert document["summary"]["policyRulesRun"] == 6
    assert [w.split(":")[1] for w in document["summary"]["warnings"]] == [
        "password", "apps[2].runAsUser", "apps[3].runAsUser"]

    files = sorted(render.rglob("*.yaml"))
    objects = [r for r in document["resources"] if r["type"].startswith("kubernetes:") and "kind" in r["inputs"]]
    assert len(files) == len(objects) and len(files) > 20  # one file per Kubernetes object
    secret = yaml.safe_load((render / "media" / "secret-volsync-kopia-nas.yaml").read_text())
    assert secret["stringData"] == {"KOPIA_PASSWORD": "[secret]", "KOPIA_REPOSITORY": "[secret]"}
    for text in [result.stdout, result.stderr, report.read_text()] + [f.read_text() for f in files]:
        assert DEV_PASSWORD not in text


def test_an_app_on_ceph_filesystem_is_one_config_error_at_its_key(tmp_path):
    apps = [{"name": "radarr", "namespace": "media", "storageClass": "ceph-filesystem"}, {"name": "sonarr", "namespace": "media"}]
    stack = write_stack(tmp_path / "Pulumi.cephfs.yaml", apps=apps)
    result = preview("--config-file", str(stack))
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines() == [
        "error: invalid stack config (1 problem):",
        "  backups:apps[0].storageClass: 'ceph-filesystem' is banned for backed-up volumes "
        "(backups:guardrails.bannedStorageClasses): CephFS restores can silently zero sparse files; use a "
        "block class (like ceph-block)"]


def test_with_the_guardrail_off_the_pack_stops_it_once_per_app_exit_1(tmp_path):
    apps = [{"name": "radarr", "namespace": "media", "storageClass": "ceph-filesystem"}, {"name": "sonarr", "namespace": "media"}]
    stack = write_stack(tmp_path / "Pulumi.cephfs.yaml", apps=apps, guardrails={"bannedStorageClasses": []})
    result = preview("--config-file", str(stack))
    assert result.returncode == 1
    (line,) = [line for line in result.stdout.splitlines() if "[mandatory]" in line]
    assert "no-banned-storage-class-for-backups" in line and "media/radarr is backed up on storage class" in line
    assert "policy pack FAILED" in result.stdout


def test_two_entries_for_one_repository_exit_2_naming_the_key_and_no_password(tmp_path):
    """Once the pack's (kopia-shared-password: a hand-written Secret still reaches it, see
    test_policies); from config it is refused before anything is built."""
    document = yaml.safe_load(stack_file("dev").read_text())
    nas = document["config"]["backups:repositories"][0]
    twin = {**nas, "name": "nas-too", "primary": False, "password": "a-second-password"}
    stack = write_stack(tmp_path / "Pulumi.twopasswords.yaml", repositories=[nas, twin])
    result = preview("--config-file", str(stack))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "backups:repositories[1].nfs: is the place nfs://nas.home/mnt/ssdtank/kopia" in result.stderr
    assert "a-second-password" not in result.stdout + result.stderr


def test_secure_values_become_placeholder_secrets(tmp_path):
    stack = write_stack(tmp_path / "Pulumi.prod.yaml", password={"secure": "v1:AAAA:bm90LWRlY3J5cHRhYmxl"})
    report = tmp_path / "report.json"
    result = preview("--config-file", str(stack), "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert "secure values replaced by placeholder secrets: backups:password" in result.stdout
    assert json.loads(report.read_text())["summary"]["placeholderSecrets"] == ["backups:password"]
    assert "offline-placeholder" not in report.read_text()


def test_it_never_clears_a_directory_it_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = preview("--render-dir", str(tmp_path))
    assert result.returncode == 2 and "not written by the offline preview" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_a_wrong_policy_config_is_a_usage_error(tmp_path):
    config = tmp_path / "pack.json"
    config.write_text('{"no-such-policy": "advisory"}')
    result = preview("--policy-config", str(config))
    assert result.returncode == 2 and "'no-such-policy' is not a policy of this pack" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_stack_with_unpinned_schedules_gets_a_note_and_its_report_says_so(tmp_path):
    path = write_stack(tmp_path / "Pulumi.lab.yaml", apps=[*dev_config()["apps"], {"name": "sonarr", "namespace": "media"}])
    report = tmp_path / "report.json"
    result = preview("--config-file", str(path), "--report", str(report))
    assert result.returncode == 0, result.stderr
    # sonarr's backup and drill; the command pins this file, not the dev stack `make pin-schedules` pins
    note = f"schedule pins not current (2 unpinned): run `python -m tools.pin_schedules --config-file {path}`"
    assert f"note: {note}" in result.stdout
    assert json.loads(report.read_text())["summary"]["schedulePins"] == note
    command = note.split("`")[1].replace("python", sys.executable, 1)
    assert subprocess.run(command, shell=True, cwd=PROJECT_DIR, capture_output=True).returncode == 0
    again = preview("--config-file", str(path))
    assert "schedule pins not current" not in again.stdout, again.stdout


def test_the_pin_hint_names_the_stack_it_pins():
    from tools.pin_schedules import pin_command
    assert pin_command(PROJECT_DIR / "Pulumi.dev.yaml") == "make pin-schedules"
    assert pin_command(PROJECT_DIR / "Pulumi.prod.yaml") == "make pin-schedules STACK=prod"
    assert pin_command(PROJECT_DIR / "examples" / "Pulumi.garage.yaml") == (
        f"python -m tools.pin_schedules --config-file {PROJECT_DIR / 'examples' / 'Pulumi.garage.yaml'}")
    assert pin_command(Path("/tmp/my stacks/lab.yaml")) == "python -m tools.pin_schedules --config-file '/tmp/my stacks/lab.yaml'"


def test_checkpoints_are_skipped_for_a_preview_only(monkeypatch):
    """An exported PULUMI_SKIP_CHECKPOINTS must not reach an up: its checkpoints are what an
    interrupted update is recovered from."""
    from tools import engine

    seen = {}
    monkeypatch.setattr(engine, "check_ready", lambda env: seen.setdefault("env", dict(env)) and None)
    monkeypatch.setattr(engine.auto, "create_or_select_stack", lambda *a, **k: None)
    monkeypatch.setattr(engine.auto, "PulumiCommand", lambda **k: None)  # no CLI needed (make test has none)
    env = {"PULUMI_SKIP_CHECKPOINTS": "true", "PULUMI_CONFIG_PASSPHRASE": ""}
    engine.select_stack("dev", engine.Outcome(), env=env, preview=False)
    assert "PULUMI_SKIP_CHECKPOINTS" not in seen.pop("env")
    engine.select_stack("dev", engine.Outcome(), env={"PULUMI_CONFIG_PASSPHRASE": ""}, preview=True)
    assert seen["env"]["PULUMI_SKIP_CHECKPOINTS"] == "true"
