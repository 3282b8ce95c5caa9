"""The PostgreSQL and MySQL/MariaDB variants, proven on real servers.

Each server is started once per test session by tests/servers.py (throwaway, loopback, free
port, temporary data directory). Each variant is rendered and installed once; its migrations,
its error messages and a served instance (through a server restart) then run against the
server. Each variant's own suite runs on its server in tests/test_matrix.py.
"""

import re
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pytest_copie.plugin import Copie
from servers import DatabaseServer

from harness import call, exercise_jwt_api, login, run, run_failing, serve, uv

DATABASES = ["postgresql", "mysql"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def server(database: str, database_server: Callable[[str], DatabaseServer]) -> DatabaseServer:
    return database_server(database)


@pytest.fixture(scope="module")
def project(copie_session: Copie, database: str) -> Path:
    result = copie_session.copy(extra_answers={"database": database})
    assert result.exit_code == 0, result.exception
    assert result.project_dir is not None
    run([uv(), "sync", "--quiet"], result.project_dir)
    return result.project_dir


def test_only_this_databases_driver_is_a_dependency(project: Path, database: str) -> None:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    names = {
        re.split(r"[<>=\[]", dependency)[0] for dependency in pyproject["project"]["dependencies"]
    }
    drivers = {"postgresql": "asyncpg", "mysql": "asyncmy"}
    assert drivers[database] in names
    assert not names & ({"aiosqlite", *drivers.values()} - {drivers[database]})


def test_migrations_upgrade_check_and_downgrade(project: Path, server: DatabaseServer) -> None:
    env = {"DATABASE_URL": server.url}
    for _ in range(2):  # twice: a downgrade must leave a database the upgrade can reuse
        run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
        run([uv(), "run", "alembic", "check"], project, env=env)
        run([uv(), "run", "alembic", "downgrade", "base"], project, env=env)


def test_migrating_an_unreachable_server_fails_with_one_clear_line(
    project: Path, database: str
) -> None:
    scheme = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+asyncmy"}[database]
    env = {"DATABASE_URL": f"{scheme}://user:hunter2@127.0.0.1:9/nothing"}
    completed = run_failing([uv(), "run", "alembic", "upgrade", "head"], project, env)
    last_line = completed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Cannot reach the database at"), completed.stderr
    assert "127.0.0.1:9" in last_line
    assert "hunter2" not in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_bad_database_url_fails_with_a_clear_message(project: Path) -> None:
    env = {"DATABASE_URL": "sqlite:///not-this-one.db"}
    completed = run_failing([uv(), "run", "alembic", "upgrade", "head"], project, env)
    assert "DATABASE_URL: Value error, this service is built for" in completed.stderr


def test_served_over_http_with_readiness_that_follows_the_server(
    project: Path, server: DatabaseServer
) -> None:
    """The pool does no pre-ping (a round trip per request): a server restart must still be
    survived without restarting the app. During the outage, readiness and the API answer 503;
    once readiness is 200 again, no request fails."""
    env = {"DATABASE_URL": server.url}
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    try:
        with serve(project, env) as served:
            base = served.base_url
            exercise_jwt_api(base)
            token = login(base, "http@example.com", "a long enough password")
            # Fill the pool with connections that the restart will drop.
            with ThreadPoolExecutor(8) as pool:
                warm = list(
                    pool.map(lambda _: call(base, "GET", "/api/v1/items", token=token), range(32))
                )
            assert {status for status, _, _ in warm} == {200}
            if server.stop is None or server.start is None:
                pytest.skip("served and exercised; an external server cannot be restarted")
            server.stop()
            try:
                status, _, body = call(base, "GET", "/health/ready")
                assert (status, body) == (503, {"status": "unavailable", "database": "unreachable"})
                assert call(base, "GET", "/health")[0] == 200
                status, headers, body = call(base, "GET", "/api/v1/items", token=token)
                assert (status, body) == (
                    503,
                    {"detail": "The database is unavailable; try again shortly"},
                )
                assert headers["retry-after"] == "5"
            finally:
                server.start()
            status, _, body = call(base, "GET", "/health/ready")
            assert (status, body) == (200, {"status": "ok", "database": "ok"})
            # Every pooled connection predates the restart; none may fail a request now.
            with ThreadPoolExecutor(8) as pool:
                after = list(
                    pool.map(lambda _: call(base, "GET", "/api/v1/items", token=token), range(64))
                )
            assert [status for status, _, _ in after] == [200] * 64
    finally:
        run([uv(), "run", "alembic", "downgrade", "base"], project, env=env)
