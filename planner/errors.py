"""Expected errors: a user mistake or an impossible request, never a bug.

Every message says what is wrong, where (file, row, column or key) and how to fix it.
The CLI prints one `Error:` line and exits with `exit_code`; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PlannerError(Exception):
    """Base of all expected errors. Exit code 2: bad input or configuration."""

    exit_code: int = 2


class InputError(PlannerError):
    """A trace or other input file is missing, malformed or inconsistent."""


class ConfigError(PlannerError):
    """A YAML configuration has an unknown key, a wrong type or an impossible value."""


class ProfileError(PlannerError):
    """A model, GPU type or performance profile the request needs is unknown."""


class EndpointError(PlannerError):
    """A live endpoint is down, serves another model, or failed calls during a replay."""


class InfeasibleError(PlannerError):
    """The request cannot be met with the given resources. Exit code 3."""

    exit_code = 3


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean "x"?)' for the closest choice, or '' when none is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            matches = [lowered[name.lower()]]
    return f' (did you mean "{matches[0]}"?)' if matches else ""
