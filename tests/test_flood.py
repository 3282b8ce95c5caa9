"""A flood of logins does not stall the rest of the API.

A render (jwt + uv) is served on its real database with the production Argon2 cost (about
64 MiB and a sizeable fraction of a second per check) and with rate limits off: a flood
from many addresses, which per-address limits would not stop. Fifty clients send bad
logins back to back. Meanwhile one client reads the items list (100 items) over and over,
and its p99 latency must stay within 3x of the same reads on the idle service, with no
server error anywhere. Password checks queue in their own small pool and hold no database
connection while they wait or run, so the items list still gets its connection at once.
"""

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import DatabaseServer

from harness import call, login, render, run, serve, uv

pytestmark = pytest.mark.slow

FLOODERS = 50
READS = 200
ITEMS = 100


def _latencies(base: str, token: str) -> tuple[list[float], Counter[int]]:
    """Read the items list READS times in a row: each read's seconds, and the statuses."""
    seconds: list[float] = []
    statuses: Counter[int] = Counter()
    for _ in range(READS):
        started = time.perf_counter()
        status, _, _ = call(base, "GET", f"/api/v1/items?limit={ITEMS}", token=token)
        seconds.append(time.perf_counter() - started)
        statuses[status] += 1
    return seconds, statuses


def _p99(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[98]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_fifty_concurrent_bad_logins_leave_the_items_list_fast(
    database: str,
    tmp_path: Path,
    database_server: Callable[[str], DatabaseServer],
    record_property: Callable[[str, object], None],
) -> None:
    project = render(tmp_path / "my-service", database=database)
    run([uv(), "sync", "--quiet"], project)
    if database == "sqlite":
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'served.db'}"}
    else:
        env = {"DATABASE_URL": database_server(database).url}
    env["RATE_LIMIT_ENABLED"] = "false"
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)

    with serve(project, env) as served:
        base = served.base_url
        credentials = {"email": "reader@example.com", "password": "a long enough password"}
        assert call(base, "POST", "/api/v1/auth/register", json_body=credentials)[0] == 201
        token = login(base, credentials["email"], credentials["password"])
        for number in range(ITEMS):
            body = {"title": f"item {number}", "description": "x" * 100}
            assert call(base, "POST", "/api/v1/items", json_body=body, token=token)[0] == 201
        _latencies(base, token)  # warm up: connections, caches, the first reads
        idle, idle_statuses = _latencies(base, token)

        stop = threading.Event()
        flood_statuses: Counter[int | str] = Counter()
        lock = threading.Lock()
        bad = {"username": credentials["email"], "password": "not the password"}

        def flood() -> None:
            # Logins queue for the hashing pool: a flooder waits as long as its turn takes.
            while not stop.is_set():
                try:
                    status: int | str = call(
                        base, "POST", "/api/v1/auth/login", form=bad, timeout=300
                    )[0]
                except OSError as error:
                    status = type(error).__name__
                with lock:
                    flood_statuses[status] += 1

        flooders = [threading.Thread(target=flood) for _ in range(FLOODERS)]
        for flooder in flooders:
            flooder.start()
        try:
            # Measure the steady flood, not its first burst of connections: every flooder
            # has had an answer, and sent its next login.
            deadline = time.monotonic() + 600
            while sum(flood_statuses.values()) < FLOODERS and time.monotonic() < deadline:
                time.sleep(0.1)
            flooded, flooded_statuses = _latencies(base, token)
        finally:
            stop.set()
            for flooder in flooders:
                flooder.join(timeout=600)
        # The machine's idle value is the worse of before and after the flood: other work on
        # a shared machine must not count against the service.
        after, after_statuses = _latencies(base, token)

    idle_p99 = max(_p99(idle), _p99(after))

    figures = {
        "idle p50 ms": round(statistics.median(idle) * 1000, 1),
        "idle p99 ms (before, after)": (round(_p99(idle) * 1000, 1), round(_p99(after) * 1000, 1)),
        "flooded p50 ms": round(statistics.median(flooded) * 1000, 1),
        "flooded p99 ms": round(_p99(flooded) * 1000, 1),
        "bad logins answered": sum(flood_statuses.values()),
    }
    record_property("flood", figures)
    print(f"\nflood [{database}]: {figures}")
    assert idle_statuses == after_statuses == {200: READS}, (idle_statuses, after_statuses)
    assert flooded_statuses == {200: READS}, (flooded_statuses, served.log[-3000:])
    assert set(flood_statuses) == {401}, (flood_statuses, served.log[-3000:])
    assert sum(flood_statuses.values()) >= FLOODERS, flood_statuses  # each sent one at least
    assert _p99(flooded) <= 3 * idle_p99, figures
