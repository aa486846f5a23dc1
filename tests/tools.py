"""The one rule for a tool the project needs that this machine lacks (decisions.md, "Tests that
can fail"): under CI=true the test fails, so a broken install cannot turn the run green; on a
developer machine it is skipped, with the reason and the way to install the tool.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True under CI=true, where a missing tool must fail rather than skip."""
    return os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> NoReturn:
    """Fail the test under CI=true, else skip it; ``reason`` says what is missing and why."""
    if in_ci():
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def require_tool(name: str, why: str, *fallbacks: str | Path) -> str:
    """The executable ``name``: from PATH, else the first executable of ``fallbacks``.

    Args:
        name: The command, as looked up on PATH.
        why: What the test needs it for; ends up in the failure or skip message.
        fallbacks: Where it is installed when PATH may not list it (e.g. /usr/local/bin).

    Returns:
        The path of the executable; when there is none, see ``missing``.
    """
    for candidate in (shutil.which(name), *fallbacks):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    missing(f"{name} is not installed ({why})")
