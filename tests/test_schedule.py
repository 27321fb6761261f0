"""Schedules: presets spread evenly, H tokens stable, cron validated with a real cron library."""

from __future__ import annotations

import math

import pytest
from croniter import croniter

from components.schedule import (
    NightWindow,
    ScheduledJob,
    peak_starts_per_minute,
    plan_schedules,
    resolve_hashed,
    validate_schedule,
)


def hourly_jobs(count: int, repository: str = "nas") -> list[ScheduledJob]:
    return [ScheduledJob(f"app{i}", f"ns{i % 7}", repository, "hourly") for i in range(count)]


@pytest.mark.parametrize("count", [2, 59, 60, 61, 120, 600])
def test_hourly_apps_never_bunch_beyond_ceil_n_over_60(count):
    plan = plan_schedules(hourly_jobs(count))
    assert all(croniter.is_valid(c) for c in plan.values())
    assert peak_starts_per_minute(plan.values()) == math.ceil(count / 60)


def test_appending_an_app_moves_no_other_app():
    before = plan_schedules(hourly_jobs(90))
    after = plan_schedules(hourly_jobs(90) + [ScheduledJob("newcomer", "media", "nas", "hourly")])
    assert {k: after[k] for k in before} == before


def test_removing_the_last_app_moves_no_other_app():
    jobs = hourly_jobs(90)
    before = plan_schedules(jobs)
    after = plan_schedules(jobs[:-1])
    assert after == {k: v for k, v in before.items() if k != jobs[-1].identity}


def test_a_schedule_is_the_same_on_every_run():
    assert plan_schedules(hourly_jobs(30)) == plan_schedules(hourly_jobs(30))


def test_repositories_are_spread_independently():
    plan = plan_schedules(hourly_jobs(60, "nas") + hourly_jobs(60, "b2"))
    nas = [c for k, c in plan.items() if k[2] == "nas"]
    assert peak_starts_per_minute(nas) == 1


def test_daily_jobs_spread_over_the_night_window():
    window = NightWindow(1, 5)
    jobs = [ScheduledJob(f"app{i}", "media", "b2", "daily") for i in range(480)]
    plan = plan_schedules(jobs, window)
    hours = {int(c.split()[1]) for c in plan.values()}
    assert hours == {1, 2, 3, 4}
    assert peak_starts_per_minute(plan.values()) == 2  # 480 jobs over 240 minutes


def test_weekly_runs_on_sunday_inside_the_window():
    plan = plan_schedules([ScheduledJob("kopia-maintenance", "volsync-system", "nas", "weekly")])
    minute, hour, dom, month, dow = next(iter(plan.values())).split()
    assert (dom, month, dow) == ("*", "*", "0") and 1 <= int(hour) < 5


def test_h_tokens_resolve_from_the_identity_and_stay_valid():
    first = resolve_hashed("H H(1-4) * * 0", "radarr", "media", "nas")
    assert first == resolve_hashed("H H(1-4) * * 0", "radarr", "media", "nas")
    assert croniter.is_valid(first)
    assert 1 <= int(first.split()[1]) <= 4
    spread = {resolve_hashed("H * * * *", f"app{i}", "ns", "nas") for i in range(200)}
    assert len(spread) > 30  # different apps land on different minutes
    stepped = resolve_hashed("H/15 * * * *", "radarr", "media", "nas")
    assert croniter.is_valid(stepped) and stepped.split()[0].endswith("-59/15")


@pytest.mark.parametrize("spec", ["hourly", "daily", "weekly", "0 * * * *", "H 3 * * 0", "H(0-29) H * * *", "*/5 * * * *"])
def test_valid_schedules(spec):
    assert validate_schedule(spec) == spec


@pytest.mark.parametrize("spec", ["nightly", "0 * * *", "0 0 * * * *", "61 * * * *", "H * H * *", "0 25 * * *"])
def test_invalid_schedules_say_what_is_allowed(spec):
    with pytest.raises(ValueError, match="hourly, daily, weekly|H is allowed only"):
        validate_schedule(spec)
