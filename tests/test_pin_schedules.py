"""Schedule pins: `make pin-schedules` writes them, and then no edit of the app list moves an app.

The end-to-end tests run the real program on the pinned stack file and compare the schedules it
emitted before and after an app is removed from the middle or inserted at the front.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from components.config import stack_config_of
from components.plan import night_window, scheduled_jobs
from components.schedule import plan_schedules
from tools import pin_schedules
from tools.offline import load_stack_file, run_program, stack_file

DEV = stack_file("dev")
KEY = "backups:schedulePins"


def source_schedules(path: Path) -> dict[str, str]:
    """ReplicationSource name -> the schedule the program emitted for this stack file."""
    config, secret_keys, _ = load_stack_file(path)
    run = run_program(config, secret_keys)
    return {
        r.inputs["metadata"]["name"]: r.inputs["spec"]["trigger"]["schedule"]
        for r in run.registrations
        if r.type.endswith(":ReplicationSource")
    }


def unpinned_stack(tmp_path: Path, apps: int = 30) -> Path:
    """The dev stack with many hourly apps, no pins, comments, and a key after `config:`."""
    document = {"config": yaml.safe_load(DEV.read_text())["config"]}  # the key after it is the test's
    document["config"].pop(KEY, None)
    document["config"]["backups:apps"] = [{"name": f"app{i:02d}", "namespace": f"ns{i % 3}"} for i in range(apps)]
    document["config"]["backups:drills"] = {"apps": "none"}  # backups only: a faster program run
    text = "# my homelab\n" + yaml.safe_dump(document, sort_keys=False).replace(
        "  backups:apps:", "  # every app that has data\n  backups:apps:"
    ) + "encryptionsalt: v1:abc\n"
    path = tmp_path / "Pulumi.lab.yaml"
    path.write_text(text)
    return path


def edit_apps(path: Path, edit) -> None:
    document = yaml.safe_load(path.read_text())
    document["config"]["backups:apps"] = edit(document["config"]["backups:apps"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def pin(path: Path) -> int:
    return pin_schedules.main(["--stack", "lab", "--dir", str(path.parent)])


@pytest.mark.parametrize("stack", ["dev", "garage", "cephfs", "nfs-b2-r2"])
def test_the_shipped_stacks_are_pinned(stack):
    directory = DEV.parent if stack == "dev" else DEV.parent / "examples"
    assert pin_schedules.main(["--stack", stack, "--dir", str(directory), "--check"]) == 0


def test_pinning_adds_one_block_and_keeps_everything_else(tmp_path):
    path = unpinned_stack(tmp_path)
    before_text, before = path.read_text(), source_schedules(path)
    assert pin_schedules.main(["--stack", "lab", "--dir", str(tmp_path), "--check"]) == 1
    assert pin(path) == 0
    text = path.read_text()
    assert "# my homelab" in text and "# every app that has data" in text and text.endswith("encryptionsalt: v1:abc\n")
    document = yaml.safe_load(text)
    pins = document["config"].pop(KEY)
    assert document == yaml.safe_load(before_text)
    # The pins are what the program was already emitting: pinning changes no schedule.
    backups = {k: v for k, v in pins.items() if k.count("/") == 2}  # namespace/app/repository
    assert {f"{k.split('/')[1]}-{k.split('/')[2]}": v for k, v in backups.items()} == before
    assert source_schedules(path) == before
    assert pin(path) == 0 and path.read_text() == text  # a second run changes nothing


def test_pinned_apps_keep_their_minutes_when_apps_leave_the_middle_or_arrive_first(tmp_path):
    path = unpinned_stack(tmp_path, apps=65)  # more than 60: minutes are shared, order matters
    pin(path)
    before = source_schedules(path)
    edit_apps(path, lambda apps: [a for a in apps if a["name"] not in ("app00", "app31")])
    after_removal = source_schedules(path)
    assert after_removal == {k: v for k, v in before.items() if k not in ("app00-nas", "app31-nas")}

    edit_apps(path, lambda apps: [{"name": "newcomer", "namespace": "ns0"}] + apps)
    after_insertion = source_schedules(path)
    assert {k: v for k, v in after_insertion.items() if k != "newcomer-nas"} == after_removal
    # The newcomer takes a least-loaded minute: the holes removed apps leave are filled first.
    load = Counter(after_removal.values())
    assert load[after_insertion["newcomer-nas"]] == min(load[f"{m} * * * *"] for m in range(60))
    assert pin_schedules.main(["--stack", "lab", "--dir", str(tmp_path), "--check"]) == 1  # newcomer unpinned


def test_without_pins_the_same_removal_moves_later_apps(tmp_path):
    """Why pins exist: without them the edit above moves apps listed after the removed ones (this
    must stay true of the fixture, or the test above would prove nothing)."""
    config = stack_config_of(load_stack_file(unpinned_stack(tmp_path, apps=65))[0])
    jobs = scheduled_jobs(config)
    before = plan_schedules(jobs, night_window(config))
    kept = [job for job in jobs if job.key.owner not in ("app00", "app31")]
    after = plan_schedules(kept, night_window(config))
    assert any(after[job.key] != before[job.key] for job in kept)


def test_a_broken_stack_exits_2_naming_the_key(tmp_path, capsys):
    path = tmp_path / "Pulumi.lab.yaml"
    shutil.copy(DEV, path)
    path.write_text(path.read_text().replace("media/radarr/nas:", "radarr:"))
    assert pin(path) == 2
    assert "backups:schedulePins.radarr: 'radarr' is not a pin key" in capsys.readouterr().err


def test_a_bad_pinned_schedule_names_its_key(tmp_path, capsys):
    path = tmp_path / "Pulumi.lab.yaml"
    shutil.copy(DEV, path)
    document = yaml.safe_load(path.read_text())
    document["config"][KEY]["media/radarr/nas"] = "H * * * *"
    path.write_text(yaml.safe_dump(document))
    assert pin(path) == 2
    assert 'backups:schedulePins["media/radarr/nas"]: \'H * * * *\' is not a pinned schedule' in capsys.readouterr().err


def test_pins_of_apps_that_left_are_dropped(tmp_path):
    path = tmp_path / "Pulumi.lab.yaml"
    shutil.copy(DEV, path)
    edit_apps(path, lambda apps: [a for a in apps if a["name"] != "prowlarr"])
    assert pin(path) == 0
    pins = yaml.safe_load(path.read_text())["config"][KEY]
    assert not any("/prowlarr/" in key for key in pins) and "media/radarr/nas" in pins


def test_a_layout_it_cannot_edit_safely_is_left_alone_with_exit_3(tmp_path, capsys):
    path = tmp_path / "Pulumi.lab.yaml"
    document = yaml.safe_load(DEV.read_text())
    document["config"].pop(KEY)
    path.write_text(yaml.safe_dump(document, default_flow_style=True))  # `{config: {...}}` on one line
    before = path.read_text()
    assert pin(path) == 3
    assert "set backups:schedulePins by hand" in capsys.readouterr().err and path.read_text() == before
