"""The late policy: how much of a lab's points a late submission loses.

In course.toml, for the whole course or one lab (a lab's rule replaces the course's)::

    [course]
    late = { per_day = 0.1, max_days = 7, grace_hours = 1 }

    [labs.03]
    late = { per_day = 0.25, max_days = 2 }    # this lab: stricter
    [labs.04]
    late = false                               # this lab: no penalty

- ``per_day``: the fraction of the points lost for each day late, a started day counting
  as a whole one (0.1 = 10 % a day);
- ``max_days``: after this many days late the submission earns nothing (default: never);
- ``grace_hours``: how long after the deadline still counts as on time (default 0).

A lab's ``due`` date is the deadline at the end of that day (23:59:59); a TOML date-time
(``due = 2026-02-13T17:00:00``) is the deadline itself. Times without a zone are read in
the course's ``timezone`` (``[course] timezone = "Europe/Berlin"``), else this machine's.

This module is plain data and arithmetic: it reads nothing and imports nothing of the
grading package, so every floor above can use it.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass

LATE_KEYS = ("per_day", "max_days", "grace_hours")
EXAMPLE = "late = { per_day = 0.1, max_days = 7, grace_hours = 1 }"


class LateRuleError(ValueError):
    """A late rule course.toml cannot mean."""


@dataclass(frozen=True)
class LatePolicy:
    per_day: float = 0.0
    max_days: int | None = None
    grace_hours: float = 0.0

    def fraction(self, days_late: int) -> float:
        """The fraction of the points lost at `days_late` whole (started) days late."""
        if days_late <= 0:
            return 0.0
        if self.max_days is not None and days_late > self.max_days:
            return 1.0
        return min(1.0, round(days_late * self.per_day, 6))

    def describe(self) -> str:
        if not self.per_day and self.max_days is None:
            return "no late penalty"
        parts = [f"{self.per_day:.0%} of the points per day late"] if self.per_day else []
        if self.max_days is not None:
            parts.append(f"nothing after {self.max_days} day{'s' if self.max_days != 1 else ''}")
        if self.grace_hours:
            parts.append(f"{self.grace_hours:g} h of grace")
        return ", ".join(parts)


NO_PENALTY = LatePolicy()


def parse_late(value, where: str) -> LatePolicy:
    """The policy a course.toml value says; LateRuleError with one line naming what is wrong."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("none", "off", "no")):
        return NO_PENALTY
    if not isinstance(value, dict):
        raise LateRuleError(f"{where} must be a table like `{EXAMPLE}` (or false for none); got {value!r}")
    unknown = sorted(set(value) - set(LATE_KEYS))
    if unknown:
        raise LateRuleError(f"{where} has unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                            f"a late rule takes {', '.join(LATE_KEYS)} (e.g. `{EXAMPLE}`)")
    per_day = value.get("per_day", 0.0)
    if isinstance(per_day, bool) or not isinstance(per_day, (int, float)) or not 0 <= per_day <= 1:
        raise LateRuleError(f"{where}.per_day must be a fraction of the points between 0 and 1 "
                            f"(0.1 = 10 % a day); got {per_day!r}")
    max_days = value.get("max_days")
    if max_days is not None and (isinstance(max_days, bool) or not isinstance(max_days, int) or max_days < 0):
        raise LateRuleError(f"{where}.max_days must be a whole number of days >= 0; got {max_days!r}")
    grace = value.get("grace_hours", 0.0)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise LateRuleError(f"{where}.grace_hours must be a number of hours >= 0; got {grace!r}")
    return LatePolicy(float(per_day), max_days, float(grace))


def zone(name: str | None):
    """The tzinfo for `name` (an IANA zone), or this machine's local zone for None."""
    if not name:
        return _dt.datetime.now().astimezone().tzinfo
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise LateRuleError(f"course.timezone {name!r} is not a time zone this machine knows "
                            f"(an IANA name such as \"Europe/Berlin\")") from None


def deadline(due: _dt.date | _dt.datetime, tz) -> _dt.datetime:
    """The moment a lab is due: the end of a due date, or the due date-time itself."""
    if isinstance(due, _dt.datetime):
        return due if due.tzinfo else due.replace(tzinfo=tz)
    return _dt.datetime.combine(due, _dt.time(23, 59, 59), tzinfo=tz)


def days_late(submitted: _dt.datetime, due: _dt.datetime, policy: LatePolicy) -> int:
    """Whole days late, a started day counting as one, after the grace period; 0 if on time."""
    over = (submitted - due).total_seconds() - policy.grace_hours * 3600
    return max(0, math.ceil(over / 86400)) if over > 0 else 0
