"""External tools the tests drive: skip politely outside CI, fail under CI."""

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_tool(name: str, package: str | None = None) -> str:
    """Return the tool's path; skip the test if it is missing (fail under CI=true)."""
    path = shutil.which(name)
    if path:
        return path
    reason = f"{name} is not installed (Debian package {package or name}); .ci/run installs it"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def require_postgres() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        reason = "needs PostgreSQL (set DATABASE_URL); .ci/run runs the suite again on PostgreSQL"
        pytest.skip(reason)
