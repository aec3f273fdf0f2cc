"""Bad configuration ends a command with one readable line and a non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["mq_variant", "role", "api"], {"CC_CONTROL": "bogus"}, "unknown MQ control 'bogus'"),
        (["workflow_variant", "init"], {"CC_CONTROL": "no-dedup"}, "unknown control 'no-dedup'"),
        (["mq_variant", "init"], {"CC_FAULTS": "after_publish=explode"}, "bad fault entry"),
        (["mq_variant", "init"], {"CC_PG_URL": "postgresql+asyncpg://postgres@127.0.0.1:1"}, "error: "),
        (["compare", "faults", "--variant", "nope", "--dry-run"], {}, "error: unknown variant 'nope'"),
    ],
)
def test_bad_configuration_is_one_line(argv: list[str], env: dict[str, str], expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
