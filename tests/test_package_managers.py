"""`package_manager`: uv, Poetry, Pipenv and pip declare the same dependencies, each in its own
files, and each render's README commands install and serve it (tests/test_matrix.py runs
its test command, on every variant).

The slow layer follows the rendered README itself: it runs the code blocks after the
`<!-- install -->` and `<!-- run -->` markers, so that the README and what is proven cannot
drift apart. The package managers come from the template's own dev
dependencies; their download caches are the user's (shared by every render and run).
"""

import re
import shutil
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import copier
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pytest_copie.plugin import Copie

from harness import (
    PACKAGE_MANAGERS,
    RUN_PREFIX,
    TEMPLATE_ROOT,
    call,
    free_port,
    install_with_readme,
    readme_block,
    render,
    run,
    serving,
    tools_environment,
    wait_until_serving,
)

# Files that only some managers render, and the lock files the first install writes.
MANAGER_FILES = {
    "uv": {"pyproject.toml"},
    "poetry": {"pyproject.toml", "poetry.toml"},
    "pipenv": {"pyproject.toml", "Pipfile"},
    "pip": {"pyproject.toml"},
}
LOCK_FILES = {
    "uv": {"uv.lock"},
    "poetry": {"poetry.lock"},
    "pipenv": {"Pipfile.lock"},
    "pip": {"requirements.txt", "requirements-dev.txt"},
}
DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg", "mysql": "asyncmy"}

# A requirement, normalized: (name, extras, specifier).
Normalized = tuple[str, tuple[str, ...], str]


def _render(copie: Copie, **answers: object) -> Path:
    result = copie.copy(extra_answers=answers)
    assert result.exit_code == 0, result.exception
    assert result.project_dir is not None
    return result.project_dir


@pytest.fixture(scope="module", params=PACKAGE_MANAGERS)
def manager_project(request: pytest.FixtureRequest, copie_session: Copie) -> tuple[str, Path]:
    return request.param, _render(copie_session, package_manager=request.param)


def _normalize(requirement: str) -> Normalized:
    parsed = Requirement(requirement)
    return (
        canonicalize_name(parsed.name),
        tuple(sorted(parsed.extras)),
        str(parsed.specifier),
    )


def _pipfile_requirement(name: str, spec: str | dict[str, Any]) -> str:
    if isinstance(spec, str):
        return f"{name}{spec}"
    extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
    return f"{name}{extras}{spec['version']}"


def declared_dependencies(manager: str, project: Path) -> tuple[set[Normalized], set[Normalized]]:
    """(runtime, dev) requirements, as the manager's own files declare them."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    if manager == "pipenv":
        pipfile = tomllib.loads((project / "Pipfile").read_text())
        itself = pyproject["project"]["name"]
        runtime = [
            _pipfile_requirement(name, spec)
            for name, spec in pipfile["packages"].items()
            if name != itself
        ]
        dev = [_pipfile_requirement(name, spec) for name, spec in pipfile["dev-packages"].items()]
    else:
        runtime = pyproject["project"]["dependencies"]
        if manager == "pip":
            dev = pyproject["project"]["optional-dependencies"]["dev"]
        else:
            dev = pyproject["dependency-groups"]["dev"]
    return {_normalize(item) for item in runtime}, {_normalize(item) for item in dev}


# ------------------------------------------------------------------ render ---


def test_each_manager_renders_its_own_files_and_no_lock(manager_project: tuple[str, Path]) -> None:
    manager, project = manager_project
    for name in MANAGER_FILES[manager]:
        assert (project / name).is_file(), name
    others = set().union(*MANAGER_FILES.values()) - MANAGER_FILES[manager]
    for name in others:
        assert not (project / name).exists(), f"{manager} renders {name}"
    # Lock files are written by the first install and belong to the user from then on.
    for name in set().union(*LOCK_FILES.values()):
        assert not (project / name).exists(), f"the template renders {name}"


def test_every_manager_declares_the_same_dependencies(copie_session: Copie) -> None:
    for database, driver in DRIVERS.items():
        declared = {
            manager: declared_dependencies(
                manager, _render(copie_session, package_manager=manager, database=database)
            )
            for manager in PACKAGE_MANAGERS
        }
        runtime, dev = declared["uv"]
        assert driver in {name for name, _, _ in runtime}, (database, runtime)
        assert {"pytest", "mypy", "ruff"} <= {name for name, _, _ in dev}, dev
        for manager, (manager_runtime, manager_dev) in declared.items():
            assert manager_runtime == runtime, (database, manager)
            assert manager_dev == dev, (database, manager)


def test_pyproject_follows_each_tools_conventions(manager_project: tuple[str, Path]) -> None:
    manager, project = manager_project
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "my-service"
    assert pyproject["tool"]["fastapi"]["entrypoint"] == "my_service.main:app"
    backend = pyproject["build-system"]["build-backend"]
    tool = pyproject["tool"]
    if manager == "poetry":
        assert backend == "poetry.core.masonry.api"
        assert tool["poetry"]["packages"] == [{"include": "my_service", "from": "src"}]
        assert tool["poetry"]["requires-poetry"].startswith(">=2.2")
        # PyPI's simple index, primary: Poetry's implicit source needs PyPI's JSON API.
        assert tool["poetry"]["source"] == [
            {"name": "pypi-simple", "url": "https://pypi.org/simple/", "priority": "primary"}
        ]
        poetry_toml = tomllib.loads((project / "poetry.toml").read_text())
        assert poetry_toml == {"virtualenvs": {"in-project": True}}
    else:
        assert backend == "hatchling.build"
        assert tool["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/my_service"]
        assert "poetry" not in tool
    if manager == "pipenv":
        # The Pipfile declares the dependencies; pyproject.toml has metadata and settings.
        assert "dependencies" not in pyproject["project"]
        pipfile = tomllib.loads((project / "Pipfile").read_text())
        assert pipfile["packages"]["my-service"] == {"path": ".", "editable": True}
        assert pipfile["requires"] == {"python_version": "3.11"}
        assert [source["url"] for source in pipfile["source"]] == ["https://pypi.org/simple"]
    if manager == "pip":
        assert tool["pip-tools"] == {
            "strip-extras": True,
            "emit-index-url": False,
            "emit-find-links": False,
        }
    else:
        assert "optional-dependencies" not in pyproject["project"]
    assert ("dependency-groups" in pyproject) == (manager in {"uv", "poetry"})


def test_the_readme_and_the_message_after_copy_give_the_same_commands(
    manager_project: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manager, project = manager_project
    readme = (project / "README.md").read_text()
    install, run_, test = (readme_block(readme, m) for m in ("install", "run", "test"))
    prefix = RUN_PREFIX[manager]
    assert run_.endswith(f"{prefix}alembic upgrade head && {prefix}fastapi dev"), run_
    assert test.endswith(f"{prefix}pytest --cov"), test
    if manager == "pipenv":
        assert "PIPENV_VENV_IN_PROJECT=1" in install
    # The table of everyday commands speaks the same tool.
    assert f"| tests | `{prefix}pytest` |" in readme
    assert f"| tests with the coverage gate, as CI runs them | `{prefix}pytest --cov` |" in readme
    assert f"| apply migrations | `{prefix}alembic upgrade head` |" in readme
    lock = sorted(LOCK_FILES[manager])[-1]
    assert f"`{lock}`" in readme

    # Copier prints the message after copy on stderr.
    copier.run_copy(
        str(TEMPLATE_ROOT),
        str(tmp_path / "message"),
        data={"package_manager": manager},
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
    )
    message = capsys.readouterr().err
    for line in [*install.splitlines(), *run_.splitlines(), *test.splitlines()]:
        assert line in message, (line, message)


def test_no_jinja_residue_in_the_files_that_vary_by_manager(
    manager_project: tuple[str, Path],
) -> None:
    manager, project = manager_project
    varying = [
        *MANAGER_FILES[manager],
        "README.md",
        "Dockerfile",
        ".dockerignore",
        ".github/workflows/ci.yml",
    ]
    for name in varying:
        text = (project / name).read_text()
        # GitHub Actions expressions (${{ ... }}) are the only legitimate double braces.
        stripped = re.sub(r"\$\{\{.*?\}\}", "", text)
        for marker in ("{{", "{%", "%}", "{#"):
            assert marker not in stripped, f"{marker} left in {name}"
        assert "\n\n\n" not in text, f"a blank-line cluster is left in {name}"
        assert not text.startswith("\n"), f"{name} starts with a blank line"


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
UPDATE_MARKER = "A line that the next template version adds."


@pytest.fixture(scope="module")
def template_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git copy of the working tree with two commits: an update needs the old version's
    commit, which a render of uncommitted changes does not have."""
    copy = tmp_path_factory.mktemp("template")
    files = run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], TEMPLATE_ROOT
    ).stdout.split("\0")
    for name in filter(None, files):
        source = TEMPLATE_ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    run([*GIT, "init", "-q"], copy)
    run([*GIT, "add", "-A"], copy)
    run([*GIT, "commit", "-qm", "v1"], copy)
    return copy


@pytest.mark.parametrize("manager", PACKAGE_MANAGERS)
def test_copier_update_keeps_the_users_lock_files(
    manager: str, template_versions: Path, tmp_path: Path
) -> None:
    template = tmp_path / "template"
    run(["git", "clone", "-q", str(template_versions), str(template)], tmp_path)
    project = tmp_path / "my-service"
    copier.run_copy(
        str(template),
        str(project),
        data={"project_name": "My Service", "package_manager": manager},
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    locks = {name: f"# {name}: the user's own pins\n" for name in LOCK_FILES[manager]}
    for name, text in locks.items():
        (project / name).write_text(text)
    run([*GIT, "init", "-q"], project)
    run([*GIT, "add", "-A"], project)
    run([*GIT, "commit", "-qm", "render, then lock"], project)

    readme = template / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + f"\n{UPDATE_MARKER}\n")
    run([*GIT, "commit", "-qam", "v2"], template)
    copier.run_update(str(project), defaults=True, overwrite=True, unsafe=True, quiet=True)

    assert UPDATE_MARKER in (project / "README.md").read_text(), "the update did not run"
    for name, text in locks.items():
        assert (project / name).read_text() == text, f"copier update rewrote {name}"


# ------------------------------------------------------------------ slow ---


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        timings[step] = round(time.monotonic() - start, 1)


def _on_port(run_command: str, port: int) -> str:
    """The README's run command, served on a free loopback port instead of :8000."""
    served, count = re.subn(
        r"\bfastapi (dev|run)\b", rf"fastapi \1 --host 127.0.0.1 --port {port}", run_command
    )
    assert count == 1, run_command
    return served


def _check_requirements_files(project: Path) -> None:
    """pip-compile's output: every line pinned, the dev file a superset with the same pins."""
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        text = (project / name).read_text()
        assert "# This file is autogenerated by pip-compile" in text, text[:300]
        assert f"--output-file={name}" in text, text[:300]
        assert "--extra-index-url" not in text
        assert "--find-links" not in text
        requirements = [
            Requirement(line.split("#")[0].strip())
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        for requirement in requirements:
            assert str(requirement.specifier).startswith("=="), requirement
        pins[name] = {canonicalize_name(r.name): str(r.specifier) for r in requirements}
    runtime, dev = pins["requirements.txt"], pins["requirements-dev.txt"]
    assert {"fastapi", "sqlmodel", "aiosqlite"} <= set(runtime)
    assert "pytest" not in runtime
    assert {name: dev[name] for name in runtime} == runtime
    assert {"pytest", "mypy", "ruff"} <= set(dev)


@pytest.mark.slow
@pytest.mark.parametrize("manager", PACKAGE_MANAGERS)
def test_the_readme_commands_install_and_serve_the_service(
    manager: str, tmp_path: Path, package_manager_tools: Path, record_property: Any
) -> None:
    timings: dict[str, float] = {}
    env = tools_environment(package_manager_tools)
    with _timed(timings, "render"):
        project = render(tmp_path / "my-service", package_manager=manager)
    readme = (project / "README.md").read_text()

    with _timed(timings, "install"):
        install_with_readme(project, env)
    for name in LOCK_FILES[manager]:
        assert (project / name).is_file(), f"the first install did not write {name}"
    assert (project / ".venv").is_dir(), "the environment must live in the project's .venv"
    if manager == "pip":
        _check_requirements_files(project)

    # The README's test block: tests/test_matrix.py runs it on this very render (the
    # defaults, with each manager), and on every other variant.

    port = free_port()
    log_path = tmp_path / "server.log"
    with (
        _timed(timings, "serve"),
        serving(
            _on_port(readme_block(readme, "run"), port), project, env=env, log_path=log_path
        ) as server,
    ):
        try:
            wait_until_serving(f"http://127.0.0.1:{port}/health", server, timeout=120)
        except pytest.fail.Exception:
            pytest.fail(
                f"{manager}: the README's run command did not serve:\n"
                f"{log_path.read_text()[-5000:]}",
                pytrace=False,
            )
        base = f"http://127.0.0.1:{port}"
        assert call(base, "GET", "/health")[::2] == (200, {"status": "ok"})
        assert call(base, "GET", "/health/ready")[::2] == (200, {"status": "ok", "database": "ok"})
    record_property("package_manager_timings", {"manager": manager, **timings})
