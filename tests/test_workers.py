"""Multi-worker serving, proven on each database.

A render (jwt + uv) is served with `fastapi run --workers 4` on its real database, and the
render's own integration CLI (`python -m tests.integration concurrency`) sends it 200
concurrent clients that mix writes and reads. No request may fail, and afterwards every item
a client made must be readable by its owner with the title it last wrote, every item it
deleted must be gone, and no user may read another's items. The figures (throughput,
latency) go to the "workers" section at the end of the run, and into docs/performance.md
when they are measured again.
"""

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import DatabaseServer

from harness import render, run, serve, uv

DATABASES = ["sqlite", "postgresql", "mysql"]
WORKERS = 4
CLIENTS = 200
REQUESTS_PER_CLIENT = 10

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("redis", [False, True], ids=["memory", "redis"])
@pytest.mark.parametrize("database", DATABASES)
def test_four_workers_serve_200_concurrent_clients_without_an_error(
    database: str,
    redis: bool,
    tmp_path: Path,
    database_server: Callable[[str], DatabaseServer],
    record_property: Callable[[str, object], None],
) -> None:
    project = render(tmp_path / "my-service", database=database, redis=redis)
    run([uv(), "sync", "--quiet"], project)
    if database == "sqlite":
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'served.db'}"}
    else:
        env = {"DATABASE_URL": database_server(database).url}
    if redis:
        # A Redis database of its own per case: rate-limit counts are shared by every worker
        # (that is the point), so cases running at once must not count into one another.
        server = database_server("redis")
        number = 3 + DATABASES.index(database)
        subprocess.run(
            ["redis-cli", "-p", str(server.port), "-n", str(number), "FLUSHDB"],
            check=True,
            capture_output=True,
        )
        env["REDIS_URL"] = f"redis://{server.host}:{server.port}/{number}"
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    report = tmp_path / "concurrency.json"
    try:
        with serve(project, env, ["--workers", str(WORKERS)]) as served:
            command = [
                *(uv(), "run", "python", "-m", "tests.integration", "concurrency"),
                *("--app-url", served.base_url, "--json", str(report)),
                *("--clients", str(CLIENTS), "--requests", str(REQUESTS_PER_CLIENT)),
            ]
            completed = run(command, project)
    finally:
        if database != "sqlite":  # the server's database is shared with the other tests
            run([uv(), "run", "alembic", "downgrade", "base"], project, env=env)

    figures = json.loads(report.read_text())
    record_property("worker_figures", {"database": database, "redis": redis, **figures})
    assert figures["requests"] == CLIENTS * REQUESTS_PER_CLIENT, completed.stdout
    assert figures["errors"] == 0, completed.stdout
    assert figures["check_errors"] == 0, completed.stdout
    assert figures["readable"] == figures["expected_readable"] > 0, completed.stdout
    assert figures["gone"] == figures["expected_gone"] > 0, completed.stdout
    assert figures["counts_right"] == figures["owners"] > 1, completed.stdout
    assert figures["hidden_from_others"] > 0, completed.stdout
    # Every worker started, and none logged an error (a 503 for a locked or lost database).
    workers = set(re.findall(r"Started server process \[(\d+)\]", served.log))
    assert len(workers) == WORKERS, served.log[-5000:]
    lines = [json.loads(line) for line in served.log.splitlines() if line.startswith("{")]
    errors = [line for line in lines if line["level"] == "ERROR" or line.get("status", 0) >= 500]
    assert not errors, [
        (line.get("logger"), line.get("message"), line.get("exception", "")[-600:])
        for line in errors[:5]
    ]
