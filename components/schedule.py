"""Backup schedules: deterministic spreading of presets and `H` tokens, and pins.

The grammar of a schedule (what config accepts) is `config/cron.py`; this module plans them.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Optional

from croniter import croniter

from .config.cron import FIELD_RANGES, H_TOKEN, PRESETS
from .names import JobKey


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


def resolve_hashed(spec: str, *identity: str) -> str:
    """Replace the H tokens of a cron expression with values from the hash of `identity`."""
    fields = spec.split()
    seed = stable_hash(*identity)
    for index in (0, 1):
        match = H_TOKEN.fullmatch(fields[index])
        if not match:
            continue
        low, high = FIELD_RANGES[index]
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
