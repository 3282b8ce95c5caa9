"""Benchmark a rendered service against a baseline and two no-database ceilings, in one run.

    uv run python bench/run.py [--database postgresql] [--auth jwt] [--quick] [--baseline REF]

It renders the variant from the working tree (and the baseline from a git ref, with the same
answers), installs each with uv, starts a throwaway database server as the template's tests do
(tests/servers.py), migrates and seeds one principal with 100 items, serves each with
`fastapi run --workers N`, and loads it with wrk at each connection count. Rows of the service
and of its baseline alternate, so that a noisy machine treats both alike. It prints one table
and writes the same data as JSON. Figures differ between machines and runs: compare the ratios
of one run. No test asserts them (tests/test_bench.py only proves that the benchmark runs).
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import copier  # noqa: E402
from _pytest.outcomes import OutcomeException  # noqa: E402
from servers import DatabaseServer, database_server  # noqa: E402

from harness import (  # noqa: E402
    call,
    child_env,
    free_port,
    render,
    stop_process_group,
    uv,
)

# The commit before the performance work (issue "several times faster"): what the service's
# figures are compared with unless --baseline names another ref, or `none`.
BASELINE_REF = "7474d70c7442b0fb7874afcb67b5e0723248b742"
SECRET_KEY = "bench-secret-key-that-is-long-enough-for-hs256"
EMAIL, PASSWORD = "bench@example.com", "a long enough benchmark password"
ITEMS = 100


class BenchError(Exception):
    """A failure the user can act on; printed as one line, without a traceback."""


@dataclass
class Row:
    """One wrk run: a target, an endpoint, a worker count and a connection count."""

    target: str
    endpoint: str
    workers: int
    connections: int
    requests_per_second: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    non_2xx: int = 0
    socket_errors: int = 0
    vs_baseline: float | None = None
    vs_ceiling: float | None = None


@dataclass
class Target:
    """A render served for the benchmark, with what its requests need."""

    name: str
    project: Path
    env: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    me_path: str = "/api/v1/items?limit=1"
    trim: Callable[[], None] = lambda: None


# ----------------------------------------------------------------------------- running ---


def sh(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=child_env(env), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        output = result.stdout[-3000:] + result.stderr[-3000:]
        raise BenchError(f"`{' '.join(command)}` failed in {cwd}:\n{output}")
    return result.stdout


@contextlib.contextmanager
def serving(command: list[str], cwd: Path, env: dict[str, str], port: int) -> Iterator[str]:
    """Run a server until the block ends; yield its base URL once /health answers."""
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=child_env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")[-3000:]
                    raise BenchError(f"the server exited with {process.returncode}:\n{output}")
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{base}/health", timeout=2),  # noqa: S310
                ):
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"nothing served {base}/health within 90 s")
                time.sleep(0.2)
            yield base
        finally:
            stop_process_group(process)


def serve_target(target: Target, workers: int) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    command = [uv(), "run", "--no-sync", "fastapi", "run", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    return serving(command, target.project, target.env, port)


def serve_ceiling(
    project: Path, module: str, payload: Path, workers: int
) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    uvicorn = str(project / ".venv" / "bin" / "uvicorn")
    command = [uvicorn, "--app-dir", str(ROOT / "bench"), f"{module}:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
    command += ["--log-level", "warning"]
    return serving(command, ROOT, {"BENCH_PAYLOAD": str(payload)}, port)


# ---------------------------------------------------------------------------------- wrk ---

_LUA = """
wrk.method = "{method}"
{headers}
{body}
"""
_DURATION = re.compile(r"([\d.]+)(us|ms|s)\b")


def _ms(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return 0.0
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def load(
    base: str,
    path: str,
    *,
    connections: int,
    seconds: int,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    row: Row,
) -> Row:
    """Load one endpoint with wrk (a short warm-up first) and fill in the row's figures."""
    all_headers = dict(headers or {})
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    lua = _LUA.format(
        method=method,
        headers="\n".join(f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in all_headers.items()),
        body=f"wrk.body = {json.dumps(body)}" if body is not None else "",
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        threads = str(min(2, connections))
        common = [
            "wrk",
            "-t",
            threads,
            "-c",
            str(connections),
            "--timeout",
            "10s",
            "-s",
            script.name,
            base + path,
        ]
        subprocess.run(
            [*common[:5], "-d", "1s", *common[5:]],  # warm-up: connections, caches
            capture_output=True,
            check=False,
        )
        # wrk stops without waiting for its answers: the server may still be working through
        # the warm-up's last requests. One request of the same kind queues behind them, so the
        # measured run starts on a server with nothing left over.
        drain = urllib.request.Request(  # noqa: S310 - a loopback URL built here
            base + path,
            data=body.encode() if body is not None else None,
            headers=all_headers,
            method=method,
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(drain, timeout=120).close()  # noqa: S310
        out = subprocess.run(
            [*common[:5], "-d", f"{seconds}s", "--latency", *common[5:]],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    finally:
        os.unlink(script.name)
    if (found := re.search(r"Requests/sec:\s*([\d.]+)", out)) is None:
        raise BenchError(f"wrk printed no throughput for {path}:\n{out}")
    row.requests_per_second = float(found.group(1))
    latency = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)", out, re.M))
    row.p50_ms, row.p99_ms = _ms(latency.get("50", "")), _ms(latency.get("99", ""))
    if found := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out):
        row.non_2xx = int(found.group(1))
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        row.socket_errors = sum(int(n) for n in found.groups())
    return row


# ------------------------------------------------------------------------------ targets ---


def database_for(server: DatabaseServer | None, database: str, name: str, tmp: Path) -> str:
    """A fresh, empty database for one target, and its async SQLAlchemy URL."""
    if server is None:
        return f"sqlite+aiosqlite:///{tmp / f'{name}.db'}"
    url = server.url.rsplit("/", 1)[0] + f"/{name}"
    if database == "postgresql":
        admin = server.url.replace("postgresql+asyncpg", "postgresql")
        run_sql_postgres(admin, f"DROP DATABASE IF EXISTS {name}")
        run_sql_postgres(admin, f"CREATE DATABASE {name}")
    else:
        run_sql_mysql(server, f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}")
    return url + ("?charset=utf8mb4" if database == "mysql" else "")


def run_sql_postgres(url: str, statement: str) -> None:
    psql = shutil.which("psql") or "psql"
    sh([psql, url, "-v", "ON_ERROR_STOP=1", "-qc", statement], ROOT)


def run_sql_mysql(server: DatabaseServer, statement: str, database: str | None = None) -> None:
    client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
    command = [client, "--no-defaults", "-h", server.host, "-P", str(server.port)]
    command += ["-uapp", "-papp-password", *([database] if database else []), "-e", statement]
    sh(command, ROOT)


def trimmer(
    database: str, server: DatabaseServer | None, url: str, since: str
) -> Callable[[], None]:
    """Delete the items that POST rows created, so that every list row sees the same 100."""
    statement = f"DELETE FROM items WHERE created_at > '{since}'"

    def trim() -> None:
        if database == "sqlite":
            with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as db:
                db.execute(statement)
                db.commit()
        elif database == "postgresql" and server is not None:
            run_sql_postgres(url.replace("postgresql+asyncpg", "postgresql"), statement)
        elif server is not None:
            run_sql_mysql(server, statement, database=url.rsplit("/", 1)[1].split("?")[0])

    return trim


def prepare(
    name: str, project: Path, answers: dict[str, str], url: str, server: DatabaseServer | None
) -> Target:
    """Install, migrate, and seed one principal with 100 items; the target to serve."""
    sh([uv(), "sync", "--quiet"], project)
    env = {"DATABASE_URL": url, "LOG_FORMAT": "json", "ENVIRONMENT": "local"}
    if answers["auth"] == "jwt":
        env["SECRET_KEY"] = SECRET_KEY
    sh([uv(), "run", "--no-sync", "alembic", "upgrade", "head"], project, env)
    target = Target(name, project, env)
    package = re.sub(r"\W", "_", answers["project_name"].lower())
    if answers["auth"] == "api_key":
        out = sh(
            [uv(), "run", "--no-sync", "python", "-m", package, "api-keys", "create", "bench"],
            project,
            env,
        )
        target.headers = {"X-API-Key": out.strip().splitlines()[-1]}
        target.me_path = "/api/v1/clients/me"
    with serve_target(target, 1) as base:
        if answers["auth"] == "jwt":
            status, _, _ = call(
                base,
                "POST",
                "/api/v1/auth/register",
                json_body={"email": EMAIL, "password": PASSWORD},
            )
            if status != 201:
                raise BenchError(f"{name}: registering the benchmark user answered {status}")
            form = {"username": EMAIL, "password": PASSWORD}
            status, _, tokens = call(base, "POST", "/api/v1/auth/login", form=form)
            if status != 200:
                raise BenchError(f"{name}: logging in answered {status}")
            target.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            target.me_path = "/api/v1/users/me"
        for number in range(ITEMS):
            item = {"title": f"Item {number}", "description": "A benchmark item " * 4}
            status, _, _ = call(
                base, "POST", "/api/v1/items", json_body=item, headers=target.headers
            )
            if status != 201:
                raise BenchError(f"{name}: seeding an item answered {status}")
        status, _, first = call(base, "GET", "/api/v1/items?limit=1", headers=target.headers)
    if answers["auth"] == "none":
        target.me_path = f"/api/v1/items/{first['data'][0]['id']}"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 1))
    time.sleep(1.1)  # items POSTed by the benchmark come after `since`, the seeded ones before
    target.trim = trimmer(answers["database"], server, url, since)
    return target


# ---------------------------------------------------------------------------------- run ---

ENDPOINTS = ("items list", "me", "create item", "health")


def endpoint_request(target: Target, endpoint: str) -> dict[str, object]:
    if endpoint == "items list":
        return {"path": "/api/v1/items?limit=100", "headers": target.headers}
    if endpoint == "me":
        return {"path": target.me_path, "headers": target.headers}
    if endpoint == "create item":
        body = json.dumps({"title": "A new item", "description": "Created under load"})
        return {"path": "/api/v1/items", "headers": target.headers, "method": "POST", "body": body}
    return {"path": "/health"}


def bench(args: argparse.Namespace) -> list[Row]:
    answers = {
        "project_name": "Bench Service",
        "database": args.database,
        "auth": args.auth,
        "package_manager": args.package_manager,
    }
    seconds = 1 if args.quick else args.seconds
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        server = None
        if args.database != "sqlite":
            server = stack.enter_context(database_server(args.database))
        print(f"rendering {args.database} + {args.auth} + {args.package_manager} ...", flush=True)
        targets = []
        project = render(tmp / "service", **answers)
        url = database_for(server, args.database, "bench_service", tmp)
        targets.append(prepare("service", project, answers, url, server))
        if args.baseline != "none":
            print(f"rendering the baseline at {args.baseline} ...", flush=True)
            try:
                copier.run_copy(
                    str(ROOT),
                    str(tmp / "baseline"),
                    data=answers,
                    defaults=True,
                    unsafe=True,
                    vcs_ref=args.baseline,
                    quiet=True,
                )
            except Exception as exc:  # say which ref, whatever Copier raised
                raise BenchError(
                    f"cannot render the baseline at {args.baseline!r}: {exc}"
                ) from None
            url = database_for(server, args.database, "bench_baseline", tmp)
            targets.append(prepare("baseline", tmp / "baseline", answers, url, server))
        payload = tmp / "payload.json"
        with serve_target(targets[0], 1) as base:
            _, _, listing = call(base, "GET", "/api/v1/items?limit=100", headers=targets[0].headers)
        payload.write_text(json.dumps(listing))

        for workers in args.workers:
            print(f"loading with {workers} worker(s) ...", flush=True)
            with contextlib.ExitStack() as servers:
                bases = {t.name: servers.enter_context(serve_target(t, workers)) for t in targets}
                for endpoint in ENDPOINTS:
                    for connections in args.connections:
                        for target in targets:  # alternate, so that noise hits both alike
                            row = Row(target.name, endpoint, workers, connections)
                            rows.append(
                                load(
                                    bases[target.name],
                                    seconds=seconds,
                                    connections=connections,
                                    row=row,
                                    **endpoint_request(target, endpoint),  # type: ignore[arg-type]
                                )
                            )
                            if endpoint == "create item":
                                target.trim()
            for module, name in (
                ("ceiling_fastapi", "ceiling fastapi"),
                ("ceiling_starlette", "ceiling starlette"),
            ):
                with serve_ceiling(project, module, payload, workers) as base:
                    for connections in args.connections:
                        row = Row(name, "items list", workers, connections)
                        rows.append(
                            load(
                                base,
                                "/api/v1/items",
                                connections=connections,
                                seconds=seconds,
                                row=row,
                            )
                        )
    return rows


def add_ratios(rows: list[Row]) -> None:
    by_key = {(r.target, r.endpoint, r.workers, r.connections): r for r in rows}
    for row in rows:
        if row.target != "service":
            continue
        baseline = by_key.get(("baseline", row.endpoint, row.workers, row.connections))
        if baseline and baseline.requests_per_second:
            row.vs_baseline = row.requests_per_second / baseline.requests_per_second
        ceiling = by_key.get(("ceiling fastapi", "items list", row.workers, row.connections))
        if row.endpoint == "items list" and ceiling and ceiling.requests_per_second:
            row.vs_ceiling = row.requests_per_second / ceiling.requests_per_second


def table(rows: list[Row]) -> str:
    header = (
        f"{'target':<18}{'endpoint':<13}{'workers':>7}{'conns':>6}{'req/s':>10}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'non-2xx':>8}{'sock err':>9}{'x base':>8}{'% ceil':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in sorted(
        rows, key=lambda r: (r.workers, ENDPOINTS.index(r.endpoint), r.connections, r.target)
    ):
        base = f"{r.vs_baseline:.2f}" if r.vs_baseline is not None else "-"
        ceil = f"{100 * r.vs_ceiling:.0f}%" if r.vs_ceiling is not None else "-"
        lines.append(
            f"{r.target:<18}{r.endpoint:<13}{r.workers:>7}{r.connections:>6}"
            f"{r.requests_per_second:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.non_2xx:>8}"
            f"{r.socket_errors:>9}{base:>8}{ceil:>8}"
        )
    lines.append(
        "x base: the service's req/s over the baseline's, same row. % ceil: the items list's"
    )
    lines.append("req/s as a share of FastAPI returning the same 100 items without a database.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql", "mysql"], default="postgresql"
    )
    parser.add_argument("--auth", choices=["jwt", "api_key", "none"], default="jwt")
    parser.add_argument(
        "--package-manager",
        choices=["uv"],
        default="uv",
        help="only uv: the figures are the service's, not its installer's",
    )
    parser.add_argument(
        "--baseline",
        default=BASELINE_REF,
        help="git ref to compare with, rendered with the same answers, or `none`",
    )
    parser.add_argument("--quick", action="store_true", help="1 s per row: proves that it runs")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per row (default 5)")
    parser.add_argument("--workers", type=lambda s: [int(n) for n in s.split(",")], default=[1, 2])
    parser.add_argument(
        "--connections", type=lambda s: [int(n) for n in s.split(",")], default=[32, 128]
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed (Debian package `wrk`: apt-get install wrk)",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    try:
        rows = bench(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except OutcomeException as exc:  # a missing database server, reported by tests/servers.py
        print(f"bench: {exc.msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return 130
    add_ratios(rows)
    print(table(rows))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "answers": {
            "database": args.database,
            "auth": args.auth,
            "package_manager": args.package_manager,
        },
        "baseline": args.baseline,
        "seconds_per_row": 1 if args.quick else args.seconds,
        "took_seconds": round(time.monotonic() - started, 1),
        "rows": [asdict(row) for row in rows],
    }
    args.output.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {args.output} in {result['took_seconds']} s")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
