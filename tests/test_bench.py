"""The benchmark runs: bench/run.py --quick on SQLite, against a baseline, with its ceilings.

No figure is asserted (the machine is shared and noisy): only that every row was measured,
with no errors, and written as the JSON the docs describe.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import missing

from harness import TEMPLATE_ROOT, child_env

pytestmark = pytest.mark.slow


def test_the_quick_benchmark_measures_every_row(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        missing("wrk is not installed (Debian package `wrk`)")
    output = tmp_path / "bench.json"
    command = [sys.executable, "bench/run.py", "--quick", "--database", "sqlite"]
    command += ["--baseline", "HEAD", "--workers", "1", "--output", str(output)]
    result = subprocess.run(
        command, cwd=TEMPLATE_ROOT, env=child_env(), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "x base" in result.stdout

    data = json.loads(output.read_text())
    rows = {(r["target"], r["endpoint"], r["connections"]): r for r in data["rows"]}
    expected = {
        (target, endpoint, connections)
        for target in ("service", "baseline")
        for endpoint in ("items list", "me", "create item", "health")
        for connections in (32, 128)
    } | {
        (ceiling, "items list", connections)
        for ceiling in ("ceiling fastapi", "ceiling starlette")
        for connections in (32, 128)
    }
    assert set(rows) == expected
    for key, row in rows.items():
        assert row["requests_per_second"] > 0, key
        assert row["p99_ms"] >= row["p50_ms"] > 0, key
        assert row["non_2xx"] == 0, key
    for connections in (32, 128):
        service = rows[("service", "items list", connections)]
        assert service["vs_baseline"] is not None
        assert service["vs_ceiling"] is not None


def test_bad_arguments_are_refused_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--database", "oracle"],
        cwd=TEMPLATE_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid choice: 'oracle'" in result.stderr
