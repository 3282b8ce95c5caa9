"""Fixtures for the template's tests. Layers, selectable by marker:

(no marker)  render and inspect every file; seconds.
slow         install the rendered service and run its tools, suite and server; minutes.
"""

import contextlib
import os
from collections.abc import Callable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest
from pytest_copie.plugin import Copie
from servers import DatabaseServer
from servers import database_server as start_database_server

from harness import link_tools, render, run, uv


@pytest.fixture(scope="session")
def default_project(copie_session: Copie) -> Path:
    """The default render (sqlite + jwt + uv), shared by the render-level tests."""
    result = copie_session.copy(extra_answers={})
    assert result.exit_code == 0, result.exception
    assert result.project_dir is not None
    return result.project_dir


@pytest.fixture(scope="session")
def installed_default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default render, as a git repository, with its dependencies installed by uv."""
    project = render(tmp_path_factory.mktemp("installed") / "my-service")
    run(["git", "init", "-q"], project)
    run(["git", "add", "-A"], project)
    run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "render"],
        project,
    )
    run([uv(), "sync", "--quiet"], project)
    return project


@pytest.fixture(scope="session")
def database_server() -> Iterator[Callable[[str], DatabaseServer]]:
    """Start a throwaway server of a kind ("postgresql", "mysql", "redis") on first use, once per
    test session (so once per xdist worker), and stop them all at the end."""
    with contextlib.ExitStack() as stack:
        running: dict[str, DatabaseServer] = {}

        def get(kind: str) -> DatabaseServer:
            if kind not in running:
                running[kind] = stack.enter_context(start_database_server(kind))
            return running[kind]

        yield get


@pytest.fixture(scope="session")
def package_manager_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with uv, Poetry and Pipenv (from the template's dev dependencies), to put
    first on PATH when a test runs a rendered README's commands."""
    return link_tools(tmp_path_factory.mktemp("tools"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, hand out the slow tests first: the quick ones then fill the workers'
    last minutes, instead of one worker running a long test alone at the end."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _fuzz_line(row: dict[str, Any]) -> str:
    return (
        f"{row['case']:>18}: install {row['install']:5.1f}  fuzz {row['fuzz']:5.1f} "
        f"(CPU {row['cpu']:5.1f})  total {row['install'] + row['fuzz']:5.1f}  "
        f"({row['cases']} test cases)"
    )


def _flood_line(row: dict[str, Any]) -> str:
    return (
        f"{row['database']:>18}: idle p50 {row['idle p50 ms']} ms, "
        f"p99 {row['idle p99 ms']} ms; flooded p50 {row['flooded p50 ms']} ms, "
        f"p99 {row['flooded p99 ms']} ms; {row['bad logins answered']} bad logins"
    )


def _workers_line(row: dict[str, Any]) -> str:
    name = row["database"] + (" + redis" if row.get("redis") else "")
    return (
        f"{name:>18}: {row['clients']} clients, {row['requests']} requests "
        f"in {row['seconds']:.1f} s, {row['throughput']:.0f} req/s, "
        f"p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, "
        f"max {row['max_ms']:.0f} ms, {row['errors']} errors"
    )


def _package_manager_line(row: dict[str, Any]) -> str:
    steps = {step: seconds for step, seconds in row.items() if step != "manager"}
    spent = "  ".join(f"{step} {seconds:5.1f}" for step, seconds in steps.items())
    return f"{row['manager']:>7}: {spent}  total {sum(steps.values()):5.1f}"


# The figures that slow tests record (record_property), each shown as a section at the end of
# the run, also under xdist: (property, section title, sort key, line).
SUMMARIES: list[
    tuple[str, str, Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], str]]
] = [
    (
        "package_manager_timings",
        "package managers: seconds per step",
        itemgetter("manager"),
        _package_manager_line,
    ),
    (
        "worker_figures",
        "workers: fastapi run --workers 4, integration concurrency",
        lambda row: (row["database"], row.get("redis", False)),
        _workers_line,
    ),
    (
        "flood",
        "flood: items list latency, idle and under 50 bad logins",
        itemgetter("database"),
        _flood_line,
    ),
    ("fuzz_seconds", "fuzz: schemathesis, seconds per case", itemgetter("case"), _fuzz_line),
]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A section for each kind of figure that finished tests recorded."""
    reports = terminalreporter.getreports("passed") + terminalreporter.getreports("failed")
    for property_name, title, sort_key, line in SUMMARIES:
        rows = [
            value
            for report in reports
            for name, value in report.user_properties
            if name == property_name
        ]
        if rows:
            terminalreporter.section(title)
            for row in sorted(rows, key=sort_key):
                terminalreporter.write_line(line(row))
