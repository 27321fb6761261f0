"""The plan is plain data computed from config: tested here without Pulumi's mocks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import ConfigError, stack_config_of
from components.names import JobKey, JobKind, job_of_pin
from components.plan import StackPlan, plan_stack

from .conftest import dev_config

B2 = {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "volsync"},
      "credentials": {"accessKeyId": "id-0123", "secretAccessKey": "key-0123"}, "schedule": "daily"}


def plan_of(**changes: Any) -> StackPlan:
    config = {**dev_config(), "schedulePins": {}, **changes}
    return plan_stack(stack_config_of({f"backups:{k}": json.dumps(v) for k, v in config.items()}))


def test_every_job_has_a_kind_and_every_kind_a_distinct_pin_key():
    plan = plan_of(repositories=[dev_config()["repositories"][0], B2])
    kinds = {job.key.kind for job in plan.jobs}
    assert kinds == {JobKind.BACKUP, JobKind.MAINTENANCE, JobKind.DRILL, JobKind.CHECK}
    pins = [job.key.pin for job in plan.jobs]
    assert len(pins) == len(set(pins))
    assert all(job_of_pin(job.key.pin) == job.key for job in plan.jobs)


@pytest.mark.parametrize("key", [
    JobKey(JobKind.BACKUP, "media", "radarr", "nas"),
    JobKey(JobKind.MAINTENANCE, "volsync-system", "nas", "nas"),
    JobKey(JobKind.MIRROR, "volsync-system", "nas", "nas"),
    JobKey(JobKind.DRILL, "media", "radarr"),
])
def test_a_pin_key_names_exactly_its_job(key):
    assert job_of_pin(key.pin) == key


def test_an_app_and_a_repository_job_cannot_forge_each_others_pin_keys():
    app_backup = JobKey(JobKind.BACKUP, "volsync-system", "kopia-maintenance", "nas")
    maintenance = JobKey(JobKind.MAINTENANCE, "volsync-system", "nas", "nas")
    assert app_backup.pin != maintenance.pin and app_backup.pool == maintenance.pool  # same repository, shared minutes


def test_each_app_writes_where_the_config_says_and_bootstraps_from_the_primary():
    plan = plan_of(repositories=[B2, {**dev_config()["repositories"][0]}],
                   apps=[{"name": "radarr", "namespace": "media"},
                         {"name": "notes", "namespace": "default", "repositories": ["b2"]}])
    radarr, notes = plan.apps
    assert [s.repository for s in radarr.sources] == ["b2", "nas"] and radarr.bootstrap == "nas"
    assert [s.repository for s in notes.sources] == ["b2"] and notes.bootstrap == "b2"
    assert [(w.repository, w.sources) for w in plan.alerts.repositories] == [
        ("b2", ("notes-b2", "radarr-b2")), ("nas", ("radarr-nas",))]


def test_a_restore_request_reads_the_named_source_in_utc():
    plan = plan_of(apps=[{"name": "radarr", "namespace": "media",
                          "restore": {"restoreAsOf": "2026-01-14T13:00:00+01:00", "from": {"namespace": "old", "app": "radarr"}}}])
    restore = plan.apps[0].restore
    assert restore is not None
    # App `old/radarr` is gone from the config: its history had the default identity.
    assert (restore.identity, restore.restore_as_of) == ("radarr@old:/data", "2026-01-14T12:00:00Z")
    again = plan_of(apps=[{"name": "radarr", "namespace": "media",
                           "restore": {"restoreAsOf": "2026-01-14T13:00:00+01:00", "from": {"namespace": "old", "app": "radarr"}}}])
    assert again.apps[0].restore == restore  # the trigger is stable: an unchanged request never runs twice


def test_a_mirror_target_gets_no_maintenance_job_and_its_source_a_mirror_job():
    nas = {**dev_config()["repositories"][0], "mirrorTo": "b2"}
    plan = plan_of(repositories=[nas, B2])
    by_name = {rp.repository.name: rp for rp in plan.repositories}
    assert not by_name["b2"].maintained and by_name["nas"].mirror is not None
    assert JobKey(JobKind.MAINTENANCE, "volsync-system", "b2", "b2") not in plan.schedules


def test_name_problems_come_from_the_plan_with_both_keys():
    with pytest.raises(ConfigError) as caught:
        plan_of(apps=[{"name": "b-c", "namespace": "a"}, {"name": "c", "namespace": "a-b"}])
    (problem,) = caught.value.problems
    assert problem.startswith("backups:apps[1].name:") and "backups:apps[0].name" in problem
