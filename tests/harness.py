"""Helpers for the template's tests: render with Copier, run the render's own tools, serve it."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import copier
import pytest

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]

# A developer's own Copier settings must not leak into the renders.
_SETTINGS = TEMPLATE_ROOT / "tests" / "copier-settings.yml"
os.environ["COPIER_SETTINGS_PATH"] = str(_SETTINGS)

DEFAULT_ANSWERS: dict[str, object] = {"project_name": "My Service"}


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
