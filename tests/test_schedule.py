"""Schedules: presets spread evenly, H tokens stable, cron validated with a real cron library."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from croniter import croniter

from components.config.cron import validate_schedule
from components.names import JobKey, JobKind
from components.schedule import (
    NightWindow,
    ScheduledJob,
    peak_starts_per_minute,
    pinned_slot,
    plan_schedules,
    resolve_hashed,
)


def backup(app: str, namespace: str, repository: str, spec: str) -> ScheduledJob:
    return ScheduledJob(JobKey(JobKind.BACKUP, namespace, app, repository), spec)


def hourly_jobs(count: int, repository: str = "nas") -> list[ScheduledJob]:
    return [backup(f"app{i}", f"ns{i % 7}", repository, "hourly") for i in range(count)]


@pytest.mark.parametrize("count", [2, 59, 60, 61, 120, 600])
def test_hourly_apps_never_bunch_beyond_ceil_n_over_60(count):
    plan = plan_schedules(hourly_jobs(count))
    assert all(croniter.is_valid(c) for c in plan.values())
    assert peak_starts_per_minute(plan.values()) == math.ceil(count / 60)


def test_appending_an_app_moves_no_other_app():
    before = plan_schedules(hourly_jobs(90))
    after = plan_schedules(hourly_jobs(90) + [backup("newcomer", "media", "nas", "hourly")])
    assert {k: after[k] for k in before} == before


def test_removing_the_last_app_moves_no_other_app():
    jobs = hourly_jobs(90)
    before = plan_schedules(jobs)
    after = plan_schedules(jobs[:-1])
    assert after == {k: v for k, v in before.items() if k != jobs[-1].key}


def test_with_pins_removing_apps_anywhere_moves_no_other_app():
    jobs = hourly_jobs(150)
    pins = plan_schedules(jobs)
    kept = [job for i, job in enumerate(jobs) if i not in (0, 37, 90)]
    after = plan_schedules(kept, pins=pins)
    assert after == {job.key: pins[job.key] for job in kept}


def test_with_pins_inserting_an_app_anywhere_moves_no_other_app():
    jobs = hourly_jobs(90)
    pins = plan_schedules(jobs)
    newcomer = backup("newcomer", "media", "nas", "hourly")
    after = plan_schedules(jobs[:5] + [newcomer] + jobs[5:], pins=pins)
    assert {k: v for k, v in after.items() if k != newcomer.key} == pins


@pytest.mark.parametrize("count", [60, 120, 600])
def test_a_new_app_takes_the_minute_a_removed_app_left_so_the_peak_holds(count):
    jobs = hourly_jobs(count)
    pins = plan_schedules(jobs)
    removed = jobs[count // 3]
    newcomer = backup("newcomer", "media", "nas", "hourly")
    after = plan_schedules([j for j in jobs if j != removed] + [newcomer], pins=pins)
    assert after[newcomer.key] == pins[removed.key]
    assert peak_starts_per_minute(after.values()) == math.ceil(count / 60)


def test_a_pin_that_no_longer_fits_its_preset_is_planned_afresh():
    window = NightWindow(1, 5)
    job = backup("radarr", "media", "b2", "daily")  # was hourly when it was pinned
    plan = plan_schedules([job], window, pins={job.key: "21 * * * *"})
    minute, hour, *rest = plan[job.key].split()
    assert rest == ["*", "*", "*"] and 1 <= int(hour) < 5


@pytest.mark.parametrize(
    ("cron", "preset", "slot"),
    [
        ("21 * * * *", "hourly", 21),
        ("5 23 * * *", "daily", 65),   # a window from 22:00 across midnight to 04:00
        ("59 3 * * 0", "weekly", 359),
        ("5 23 * * 0", "daily", None),  # a weekly shape for a daily job
        ("0 5 * * *", "daily", None),   # outside the window
        ("21 * * * 1", "hourly", None),
    ],
)
def test_a_pin_stands_for_exactly_one_slot_of_its_preset(cron, preset, slot):
    assert pinned_slot(cron, preset, NightWindow(22, 4)) == slot


def test_a_schedule_is_the_same_on_every_run():
    assert plan_schedules(hourly_jobs(30)) == plan_schedules(hourly_jobs(30))


def test_repositories_are_spread_independently():
    plan = plan_schedules(hourly_jobs(60, "nas") + hourly_jobs(60, "b2"))
    nas = [c for k, c in plan.items() if k.repository == "nas"]
    assert peak_starts_per_minute(nas) == 1


def test_daily_jobs_spread_over_the_night_window():
    window = NightWindow(1, 5)
    jobs = [backup(f"app{i}", "media", "b2", "daily") for i in range(480)]
    plan = plan_schedules(jobs, window)
    hours = {int(c.split()[1]) for c in plan.values()}
    assert hours == {1, 2, 3, 4}
    assert peak_starts_per_minute(plan.values()) == 2  # 480 jobs over 240 minutes


def test_a_night_window_across_midnight_is_filled_evenly():
    window = NightWindow(22, 4)  # defaults.nightWindow: "22-04"
    jobs = [backup(f"app{i}", "media", "b2", "daily") for i in range(720)]
    plan = plan_schedules(jobs, window)
    per_hour = Counter(int(c.split()[1]) for c in plan.values())
    assert per_hour == {hour: 120 for hour in (22, 23, 0, 1, 2, 3)}  # 2 per minute, every minute
    assert peak_starts_per_minute(plan.values()) == 2


def test_weekly_runs_on_sunday_inside_the_window():
    plan = plan_schedules([ScheduledJob(JobKey(JobKind.MAINTENANCE, "volsync-system", "nas", "nas"), "weekly")])
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
    with pytest.raises(ValueError, match="hourly, daily, weekly|H is allowed only|is outside"):
        validate_schedule(spec)


def test_the_configured_night_window_reaches_what_the_program_emits():
    from .conftest import of_kind, run_config, with_changes

    config = with_changes(defaults={**with_changes()["defaults"], "nightWindow": "22-02"})
    # The dev stack's drill pins were made for 01-05: they no longer fit and are planned afresh.
    assert any(" 3 * * 0" in cron for cron in config["schedulePins"].values())
    drills = [r for r in of_kind(run_config(config), "ReplicationDestination") if r.inputs["metadata"]["name"].endswith("-drill")]
    hours = {int(r.inputs["spec"]["trigger"]["schedule"].split()[1]) for r in drills}
    assert drills and hours <= {22, 23, 0, 1}
