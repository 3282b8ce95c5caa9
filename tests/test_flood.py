"""A flood of logins does not stall the rest of the API.

A render (jwt + uv) is served on its real database with the production Argon2 cost (about
64 MiB and a sizeable fraction of a second per check) and with rate limits off: a flood
from many addresses, which per-address limits would not stop. Fifty clients send bad
logins back to back. Meanwhile one client reads the items list (100 items) over and over,
and its p99 latency must stay within 3x of the same reads on the idle service, with no
server error anywhere. Password checks queue in their own small pool and hold no database
connection while they wait or run, so the items list still gets its connection at once.

The machine is shared (other tests run beside this one), so idle and flooded reads are
taken in alternating rounds: whatever else the machine does weighs on both alike.
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
ROUNDS = 4
READS = 100  # per round and phase: 400 idle reads and 400 flooded reads in all
ITEMS = 100


class Flood:
    """FLOODERS threads that send bad logins back to back while the flood is on. Turned
    off, each finishes the login it has sent (queued logins drain) and then waits."""

    def __init__(self, base: str, email: str) -> None:
        self._base = base
        self._form = {"username": email, "password": "not the password"}
        self._on = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.statuses: Counter[int | str] = Counter()
        self._threads = [threading.Thread(target=self._flood) for _ in range(FLOODERS)]

    @property
    def answered(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def __enter__(self) -> "Flood":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._on.set()
        for thread in self._threads:
            thread.join(timeout=600)

    def turn_on(self) -> None:
        """Start the flood and return once it is steady: every flooder has a login queued,
        and the pool has answered some of them."""
        answered = self.answered
        self._on.set()
        self._wait(lambda: self.in_flight == FLOODERS and self.answered >= answered + 4)

    def turn_off(self) -> None:
        """Stop sending, and return once every queued login has been answered."""
        with self._lock:
            self._on.clear()
        self._wait(lambda: self.in_flight == 0)

    def _wait(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 600
        while not condition():
            assert time.monotonic() < deadline, ("the flood never settled", self.statuses)
            time.sleep(0.05)

    def _flood(self) -> None:
        while not self._stop.is_set():
            if not self._on.wait(timeout=0.1):
                continue
            with self._lock:  # turn_off() clears under this lock: no login starts after it
                if not self._on.is_set() or self._stop.is_set():
                    continue
                self.in_flight += 1
            try:
                # A login waits in the hashing pool's queue as long as its turn takes.
                form = self._form
                status: int | str = call(
                    self._base, "POST", "/api/v1/auth/login", form=form, timeout=300
                )[0]
            except OSError as error:
                status = type(error).__name__
            with self._lock:
                self.in_flight -= 1
                self.statuses[status] += 1


def _reads(base: str, token: str, statuses: Counter[int]) -> list[float]:
    """Read the items list READS times in a row: each read's seconds."""
    seconds: list[float] = []
    for _ in range(READS):
        started = time.perf_counter()
        status, _, _ = call(base, "GET", f"/api/v1/items?limit={ITEMS}", token=token)
        seconds.append(time.perf_counter() - started)
        statuses[status] += 1
    return seconds


def _p99(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[98]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


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
        _reads(base, token, Counter())  # warm up: connections, caches, the first reads

        idle: list[float] = []
        flooded: list[float] = []
        statuses: Counter[int] = Counter()
        with Flood(base, credentials["email"]) as flood:
            for _ in range(ROUNDS):
                flood.turn_off()
                idle += _reads(base, token, statuses)
                flood.turn_on()
                flooded += _reads(base, token, statuses)
            flood.turn_off()

    figures = {
        "database": database,
        "idle p50 ms": _ms(statistics.median(idle)),
        "idle p99 ms": _ms(_p99(idle)),
        "flooded p50 ms": _ms(statistics.median(flooded)),
        "flooded p99 ms": _ms(_p99(flooded)),
        "bad logins answered": sum(flood.statuses.values()),
    }
    record_property("flood", figures)
    assert statuses == {200: 2 * ROUNDS * READS}, (statuses, served.log[-3000:])
    assert set(flood.statuses) == {401}, (flood.statuses, served.log[-3000:])
    assert _p99(flooded) <= 3 * _p99(idle), figures
