"""Backup schedules: presets, validated 5-field cron, deterministic spreading, and pins.

Every seed put all movers at `0 * * * *`, so every backup in the cluster started in the same
minute. Here a schedule is either a preset (`hourly`, `daily`, `weekly`) or a 5-field cron
expression in which `H` (Jenkins-style "hashed") tokens stand for a value derived from a stable
hash of what is scheduled, so one config line never produces a thundering herd.

Three guarantees, and how they are met:

* Balance: N jobs of one preset planned together never start more than ceil(N / slots) in the
  same minute (slots = 60 for `hourly`, the night window's minutes for `daily`/`weekly`). Jobs
  are placed greedily, each taking the least-loaded minute nearest after its hash. (Pinned jobs
  stay put when others are removed, so removals can leave the peak above ceil(N / slots) for
  the smaller N; it never rises, and new jobs fill the holes first.)
* Stability: a pinned job (`backups:schedulePins`, written by `make pin-schedules`) keeps its
  minute whatever else is added or removed; unpinned jobs are placed around the pinned ones.
  Adding an app therefore never moves another, and removing one leaves a hole that the next
  new app fills (it is the least-loaded minute).
* Without pins, a job's minute depends only on itself and the jobs listed *before* it in the
  config, so appending an app or removing the last one still moves nothing.

Why pins (state) and not a cleverer pure function: if adding or removing any one app may never
move another, then by removing the others one at a time every app's minute is a function of
the app alone, a hash; and any 61 app names include two with the same hash minute, so a
set of 60 containing both has a peak of 2. Balance and stability under arbitrary edits need
memory of where apps already are; the pins are that memory, kept in the stack file so a pull
request shows them.

Explicit cron expressions with `H` tokens are resolved from the hash alone (no balancing): the
user asked for that exact shape, and a hash never moves.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Optional

from croniter import croniter

from .names import JobKey

PRESETS = ("hourly", "daily", "weekly")

#: `H`, `H(a-b)` and `H/n` in a minute or hour field.
_H_TOKEN = re.compile(r"H(?:\((\d{1,2})-(\d{1,2})\))?(?:/(\d{1,2}))?")
_FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")

CRON_HELP = (
    "use hourly, daily, weekly or a 5-field cron like 'H 3 * * 0' "
    "(H picks a stable spread value)"
)


@functools.cache
def longest_gap_of(crons: tuple[str, ...]) -> timedelta:
    """The longest time between two runs of any of these 5-field crons: over two weeks from a
    Monday (weekly schedules line up), or over two years when one restricts the day of month or
    the month (a monthly run, the end of February); the whole window when they run at most once."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    by_date = any(cron.split()[2:4] != ["*", "*"] for cron in crons)
    end = start + timedelta(days=731 if by_date else 14)
    runs: set[datetime] = set()
    after: list[datetime] = []
    for cron in crons:
        times = croniter(cron, start)
        while (run := times.get_next(datetime)) <= end:
            runs.add(run)
        after.append(run)
    ordered = sorted(runs | {min(after)})  # the first run past the window closes its last gap
    return max((b - a for a, b in zip(ordered, ordered[1:])), default=end - start)


def stable_hash(*parts: str) -> int:
    """A hash that is the same on every machine and every run (unlike `hash()`)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def validate_schedule(spec: str) -> str:
    """Return `spec` if it is a preset or a 5-field cron that runs (H tokens allowed).

    Raises ValueError with a message that says what is allowed. The grammar is the part of
    cron every consumer agrees on (numbers, `*`, ranges, steps, lists): VolSync's CRD pattern
    and robfig/cron differ on names (`MON`), `L`, `#` and `?`, so none of them is accepted.
    """
    if spec in PRESETS:
        return spec
    fields = spec.split(" ")
    if len(fields) != 5 or any(not f for f in fields):
        raise ValueError(f"{_shown(spec)} is not a schedule: {CRON_HELP}; got {len(spec.split())} fields")
    values = []
    for index, field in enumerate(fields):
        if "H" in field:
            values.append(_hashed_field(spec, index, field))
        else:
            values.append(_cron_field(spec, index, field, _FIELD_RANGES[index]))
    _runs(spec, values, fields)
    return spec


def validate_six_field_schedule(spec: str) -> str:
    """A CloudNative-PG ScheduledBackup schedule: seconds first, then the 5 cron fields."""
    fields = spec.split(" ")
    problem = f"{_shown(spec)} is not a 6-field CloudNative-PG schedule (seconds first, like '0 0 3 * * *')"
    if len(fields) != 6 or any(not f for f in fields) or "H" in spec:
        raise ValueError(problem)
    try:
        _cron_field(spec, -1, fields[0], (0, 59))
        values = [_cron_field(spec, i, f, _FIELD_RANGES[i]) for i, f in enumerate(fields[1:])]
    except ValueError as error:
        raise ValueError(f"{problem}: {error}") from None
    _runs(spec, values, fields[1:])
    return spec


def _shown(spec: str) -> str:
    text = repr(spec)
    return text if len(text) <= 72 else text[:60] + "...'"


_NUMBER = re.compile(r"[0-9]{1,2}")


def _cron_field(spec: str, index: int, field: str, bounds: tuple[int, int]) -> set[int]:
    """The values a field stands for; ValueError when it is outside the shared grammar."""
    low, high = bounds
    name = _FIELD_NAMES[index] if index >= 0 else "seconds"
    values: set[int] = set()
    for item in field.split(","):
        body, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not _NUMBER.fullmatch(step_text) or int(step_text) == 0:
                raise ValueError(f"{_shown(spec)} is not a valid cron expression: step {step_text!r} in the {name} field; {CRON_HELP}")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            if not (_NUMBER.fullmatch(first) and _NUMBER.fullmatch(last)):
                raise ValueError(f"{_shown(spec)} is not a valid cron expression: {item!r} in the {name} field; {CRON_HELP}")
            start, end = int(first), int(last)
        elif _NUMBER.fullmatch(body):
            start = int(body)
            end = high if slash else start
        else:
            raise ValueError(f"{_shown(spec)} is not a valid cron expression: {item!r} in the {name} field; {CRON_HELP}")
        if not (low <= start <= end <= high):
            raise ValueError(
                f"{_shown(spec)} is not a valid cron expression: {item!r} is outside {low}-{high} "
                f"in the {name} field"
            )
        values.update(range(start, end + 1, step))
    return values


def _hashed_field(spec: str, index: int, field: str) -> set[int]:
    """An `H` field (minute or hour only): H, H(a-b), H/n, H(a-b)/n, with a-b inside the field's
    range and n at least 1. Returns every value the hash may pick."""
    match = _H_TOKEN.fullmatch(field)
    if index > 1 or not match:
        raise ValueError(
            f"{_shown(spec)}: H is allowed only as H, H(a-b) or H/n in the minute or hour "
            f"field, not {field!r} in the {_FIELD_NAMES[index]} field"
        )
    low, high = _FIELD_RANGES[index]
    if match.group(1) is not None:
        first, last = int(match.group(1)), int(match.group(2))
        if not (low <= first <= last <= high):
            raise ValueError(f"{_shown(spec)}: H({first}-{last}) must lie within {low}-{high} in the {_FIELD_NAMES[index]} field")
        low, high = first, last
    if match.group(3) is not None and not 1 <= int(match.group(3)) <= high - low + 1:
        raise ValueError(f"{_shown(spec)}: the step of {field!r} must be 1 to {high - low + 1}")
    return set(range(low, high + 1))


_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February can have 29


def _runs(spec: str, values: list[set[int]], fields: list[str]) -> None:
    """Refuse a schedule that never fires, like `0 0 31 2 *` (February 31st): cron accepts it,
    and the backup silently never runs.

    robfig/cron (VolSync, CloudNative-PG and Kubernetes CronJobs use it) matches a day when both
    day fields match if either is a star (`*`, `*/1`), and when either matches otherwise: so
    `0 0 31 2 0-6` runs every day of February. Only a starred day of week can leave the day of
    month alone to decide."""
    _, _, days, months, _ = values
    if not _is_star(fields[4]):
        return  # a day of week that is not a star runs every week (either match, or both with a starred day)
    if not any(day <= _DAYS_IN_MONTH[month - 1] for month in months for day in days):
        raise ValueError(f"{_shown(spec)} never runs: no month in it has that day")


def _is_star(field: str) -> bool:
    """robfig/cron's star bit: an item `*` with no step above 1 (`*/2` is a plain range)."""
    for item in field.split(","):
        body, _, step = item.partition("/")
        if body == "*" and (not step or int(step) == 1):  # the step was checked to be a number
            return True
    return False


def resolve_hashed(spec: str, *identity: str) -> str:
    """Replace the H tokens of a cron expression with values from the hash of `identity`."""
    fields = spec.split()
    seed = stable_hash(*identity)
    for index in (0, 1):
        match = _H_TOKEN.fullmatch(fields[index])
        if not match:
            continue
        low, high = _FIELD_RANGES[index]
        if match.group(1) is not None:
            low, high = int(match.group(1)), int(match.group(2))
        step = match.group(3)
        # Different fields take different bits of the hash so minute and hour are independent.
        value = (seed >> (index * 16)) % (high - low + 1)
        if step:
            fields[index] = f"{low + value % int(step)}-{high}/{step}"
        else:
            fields[index] = str(low + value)
    return " ".join(fields)


@dataclass(frozen=True)
class NightWindow:
    """Start (inclusive) and end (exclusive) hour of the window daily/weekly jobs spread over."""

    start_hour: int = 1
    end_hour: int = 5

    @property
    def minutes(self) -> int:
        return ((self.end_hour - self.start_hour) % 24 or 24) * 60

    def cron_time(self, slot: int) -> tuple[int, int]:
        """(minute, hour) of the slot-th minute of the window."""
        return slot % 60, (self.start_hour + slot // 60) % 24


@dataclass(frozen=True)
class ScheduledJob:
    """Something that runs on a schedule, and the schedule the config gives it."""

    key: JobKey
    spec: str
    """A preset or a 5-field cron (H tokens allowed)."""


def _slots_for(preset: str, window: NightWindow) -> int:
    return 60 if preset == "hourly" else window.minutes


def _preset_cron(preset: str, slot: int, window: NightWindow) -> str:
    if preset == "hourly":
        return f"{slot} * * * *"
    minute, hour = window.cron_time(slot)
    return f"{minute} {hour} * * *" if preset == "daily" else f"{minute} {hour} * * 0"


def plan_schedules(
    jobs: Iterable[ScheduledJob],
    window: NightWindow = NightWindow(),
    pins: Optional[Mapping[JobKey, str]] = None,
) -> dict[JobKey, str]:
    """Concrete 5-field cron for every job (in the order given), as the module docstring promises.

    Jobs of one preset and one pool (a repository's jobs, or the drills) share the slots.
    Pinned jobs keep their slot; a pin that no longer fits the job (its preset or the night
    window changed) is ignored. Every other job, in config order, takes the least-loaded slot,
    ties going to the slot nearest after its hash ("home") slot.
    """
    jobs = list(jobs)
    pins = pins or {}
    plan: dict[JobKey, str] = {}
    loads: dict[tuple[tuple[str, str], str], list[int]] = {}
    unplaced: list[ScheduledJob] = []
    for job in jobs:
        if job.spec not in PRESETS:
            plan[job.key] = resolve_hashed(job.spec, *job.key.seed)
            continue
        load = loads.setdefault((job.key.pool, job.spec), [0] * _slots_for(job.spec, window))
        slot = pinned_slot(pins.get(job.key), job.spec, window)
        if slot is None:
            unplaced.append(job)
        else:
            load[slot] += 1
            plan[job.key] = _preset_cron(job.spec, slot, window)
    for job in unplaced:
        load = loads[(job.key.pool, job.spec)]
        slots = len(load)
        home = stable_hash(*job.key.seed) % slots
        lowest = min(load)
        # Walk forward from home to the first least-loaded slot: O(slots) at worst.
        slot = next(
            (home + step) % slots
            for step in range(slots)
            if load[(home + step) % slots] == lowest
        )
        load[slot] += 1
        plan[job.key] = _preset_cron(job.spec, slot, window)
    return {job.key: plan[job.key] for job in jobs}


def pinned_slot(cron: Optional[str], preset: str, window: NightWindow) -> Optional[int]:
    """The slot a pinned cron stands for, or None when it is not one of the preset's slots."""
    if cron is None:
        return None
    fields = cron.split()
    if len(fields) != 5 or not (fields[0].isdigit() and (fields[1].isdigit() or fields[1] == "*")):
        return None
    minute, hour = int(fields[0]), int(fields[1]) if fields[1].isdigit() else window.start_hour
    slot = minute if preset == "hourly" else ((hour - window.start_hour) % 24) * 60 + minute
    in_range = minute < 60 and slot < _slots_for(preset, window)
    # The round trip rejects every other shape: another preset's fields, a day of week, ...
    return slot if in_range and _preset_cron(preset, slot, window) == cron else None


def peak_starts_per_minute(crons: Iterable[str]) -> int:
    """Most jobs that start in the same minute of a day, for tests and the benchmark."""
    per_minute: dict[int, int] = {}
    for cron in crons:
        for minute_of_day in _minutes_of_day(cron):
            per_minute[minute_of_day] = per_minute.get(minute_of_day, 0) + 1
    return max(per_minute.values(), default=0)


def _minutes_of_day(cron: str) -> list[int]:
    minute, hour = cron.split()[:2]
    minutes = _expand(minute, 0, 59)
    hours = _expand(hour, 0, 23)
    return [h * 60 + m for h in hours for m in minutes]


def _expand(field: str, low: int, high: int) -> list[int]:
    values: set[int] = set()
    for part in field.split(","):
        body, _, step = part.partition("/")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            start, end = (int(x) for x in body.split("-"))
        else:
            start = end = int(body)
            if step:
                end = high
        values.update(range(start, end + 1, int(step) if step else 1))
    return sorted(values)
