"""A `redis=true` render on a real, throwaway redis-server (tests/servers.py).

- The README's own commands start the app and the worker; a job the app queues is run by
  the worker, and readiness reports Redis.
- Served with `fastapi run --workers 4`, a rate limit of N a minute lets exactly N attempts
  through across all four processes, not 4N: the count lives in Redis.
"""

import re
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from servers import DatabaseServer

from harness import (
    call,
    free_port,
    install_with_readme,
    login,
    readme_block,
    render,
    run,
    serving,
    tools_environment,
    uv,
    wait_until_serving,
)

pytestmark = pytest.mark.slow

PASSWORD = "a long enough password"


def _fresh_redis_database(server: DatabaseServer, number: int) -> str:
    """A Redis database of the throwaway server, emptied: counters start at zero."""
    url = f"redis://{server.host}:{server.port}/{number}"
    subprocess.run(
        ["redis-cli", "-p", str(server.port), "-n", str(number), "FLUSHDB"],
        check=True,
        capture_output=True,
    )
    return url


def _on_port(command: str, port: int) -> str:
    served, count = re.subn(
        r"\bfastapi (dev|run)\b", rf"fastapi \1 --host 127.0.0.1 --port {port}", command
    )
    assert count == 1, command
    return served


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {timeout} s", pytrace=False)


def test_the_readme_starts_the_app_and_a_worker_that_runs_its_jobs(
    tmp_path: Path,
    database_server: Callable[[str], DatabaseServer],
    package_manager_tools: Path,
) -> None:
    project = render(tmp_path / "my-service", redis=True)
    readme = (project / "README.md").read_text()
    redis_url = _fresh_redis_database(database_server("redis"), 1)
    env = {**tools_environment(package_manager_tools), "REDIS_URL": redis_url}
    install_with_readme(project, env)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app_command = _on_port(readme_block(readme, "run"), port)
    with (
        serving(app_command, project, env=env, log_path=tmp_path / "app.log") as app,
        serving(readme_block(readme, "worker"), project, env=env, log_path=tmp_path / "worker.log"),
    ):
        wait_until_serving(f"{base}/health", app, timeout=120)
        status, _, body = call(base, "GET", "/health/ready")
        assert (status, body) == (200, {"status": "ok", "database": "ok", "redis": "ok"})

        account = {"email": "jobs@example.com", "password": PASSWORD}
        assert call(base, "POST", "/api/v1/auth/register", json_body=account)[0] == 201
        token = login(base, account["email"], PASSWORD)
        status, _, item = call(base, "POST", "/api/v1/items", json_body={"title": "x"}, token=token)
        assert status == 201, item
        status, headers, _ = call(base, "DELETE", f"/api/v1/items/{item['id']}", token=token)
        assert status == 204
        request_id = headers["x-request-id"]

        def audited() -> bool:
            with sqlite3.connect(project / "my_service.db") as database:
                rows = database.execute(
                    "SELECT subject, request_id FROM audit_events WHERE action = 'item.deleted'"
                ).fetchall()
            return rows == [(item["id"], request_id)]

        try:
            _wait_for(audited, "the worker's audit event")
        except pytest.fail.Exception:
            pytest.fail((tmp_path / "worker.log").read_text()[-5000:], pytrace=False)


def test_four_workers_let_exactly_the_limit_through(
    tmp_path: Path, database_server: Callable[[str], DatabaseServer]
) -> None:
    project = render(tmp_path / "my-service", redis=True)
    run([uv(), "sync", "--quiet"], project)
    env = {
        "REDIS_URL": _fresh_redis_database(database_server("redis"), 2),
        "RATE_LIMIT_AUTH_PER_IP": "10/minute",
        "RATE_LIMIT_AUTH_PER_ACCOUNT": "1000/minute",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8",
        "PASSWORD_HASH_PARALLELISM": "1",
        "LOG_FORMAT": "json",
    }
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = f"uv run fastapi run --workers 4 --host 127.0.0.1 --port {port}"
    with serving(command, project, env=env, log_path=tmp_path / "app.log") as app:
        wait_until_serving(f"{base}/health", app, timeout=120)
        _wait_for(  # every worker answers: /health alone may come from the first one up
            lambda: call(base, "GET", "/health/ready")[0] == 200, "readiness"
        )

        def attempt(number: int) -> int:
            form = {"username": f"nobody{number}@example.com", "password": "wrong password"}
            return call(base, "POST", "/api/v1/auth/login", form=form)[0]

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = Counter(pool.map(attempt, range(40)))
    # memory:// would count in each process: up to 40 attempts would get through.
    assert statuses == Counter({401: 10, 429: 30}), (tmp_path / "app.log").read_text()[-3000:]
