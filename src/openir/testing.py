"""Helpers for OpenIR's own tests (and for sites testing their installation against real data).

A test that needs real data or a service calls `need`: locally it skips with the reason; under
``OPENIR_REQUIRE_ALL=1`` (as in CI) the same absence fails, so nothing is silently skipped there.
"""

from __future__ import annotations

import os


def require_all() -> bool:
    """True when a missing resource must fail a test instead of skipping it."""
    return os.environ.get("OPENIR_REQUIRE_ALL", "") not in ("", "0", "false", "False")


def need(condition: bool, reason: str) -> None:
    """Skip (or, under OPENIR_REQUIRE_ALL, fail) the calling test when ``condition`` is false."""
    import pytest

    if condition:
        return
    if require_all():
        pytest.fail(f"OPENIR_REQUIRE_ALL is set but {reason}")
    pytest.skip(reason)
