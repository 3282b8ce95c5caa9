"""Helpers for the template's tests: render with Copier, run the render's own tools, serve it."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import copier
import pytest

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]

# A developer's own Copier settings must not leak into the renders.
_SETTINGS = TEMPLATE_ROOT / "tests" / "copier-settings.yml"
os.environ["COPIER_SETTINGS_PATH"] = str(_SETTINGS)

DEFAULT_ANSWERS: dict[str, object] = {"project_name": "My Service"}

PACKAGE_MANAGERS = ("uv", "poetry", "pipenv", "pip")

# How each manager's README runs a command in the project's environment (pip: activated).
RUN_PREFIX = {"uv": "uv run ", "poetry": "poetry run ", "pipenv": "pipenv run ", "pip": ""}

# The tools the rendered READMEs ask for, installed by the template's own dev dependencies.
PACKAGE_MANAGER_TOOLS = ("uv", "poetry", "pipenv")


# Variables of the template's own test run that must not reach a render's commands: its
# virtual environment, and pytest options meant for this run (e.g. --durations from CI).
_NOT_FOR_RENDERS = ("VIRTUAL_ENV", "PYTEST_ADDOPTS")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a command run in a render: ours, less what is ours alone."""
    env = {key: value for key, value in os.environ.items() if key not in _NOT_FOR_RENDERS}
    return {**env, **(extra or {})}


def render(destination: Path, *, vcs_ref: str = "HEAD", **answers: object) -> Path:
    """Render the template non-interactively: by default its working tree (uncommitted
    changes included), or the commit `vcs_ref` of this repository's history."""
    copier.run_copy(
        str(TEMPLATE_ROOT),
        str(destination),
        data={**DEFAULT_ANSWERS, **answers},
        defaults=True,
        unsafe=True,
        vcs_ref=vcs_ref,
        quiet=True,
    )
    return destination


_TEXT_SUFFIXES = {".py", ".toml", ".md", ".ini", ".yml", ".yaml", ".mako", ".example", ".txt", ""}


def assert_no_jinja_residue(project: Path) -> None:
    """No template syntax in any rendered name or text file, and no blank-line clusters left
    behind by false branches."""
    for path in project.rglob("*"):
        if ".git" in path.parts or ".venv" in path.parts:
            continue
        assert "{{" not in path.name, path
        assert "{%" not in path.name, path
        if not path.is_file() or path.suffix not in _TEXT_SUFFIXES:
            continue
        text = path.read_text()
        # GitHub Actions expressions (${{ ... }}) are the only legitimate double braces.
        stripped = re.sub(r"\$\{\{.*?\}\}", "", text)
        for marker in ("{{", "{%", "%}", "{#"):
            assert marker not in stripped, f"{marker} left in {path}"
        assert "\n\n\n\n" not in text, f"a blank-line cluster is left in {path}"


def run(
    command: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command in a render; on failure, fail the test with the command's whole output."""
    completed = _execute(command, cwd, env=env, timeout=timeout)
    if completed.returncode != 0:
        _fail_with_output(command, cwd, completed)
    return completed


def _execute(
    command: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command in a render, capturing its output, whatever its exit code."""
    # The render's tools must use the render's own environment, not the template's.
    return subprocess.run(
        list(command),
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _fail_with_output(
    command: Sequence[str], cwd: Path, completed: subprocess.CompletedProcess[str]
) -> NoReturn:
    pytest.fail(
        f"`{' '.join(command)}` exited {completed.returncode} in {cwd}\n"
        f"--- stdout ---\n{completed.stdout[-20000:]}\n"
        f"--- stderr ---\n{completed.stderr[-20000:]}",
        pytrace=False,
    )


# What a package index's hiccup looks like in an install's output: a release the resolver has
# just seen but the next page served does not list (pipenv looks each package up twice: to
# lock, then to install), or a dropped or timed-out connection. A defect of the template
# itself says something else, and is not retried.
_REGISTRY_HICCUP = re.compile(
    r"No matching distribution found"
    r"|Could not find a version that satisfies"
    r"|Max retries exceeded"
    r"|Read timed out"
    r"|Connection (?:reset|refused|aborted)"
    r"|RemoteDisconnected"
    r"|HTTP (?:status|error) 5\d\d"
)
REGISTRY_RETRY_PAUSE = 30.0


def install_with_readme(
    project: Path, env: Mapping[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the fenced block after `<!-- install -->` in a render's README.

    The install reaches the live package index. If it fails the way an index hiccup does
    (see `_REGISTRY_HICCUP`), it is run once more after a pause, with a warning that shows the
    first failure; any other failure, or a second one, fails the test with the whole output.
    """
    command = ["bash", "-ec", readme_block((project / "README.md").read_text(), "install")]
    first = _execute(command, project, env=env, timeout=timeout)
    if first.returncode == 0:
        return first
    output = first.stdout + first.stderr
    hiccup = _REGISTRY_HICCUP.search(output)
    if hiccup is None:
        _fail_with_output(command, project, first)
    warnings.warn(
        f"the install in {project.name} failed on the package index ({hiccup.group(0)!r}); "
        f"retrying once in {REGISTRY_RETRY_PAUSE:.0f} s. Its output ended:\n{output[-3000:]}",
        stacklevel=2,
    )
    time.sleep(REGISTRY_RETRY_PAUSE)
    return run(command, project, env=env, timeout=timeout)


def run_failing(
    command: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command that must fail; return its output for the test to inspect."""
    completed = _execute(command, cwd, env=env)
    assert completed.returncode != 0, f"`{' '.join(command)}` succeeded:\n{completed.stdout}"
    return completed


def tool(name: str) -> str:
    """A command installed by the template's dev dependencies, next to this interpreter."""
    candidate = Path(sys.executable).with_name(name)
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, f"{name} is missing: run `uv sync` in the template repository"
    return found


def actionlint(workflow: Path) -> None:
    """Lint a GitHub Actions workflow; shellcheck is passed so `run:` scripts are checked."""
    run(
        [tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), str(workflow)],
        workflow.parent,
    )


def check_schema(schema: str, path: Path) -> None:
    """Validate a file against one of check-jsonschema's vendored schemas."""
    run([tool("check-jsonschema"), "--builtin-schema", schema, str(path)], path.parent)


def uv() -> str:
    """The uv that the template's own environment installed."""
    candidate = Path(sys.executable).with_name("uv")
    return str(candidate) if candidate.exists() else "uv"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"nothing served {url} within {timeout} s")


@dataclass
class Served:
    base_url: str
    log: str = ""


@contextlib.contextmanager
def serve(
    project: Path, env: Mapping[str, str], args: Sequence[str] = (), *, timeout: float = 60
) -> Iterator[Served]:
    """Serve a render with `fastapi run` (and `args`, e.g. `--workers 4`) on a free loopback
    port, waiting up to `timeout` seconds for it to answer; stop it on the way out."""
    port = free_port()
    served = Served(f"http://127.0.0.1:{port}")
    full_env = child_env({"LOG_FORMAT": "json", **env})
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [uv(), "run", "fastapi", "run", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=project,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(f"{served.base_url}/health", server, timeout)
            yield served
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.seek(0)
            served.log = log.read().decode(errors="replace")


def call(
    base: str,
    method: str,
    path: str,
    *,
    json_body: object = None,
    form: dict[str, str] | None = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request with the standard library: (status, lower-cased headers, JSON body)."""
    all_headers = dict(headers or {})
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=all_headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            body = response.read()
            status, response_headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        body = error.read()
        status, response_headers = error.code, error.headers
    headers_out = {key.lower(): value for key, value in response_headers.items()}
    return status, headers_out, json.loads(body) if body else None


def login(base: str, email: str, password: str) -> str:
    """An access token for a registered user of a served jwt render."""
    form = {"username": email, "password": password}
    status, _, tokens = call(base, "POST", "/api/v1/auth/login", form=form)
    assert status == 200, tokens
    token: str = tokens["access_token"]
    return token


def exercise_jwt_api(base: str) -> None:
    """Register, log in, refresh, and create, list and delete items, as a client would."""
    status, headers, body = call(base, "GET", "/health/ready")
    assert (status, body) == (200, {"status": "ok", "database": "ok"})
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    assert float(headers["x-process-time"]) >= 0

    credentials = {"email": "http@example.com", "password": "a long enough password"}
    status, _, user = call(base, "POST", "/api/v1/auth/register", json_body=credentials)
    assert status == 201
    assert isinstance(user, dict)
    assert "hashed_password" not in user
    status, _, _ = call(base, "POST", "/api/v1/auth/register", json_body=credentials)
    assert status == 409

    form = {"username": credentials["email"], "password": credentials["password"]}
    status, _, tokens = call(base, "POST", "/api/v1/auth/login", form=form)
    assert status == 200
    assert isinstance(tokens, dict)
    status, _, _ = call(base, "POST", "/api/v1/auth/login", form={**form, "password": "wrong"})
    assert status == 401

    refresh = {"refresh_token": tokens["refresh_token"]}
    status, _, rotated = call(base, "POST", "/api/v1/auth/refresh", json_body=refresh)
    assert status == 200
    assert isinstance(rotated, dict)
    # A client that lost the answer retries within the grace window and gets the same pair
    # (reuse after it revokes every session: the rendered suite proves that).
    status, _, retried = call(base, "POST", "/api/v1/auth/refresh", json_body=refresh)
    assert (status, retried) == (200, rotated)
    access = rotated["access_token"]

    assert call(base, "GET", "/api/v1/items")[0] == 401
    status, _, me = call(base, "GET", "/api/v1/users/me", token=access)
    assert status == 200
    assert isinstance(me, dict)
    assert me["id"] == user["id"]

    status, _, item = call(base, "POST", "/api/v1/items", json_body={"title": "t"}, token=access)
    assert status == 201
    assert isinstance(item, dict)
    status, _, listing = call(base, "GET", "/api/v1/items?limit=10", token=access)
    assert (status, listing) == (200, {"data": [item], "count": 1})
    assert call(base, "POST", "/api/v1/items", json_body={"title": ""}, token=access)[0] == 422
    assert call(base, "DELETE", f"/api/v1/items/{item['id']}", token=access)[0] == 204
    assert call(base, "GET", f"/api/v1/items/{item['id']}", token=access)[0] == 404


def readme_block(readme: str, marker: str) -> str:
    """The fenced code block that follows `<!-- marker -->` in a rendered README."""
    found = re.search(rf"^<!-- {re.escape(marker)} -->\n```\w*\n(.*?)\n```$", readme, re.S | re.M)
    if found is None:
        pytest.fail(f"the README has no code block after <!-- {marker} -->", pytrace=False)
    return found.group(1)


def tools_environment(tools_dir: Path) -> dict[str, str]:
    """Environment for a README's commands: PATH has the package managers (linked from
    `tools_dir`) and the machine's own Python, but not the template's virtual environment."""
    own_bin = str(Path(sys.executable).parent)
    path = [str(tools_dir)] + [
        entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry != own_bin
    ]
    return {"PATH": os.pathsep.join(path)}


def link_tools(tools_dir: Path) -> Path:
    """Put links to the package managers of the template's environment in `tools_dir`."""
    tools_dir.mkdir(parents=True, exist_ok=True)
    own_bin = Path(sys.executable).parent
    for name in PACKAGE_MANAGER_TOOLS:
        assert (own_bin / name).exists(), f"{name} is missing: run `uv sync` in the template"
        link = tools_dir / name
        if not link.exists():
            link.symlink_to(own_bin / name)
    return tools_dir


@contextlib.contextmanager
def serving(
    command: str, cwd: Path, *, env: Mapping[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a shell command that serves (and its children, e.g. a reloader) until the block
    ends, then stop the whole process group."""
    full_env = child_env(env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["bash", "-ec", command],
            cwd=cwd,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with `start_new_session=True` and everything it started (the
    shell, the package manager, a reloader, the server), and wait until all are gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            process.poll()  # reap the shell, so that only live processes remain in the group
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


MIN_RENDERED_TESTS = 80


def install_and_test_with_readme(
    project: Path, tools_dir: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Install a render and run its suite with the commands its own README gives (the
    fenced blocks after `<!-- install -->` and `<!-- test -->`), so that the README and
    the tests cannot drift apart. Fails unless the suite passes with its coverage gate."""
    readme = (project / "README.md").read_text()
    full_env = {**tools_environment(tools_dir), **(env or {})}
    install_with_readme(project, full_env)
    result = run(["bash", "-ec", readme_block(readme, "test")], project, env=full_env)
    last_line = result.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", last_line)
    assert passed, result.stdout
    # The smallest suite (auth none) has 88 tests: a suite that ran far fewer lost some
    # (a test path or a marker gone wrong), even if what ran passed.
    assert int(passed.group(1)) >= MIN_RENDERED_TESTS, result.stdout
    assert "failed" not in last_line, result.stdout
    gate = re.search(r"Required test coverage of 90(\.0)?% reached", result.stdout)
    assert gate, result.stdout
    return result
