"""Helpers for the template's tests: render with Copier, run the render's own tools, serve it."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

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


def render(destination: Path, **answers: object) -> Path:
    """Render the working tree of the template (uncommitted changes included) non-interactively."""
    copier.run_copy(
        str(TEMPLATE_ROOT),
        str(destination),
        data={**DEFAULT_ANSWERS, **answers},
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    return destination


def run(
    command: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command in a render; on failure, fail the test with the command's whole output."""
    full_env = {**os.environ, **(env or {})}
    # The render's tools must use the render's own environment, not the template's.
    full_env.pop("VIRTUAL_ENV", None)
    completed = subprocess.run(
        list(command),
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` exited {completed.returncode} in {cwd}\n"
            f"--- stdout ---\n{completed.stdout[-20000:]}\n"
            f"--- stderr ---\n{completed.stderr[-20000:]}",
            pytrace=False,
        )
    return completed


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
    full_env = {**os.environ, **env}
    full_env.pop("VIRTUAL_ENV", None)
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
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
