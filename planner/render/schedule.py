"""Checks of the deploy settings that Kubernetes would reject only at apply time.

A namespace must be an RFC 1123 label; a CronJob schedule must be what the CronJob
controller parses (robfig/cron's standard parser: five fields or an @-descriptor). Both
are checked when the settings are made, before anything is planned or written.
"""

from __future__ import annotations

import re

from planner.errors import InputError
from planner.types.names import DNS_LABEL_MAX, is_dns_label

DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# (name, lowest, highest, names for values)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    (
        "month",
        1,
        12,
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_ITEM = re.compile(r"^(?P<range>\*|\?|[0-9a-z]+(-[0-9a-z]+)?)(/(?P<step>[0-9]+))?$")


def check_namespace(namespace: str, flag: str = "--namespace") -> None:
    """Raise InputError unless `namespace` is a DNS-1123 label."""
    if not is_dns_label(namespace):
        raise InputError(
            f"{flag} {namespace!r}: not a valid Kubernetes namespace (at most "
            f"{DNS_LABEL_MAX} lower-case letters, digits and '-', starting and ending with a "
            "letter or digit), e.g. 'llm-serving'"
        )


def check_schedule(schedule: str, flag: str = "--replan-schedule") -> None:
    """Raise InputError unless `schedule` is a cron schedule a CronJob accepts."""
    text = schedule.strip().lower()
    if text in DESCRIPTORS:
        return
    hint = "five fields 'minute hour day-of-month month day-of-week', e.g. '0 * * * *', or @hourly"
    if text.startswith(("tz=", "cron_tz=")):
        raise InputError(f"{flag} {schedule!r}: time zones go in the CronJob's timeZone; {hint}")
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise InputError(f"{flag} {schedule!r}: {len(fields)} fields; give {hint}")
    for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in value.split(","):
            problem = _item_problem(item, low, high, names, name)
            if problem:
                raise InputError(f"{flag} {schedule!r}: {name} field '{value}': {problem}; {hint}")


def _item_problem(item: str, low: int, high: int, names: tuple[str, ...], name: str) -> str:
    match = _ITEM.match(item)
    if match is None:
        return f"cannot read '{item}'"
    if match["step"] is not None and int(match["step"]) == 0:
        return "a step of 0"
    part = match["range"]
    if part == "?" and name not in ("day of month", "day of week"):
        return "'?' only stands in the day fields"
    if part in ("*", "?"):
        return ""
    bounds = [_value(v, names) for v in part.split("-")]
    if any(b is None or not low <= b <= high for b in bounds):
        return f"'{part}' outside {low}-{high}"
    if len(bounds) == 2 and bounds[0] > bounds[1]:  # type: ignore[operator]
        return f"range '{part}' runs backwards"
    return ""


def _value(text: str, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    if text in names:
        return names.index(text) + (1 if len(names) == 12 else 0)
    return None
