"""Prometheus metrics with four workers: every request is counted once, whichever worker
answered it and whichever worker answers the scrape.

A `metrics=true` render is served with `fastapi run --workers 4` and PROMETHEUS_MULTIPROC_DIR
set to an empty directory, as its README says. Requests are sent from many threads, each on
a new connection, so that the workers share them; then /metrics is scraped several times
(each scrape may reach another worker), and each must report exactly what was sent.
"""

import json
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import call, render, run, serve, uv

WORKERS = 4
REQUESTS = 200
UNMATCHED = 40
SCRAPES = 8

pytestmark = pytest.mark.slow


# A sample line of the Prometheus text format: name{label="value",...} value
_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, by name and labels."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        found = _SAMPLE.match(line)
        assert found, line
        name, labels, value = found.groups()
        samples[name, frozenset(_LABEL.findall(labels or ""))] = float(value)
    return samples


def _worker_pids(directory: Path, kind: str) -> set[int]:
    """The processes that wrote samples of a kind (counter, gauge_livesum, ...)."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in directory.glob(f"{kind}_*.db")}


def _answered(base: str, path: str) -> int:
    """GET one path on a new connection until it is answered. On a busy machine, Uvicorn
    kills a worker that misses its health check and starts another; the requests that
    worker held get no answer, and were not counted either: they are sent again."""
    for _ in range(4):
        try:
            return call(base, "GET", path)[0]
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    return call(base, "GET", path)[0]


def _series(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_four_workers_count_every_request_exactly_once(tmp_path: Path) -> None:
    project = render(tmp_path / "my-service", metrics=True)
    run([uv(), "sync", "--quiet"], project)
    samples_dir = tmp_path / "prometheus"
    samples_dir.mkdir()
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'served.db'}",
        "PROMETHEUS_MULTIPROC_DIR": str(samples_dir),
    }
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)

    # A few seconds on an idle machine; a loaded one (CI runners, parallel runs) takes longer.
    with serve(project, env, ["--workers", str(WORKERS)], timeout=180) as served:
        # Every worker makes its gauge file when it imports the app: wait for all four, so
        # that they share the requests.
        deadline = time.monotonic() + 180
        while len(_worker_pids(samples_dir, "gauge_livesum")) < WORKERS:
            assert time.monotonic() < deadline, sorted(samples_dir.iterdir())
            time.sleep(0.2)

        paths = ["/health/ready"] * REQUESTS + [f"/no-such-page/{n}" for n in range(UNMATCHED)]
        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(lambda path: _answered(served.base_url, path), paths))
        assert statuses == [200] * REQUESTS + [404] * UNMATCHED

        scrapes = [_scrape(served.base_url) for _ in range(SCRAPES)]

    # The requests were shared: more than one worker counted some.
    assert len(_worker_pids(samples_dir, "counter")) > 1, sorted(samples_dir.iterdir())
    ready = _series("http_requests_total", method="GET", route="/health/ready", status="200")
    unmatched = _series("http_requests_total", method="GET", route="unmatched", status="404")
    timed = _series("http_request_duration_seconds_count", method="GET", route="/health/ready")
    in_use = _series("db_connections_in_use")
    for samples in scrapes:
        assert samples[ready] == REQUESTS
        assert samples[unmatched] == UNMATCHED
        assert samples[timed] == REQUESTS
        assert samples[in_use] == 0
        # No raw path became a label.
        assert not any("no-such-page" in json.dumps(sorted(labels)) for _, labels in samples)
