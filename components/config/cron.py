"""The text forms config accepts for schedules and schedule pins: a leaf of the config package.

A schedule is a preset (`hourly`, `daily`, `weekly`) or a 5-field cron in the part of the
grammar every consumer agrees on, with `H` ("hashed") tokens in the minute and hour fields;
a database's is CloudNative-PG's 6-field form. A pin key names one scheduled job. What the
planner does with them (spreading, pins to jobs) is `schedule.py` and `names.py`; config only
needs to know what is well-formed.
"""

from __future__ import annotations

import re

PRESETS = ("hourly", "daily", "weekly")

#: `H`, `H(a-b)` and `H/n` in a minute or hour field.
H_TOKEN = re.compile(r"H(?:\((\d{1,2})-(\d{1,2})\))?(?:/(\d{1,2}))?")
FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")

CRON_HELP = (
    "use hourly, daily, weekly or a 5-field cron like 'H 3 * * 0' "
    "(H picks a stable spread value)"
)


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
            values.append(_cron_field(spec, index, field, FIELD_RANGES[index]))
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
        values = [_cron_field(spec, i, f, FIELD_RANGES[i]) for i, f in enumerate(fields[1:])]
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
    match = H_TOKEN.fullmatch(field)
    if index > 1 or not match:
        raise ValueError(
            f"{_shown(spec)}: H is allowed only as H, H(a-b) or H/n in the minute or hour "
            f"field, not {field!r} in the {_FIELD_NAMES[index]} field"
        )
    low, high = FIELD_RANGES[index]
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


_LABEL_RE = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
#: `namespace/app/repository` (a backup) or `namespace/owner:kind`: ':' is in no Kubernetes
#: name, so no app or repository name can forge another job's key.
PIN_KEY = re.compile(rf"{_LABEL_RE}/{_LABEL_RE}(/{_LABEL_RE}|:(maintenance|mirror|drill|check))")
