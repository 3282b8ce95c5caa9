"""Throwaway database servers for the template's tests.

Each server runs from the Debian packages on this machine (PostgreSQL's `initdb`/`pg_ctl`,
MariaDB's `mariadb-install-db`/`mariadbd`), on loopback, on a free port, with its data in a
temporary directory, and is stopped at the end of the session even when tests fail. As
root, the server runs as the package's unprivileged user (`postgres`, `mysql`), since
neither server runs as root.

Without the binaries a developer gets a skip that names the missing package; in CI
(`CI=true`) a missing server is a failure.

Redis (Debian package `redis-server`) runs the same way, without persistence.

A server that is already running (a CI service container, a developer's own) is used
instead when `TEMPLATE_TESTS_POSTGRESQL_URL` or `TEMPLATE_TESTS_MYSQL_URL` holds an async
SQLAlchemy URL to it, for a user that may create databases (`TEMPLATE_TESTS_REDIS_URL`: a
`redis://` URL). The tests cannot restart such
a server, so the restart check is skipped for it.
"""

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import free_port

USER = "app"
# A throwaway server on loopback, gone at the end of the session.
PASSWORD = "app-password"
DATABASE = "app"


@dataclass
class DatabaseServer:
    """A running server and the async SQLAlchemy URL of a database the tests may use."""

    kind: str
    host: str
    port: int
    data_dir: Path
    stop: Callable[[], None] | None
    start: Callable[[], None] | None
    external_url: str | None = None

    @property
    def url(self) -> str:
        if self.external_url:
            return self.external_url
        if self.kind == "redis":
            return f"redis://{self.host}:{self.port}/0"
        scheme = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+asyncmy"}[self.kind]
        return f"{scheme}://{USER}:{PASSWORD}@{self.host}:{self.port}/{DATABASE}"


@contextlib.contextmanager
def external_server(kind: str, url: str) -> Iterator[DatabaseServer]:
    """A server someone else runs, e.g. a CI service container."""
    yield DatabaseServer(kind, "", 0, Path(), None, None, external_url=url)


@contextlib.contextmanager
def database_server(kind: str) -> Iterator[DatabaseServer]:
    """An external server when one is configured, a throwaway one otherwise."""
    url = os.environ.get(f"TEMPLATE_TESTS_{kind.upper()}_URL")
    manager = external_server(kind, url) if url else SERVERS[kind]()
    with manager as server:
        yield server


def missing(reason: str) -> None:
    """Skip for a developer; fail in CI, where every server must be tested."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: a missing database server is a failure)", pytrace=False)
    pytest.skip(reason)


def _as_user(user: str) -> list[str]:
    """Prefix that runs a command as `user` when the tests run as root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", user, "--"]


def _hand_over(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user, user)
        for child in path.rglob("*"):
            shutil.chown(child, user, user)


def _wait_for(check: list[str], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not come up within {timeout} s", pytrace=False)


def _postgres_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if bindir and (Path(bindir) / "pg_ctl").exists():
            return Path(bindir)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


@contextlib.contextmanager
def _scratch_dir(kind: str) -> Iterator[Path]:
    """A temporary directory the server's unprivileged user can reach (mkdtemp's is 0700)."""
    base = Path(tempfile.mkdtemp(prefix=f"template-tests-{kind}-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _check(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        pytest.fail(f"{what} failed:\n{result.stdout}\n{result.stderr}", pytrace=False)


@contextlib.contextmanager
def postgresql_server() -> Iterator[DatabaseServer]:
    bindir = _postgres_bindir()
    if bindir is None:
        missing("PostgreSQL is not installed (Debian package `postgresql`)")
        raise AssertionError("unreachable")
    with _scratch_dir("postgresql") as base:
        data_dir, socket_dir = base / "data", base / "socket"
        socket_dir.mkdir()
        password_file = base / "password"
        password_file.write_text(PASSWORD)
        _hand_over(base, "postgres")
        as_postgres = _as_user("postgres")
        _check(
            [
                *as_postgres,
                str(bindir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                USER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            "initdb",
        )
        port = free_port()
        options = (
            f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data_dir)]
        log = base / "server.log"

        def start() -> None:
            _check([*pg_ctl, "-l", str(log), "-o", options, "-w", "start"], "pg_ctl start")

        def stop() -> None:
            subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)

        start()
        try:
            _check(
                [
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    USER,
                    DATABASE,
                ],
                "createdb",
                env={**os.environ, "PGPASSWORD": PASSWORD},
            )
            yield DatabaseServer("postgresql", "127.0.0.1", port, data_dir, stop, start)
        finally:
            stop()


@contextlib.contextmanager
def mariadb_server() -> Iterator[DatabaseServer]:
    mariadbd = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")
    install_db = shutil.which("mariadb-install-db")
    client = shutil.which("mariadb")
    if not (mariadbd and install_db and client):
        missing("MariaDB is not installed (Debian package `mariadb-server`)")
        raise AssertionError("unreachable")
    with _scratch_dir("mariadb") as base:
        data_dir = base / "data"
        socket = base / "mariadb.sock"
        _hand_over(base, "mysql")
        _check(
            [
                *_as_user("mysql"),
                install_db,
                "--no-defaults",
                f"--datadir={data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            "mariadb-install-db",
        )
        port = free_port()
        command = [
            *_as_user("mysql"),
            mariadbd,
            "--no-defaults",
            f"--datadir={data_dir}",
            f"--socket={socket}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={base / 'mariadb.pid'}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-buffer-pool-size=128M",
            "--max-connections=300",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]
        processes: list[subprocess.Popen[bytes]] = []
        root = [client, "--no-defaults", f"--socket={socket}", "-uroot"]

        def start() -> None:
            with (base / "server.log").open("ab") as log:
                processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
            _wait_for([*root, "-e", "SELECT 1"], "MariaDB")

        def stop() -> None:
            while processes:
                process = processes.pop()
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

        start()
        try:
            setup = (
                f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';"
                f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%' WITH GRANT OPTION;"
                f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4;"
            )
            _check([*root, "-e", setup], "creating the MariaDB user")
            yield DatabaseServer("mysql", "127.0.0.1", port, data_dir, stop, start)
        finally:
            stop()


@contextlib.contextmanager
def redis_server() -> Iterator[DatabaseServer]:
    """A throwaway Redis: no persistence, loopback only, its own port."""
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
    client = shutil.which("redis-cli")
    if not (binary and client):
        missing("Redis is not installed (Debian package `redis-server`)")
        raise AssertionError("unreachable")
    with _scratch_dir("redis") as base:
        port = free_port()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(base), "--daemonize", "no"]
        processes: list[subprocess.Popen[bytes]] = []

        def start() -> None:
            with (base / "server.log").open("ab") as log:
                processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
            _wait_for([client, "-p", str(port), "ping"], "Redis")

        def stop() -> None:
            while processes:
                process = processes.pop()
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

        start()
        try:
            yield DatabaseServer("redis", "127.0.0.1", port, base, stop, start)
        finally:
            stop()


SERVERS = {"postgresql": postgresql_server, "mysql": mariadb_server, "redis": redis_server}
