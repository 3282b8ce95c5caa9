"""Fuzzing every database x auth style with schemathesis, over HTTP, on real servers.

Each case renders the service (uv, no Redis), migrates its real database, serves it with
`fastapi run`, authenticates as a client would (jwt: the superuser, made with the render's
CLI, logs in over HTTP; api_key: a key made with the render's CLI; none: nothing), and runs
schemathesis against the served `/openapi.json`: every phase (examples, coverage, fuzzing,
and the stateful phase, which chains operations through the links it finds, e.g. create an
item then read, update and delete it), at least MAX_EXAMPLES cases per operation, with a
fixed seed. No request may end in a server error (nor fail the other CHECKS), the server may
log no error, and every operation of REACHED must have succeeded at least once (so refused
credentials cannot pass unnoticed). The seconds each case took go to the "fuzz" section at
the end of the run.

The served app runs as a user would run it, except that rate limits are off (the fuzzer
sends far more requests per minute than any client) and Argon2id runs at its minimum cost,
as in the rendered suite.
"""

import json
import re
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers import DatabaseServer

from harness import call, child_env, render, run, serve, tool, uv

DATABASES = ["sqlite", "postgresql", "mysql"]
AUTHS = ["jwt", "api_key", "none"]
PACKAGE = "my_service"
# No server error, above all; and each answer as documented (its schema and content type),
# protected operations refused without the credentials, a created item readable at once, a
# deleted one gone. (Undocumented statuses such as 401, 404 and 409, and the 405s' Allow
# header, are not checked: the OpenAPI document lists only the success and the 422.)
CHECKS = [
    "not_a_server_error",
    "response_schema_conformance",
    "content_type_conformance",
    "ignored_auth",
    "ensure_resource_availability",
    "use_after_free",
]
MAX_EXAMPLES = 100
SEED = 20261206
# Per request, and for the whole run: a hung request or run fails the test instead of
# stalling the suite.
REQUEST_TIMEOUT = 10
RUN_TIMEOUT = 600
# Schemathesis's count of test cases, and an id in a logged path.
_GENERATED = re.compile(r"^\s*(\d+) generated", re.M)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

pytestmark = pytest.mark.slow


def _settings(auth: str, database_url: str) -> dict[str, str]:
    env = {"DATABASE_URL": database_url}
    if auth != "none":
        env["RATE_LIMIT_ENABLED"] = "false"
    if auth == "jwt":
        # The rendered suite's minimum cost: hashing is not what is fuzzed.
        env |= {
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "8",
            "PASSWORD_HASH_PARALLELISM": "1",
        }
    return env


def _credentials(auth: str, base: str, project: Path, env: dict[str, str]) -> list[str]:
    """The header a client sends, as schemathesis's `-H NAME: VALUE` options. With jwt, the
    client is the superuser (made with the render's CLI, then logged in over HTTP), so that
    the superuser-only routes are fuzzed too, not only refused with 403."""
    if auth == "jwt":
        email, password = "fuzz@example.com", "a long enough password"
        superuser = {"FIRST_SUPERUSER_EMAIL": email, "FIRST_SUPERUSER_PASSWORD": password}
        run(
            [uv(), "run", "python", "-m", PACKAGE, "create-superuser"], project, env=env | superuser
        )
        status, _, tokens = call(
            base, "POST", "/api/v1/auth/login", form={"username": email, "password": password}
        )
        assert status == 200, tokens
        return ["-H", f"Authorization: Bearer {tokens['access_token']}"]
    if auth == "api_key":
        command = [uv(), "run", "python", "-m", PACKAGE, "api-keys", "create", "fuzz"]
        key = run(command, project, env=env).stdout.strip()
        assert key.startswith("sk_"), key
        return ["-H", f"X-API-Key: {key}"]
    return []


def _schemathesis(
    base: str, credentials: list[str], workdir: Path
) -> subprocess.CompletedProcess[str]:
    command = [
        *(tool("schemathesis"), "run", f"{base}/openapi.json"),
        *("--checks", ",".join(CHECKS)),
        *("--phases", "examples,coverage,fuzzing,stateful"),
        *("--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED)),
        *("--request-timeout", str(REQUEST_TIMEOUT)),
        *("--generation-database", "none", "--no-color"),
        *credentials,
    ]
    # Run in a directory of its own: nothing it writes lands in the repository.
    return subprocess.run(
        command,
        cwd=workdir,
        env=child_env({"COLUMNS": "120"}),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (schemathesis, the server): the cost of a
    case on a machine that other work shares."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _access_log(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def _logged_errors(log: str) -> list[dict[str, Any]]:
    return [
        line
        for line in _access_log(log)
        if line["level"] == "ERROR" or line.get("status", 0) >= 500
    ]


def _succeeded(log: str) -> set[tuple[str, str]]:
    """The operations (method, path with `{id}`) that answered at least one 2xx."""
    return {
        (line["method"], _UUID.sub("{id}", line["path"]))
        for line in _access_log(log)
        if 200 <= line.get("status", 0) < 300
    }


# What the fuzzer must have reached with success: proof that its credentials were accepted
# and that the stateful phase read, changed and deleted the items it created.
ITEMS = {
    ("GET", "/api/v1/items"),
    ("POST", "/api/v1/items"),
    ("GET", "/api/v1/items/{id}"),
    ("PATCH", "/api/v1/items/{id}"),
    ("DELETE", "/api/v1/items/{id}"),
}
REACHED = {
    "jwt": ITEMS | {("GET", "/api/v1/users"), ("GET", "/api/v1/users/me")},
    "api_key": ITEMS | {("GET", "/api/v1/clients/me")},
    "none": ITEMS,
}


@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize("database", DATABASES)
def test_schemathesis_finds_no_server_error(
    database: str,
    auth: str,
    tmp_path: Path,
    database_server: Callable[[str], DatabaseServer],
    record_property: Callable[[str, object], None],
) -> None:
    started = time.monotonic()
    project = render(tmp_path / "my-service", database=database, auth=auth)
    run([uv(), "sync", "--quiet"], project)
    if database == "sqlite":
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
    else:
        database_url = database_server(database).url
    env = _settings(auth, database_url)
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    installed = time.monotonic()
    cpu_before = _children_cpu()
    workdir = tmp_path / "schemathesis"
    workdir.mkdir()
    try:
        with serve(project, env) as served:
            credentials = _credentials(auth, served.base_url, project, env)
            fuzzed = _schemathesis(served.base_url, credentials, workdir)
    finally:
        if database != "sqlite":  # the server's database is shared with the other tests
            run([uv(), "run", "alembic", "downgrade", "base"], project, env=env)
    finished = time.monotonic()
    cpu = _children_cpu() - cpu_before
    record_property(
        "fuzz_seconds",
        {
            "case": f"{database}-{auth}",
            "install": installed - started,
            "fuzz": finished - installed,
            "cpu": cpu,
            "cases": found.group(1) if (found := _GENERATED.search(fuzzed.stdout)) else "?",
        },
    )

    report = f"--- schemathesis ---\n{fuzzed.stdout[-20000:]}\n{fuzzed.stderr[-5000:]}"
    exit_code = fuzzed.returncode  # named, so that a failure shows the report, not the process
    assert exit_code == 0, report
    assert f"Seed: {SEED}" in fuzzed.stdout, report  # it ran, with our settings
    errors = _logged_errors(served.log)
    assert not errors, f"the server logged errors: {errors[:5]}\n{report}"
    missed = REACHED[auth] - _succeeded(served.log)
    assert not missed, f"no success from {sorted(missed)}: were the credentials refused?\n{report}"
