"""Deployment files: the Docker files (`docker`) and the GitHub Actions workflow (`ci`).

Render-only: the files are linted with the real tools from the template's dev environment
(hadolint, actionlint with shellcheck, check-jsonschema's vendored Compose and workflow
schemas). No image is built, since there is no Docker engine in the test environment.
The Dockerfile and the workflow install with the chosen package manager, so their checks
run once per manager; the rest runs on the default render. One slow test runs the script
that compose's PostgreSQL runs at its first start against a real throwaway server.
"""

import fnmatch
import functools
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pytest_copie.plugin import Copie
from servers import DATABASE as SUPERUSER_DATABASE
from servers import PASSWORD as SUPERUSER_PASSWORD
from servers import USER as SUPERUSER
from servers import DatabaseServer, _postgres_bindir

from harness import (
    PACKAGE_MANAGERS,
    RUN_PREFIX,
    actionlint,
    check_schema,
    child_env,
    run,
    tool,
)

DOCKER_FILES = ("Dockerfile", ".dockerignore", "compose.yaml")
WORKFLOW = Path(".github/workflows/ci.yml")
# Weekly: is a newer template version out? (tests/test_update.py runs its steps.)
UPDATE_WORKFLOW = Path(".github/workflows/template-update.yml")
# The answers file records `docker: false` and `ci: none` by design; nothing else may mention them.
ANSWERS_FILE = ".copier-answers.yml"

# What each package manager's builder stage copies first (its lock file among them), the
# commands that install the service, and the cache the installs mount.
DOCKER_LOCK_COPY = {
    "uv": "pyproject.toml uv.lock* ./",
    "poetry": "pyproject.toml poetry.lock poetry.toml ./",
    "pipenv": "Pipfile Pipfile.lock pyproject.toml README.md ./",
    "pip": "requirements.txt ./",
}
DOCKER_INSTALLS = {
    "uv": [
        "uv sync --locked --no-dev --no-install-project",
        "uv sync --locked --no-dev --no-editable",
    ],
    "poetry": [
        "/opt/poetry/bin/poetry install --only main --no-root",
        "/opt/poetry/bin/poetry build --format wheel"
        " && /app/.venv/bin/pip install --no-cache-dir --no-deps dist/*.whl",
    ],
    "pipenv": ["pipenv install --deploy"],
    "pip": [
        "/app/.venv/bin/pip install -r requirements.txt",
        "/app/.venv/bin/pip install --no-deps .",
    ],
}
DOCKER_CACHE = {
    "uv": "/root/.cache/uv",
    "poetry": "/root/.cache/pypoetry",
    "pipenv": "/root/.cache",
    "pip": "/root/.cache/pip",
}
# The file that pins what the image installs; the build context keeps it and what the
# builder copies besides.
DOCKER_LOCK = {
    "uv": "uv.lock",
    "poetry": "poetry.lock",
    "pipenv": "Pipfile.lock",
    "pip": "requirements.txt",
}
DOCKER_INPUTS = {
    "uv": ("uv.lock",),
    "poetry": ("poetry.lock", "poetry.toml"),
    "pipenv": ("Pipfile", "Pipfile.lock"),
    "pip": ("requirements.txt",),
}
# The CI job's setup action (and its inputs), then its install commands.
WORKFLOW_SETUP = {
    "uv": ("astral-sh/setup-uv", {"python-version": "3.11", "enable-cache": True}),
    "poetry": ("actions/setup-python", {"python-version": "3.11", "cache": "poetry"}),
    "pipenv": ("actions/setup-python", {"python-version": "3.11", "cache": "pipenv"}),
    "pip": (
        "actions/setup-python",
        {"python-version": "3.11", "cache": "pip", "cache-dependency-path": "requirements-dev.txt"},
    ),
}
WORKFLOW_INSTALL = {
    "uv": ["uv sync --locked"],
    "poetry": ['pipx install "poetry>=2.2,<3"', "poetry check --lock", "poetry install"],
    "pipenv": ["python -m pip install pipenv", "pipenv verify", "pipenv install --dev --deploy"],
    "pip": ["python -m pip install -r requirements-dev.txt -e ."],
}


def _render(copie: Copie, **answers: object) -> Path:
    result = copie.copy(extra_answers=answers)
    assert result.exit_code == 0, result.exception
    assert result.project_dir is not None
    return result.project_dir


@pytest.fixture(scope="module")
def docker_and_ci(copie_session: Copie) -> Path:
    return _render(copie_session, docker=True, ci="github")


@pytest.fixture(scope="module", params=PACKAGE_MANAGERS)
def each_manager(request: pytest.FixtureRequest, copie_session: Copie) -> tuple[str, Path]:
    """(package manager, render with the Docker files and the workflow) for every manager."""
    manager = request.param
    return manager, _render(copie_session, docker=True, ci="github", package_manager=manager)


@pytest.fixture(scope="module")
def ci_without_docker(copie_session: Copie) -> Path:
    return _render(copie_session, docker=False, ci="github")


@pytest.fixture(scope="module")
def docker_without_ci(copie_session: Copie) -> Path:
    return _render(copie_session, docker=True, ci="none")


def _hadolint(dockerfile: Path) -> None:
    # Any finding, down to "info", fails.
    run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", str(dockerfile)],
        dockerfile.parent,
    )


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    pairs = []
    for line in logical.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _text_files(project: Path) -> list[Path]:
    return [
        path
        for path in sorted(project.rglob("*"))
        if path.is_file() and path.name != ANSWERS_FILE and ".git" not in path.parts
    ]


# ------------------------------------------------------------------ docker=true ---


def test_docker_renders_the_dockerfile_dockerignore_and_compose(
    each_manager: tuple[str, Path],
) -> None:
    _, project = each_manager
    for name in DOCKER_FILES:
        assert (project / name).is_file(), name


def test_dockerfile_passes_hadolint(each_manager: tuple[str, Path]) -> None:
    _, project = each_manager
    _hadolint(project / "Dockerfile")


def test_dockerfile_installs_the_lock_and_runs_unprivileged(
    each_manager: tuple[str, Path],
) -> None:
    manager, project = each_manager
    steps = _instructions(project / "Dockerfile")
    stages = [args for keyword, args in steps if keyword == "FROM"]
    assert stages[-1] == "python:3.11-slim AS runtime", stages
    assert any(stage.startswith("python:3.11-slim AS builder") for stage in stages), stages

    # The lock (and what declares it) goes in before anything that changes more often.
    copies = [args for keyword, args in steps if keyword == "COPY"]
    assert copies.index(DOCKER_LOCK_COPY[manager]) < copies.index("src ./src"), copies
    runs = [args for keyword, args in steps if keyword == "RUN"]
    mount = f"--mount=type=cache,target={DOCKER_CACHE[manager]}"
    commands = [" ".join(args.removeprefix(mount).split()) for args in runs]
    for install in DOCKER_INSTALLS[manager]:
        assert install in commands, (install, commands)
    # Dependency installs reuse the download cache between builds.
    first_install = runs[commands.index(DOCKER_INSTALLS[manager][0])]
    assert first_install.startswith(mount), first_install
    assert ("COPY", "--from=builder /app/.venv /app/.venv") in steps
    if manager == "pipenv":
        # The Pipfile installs the service in editable mode: the environment needs its source.
        assert ("COPY", "--from=builder /app/src ./src") in steps

    users = [args for keyword, args in steps if keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"0", "root"}, users
    assert ("EXPOSE", "8000") in steps

    healthchecks = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1, healthchecks
    assert "urllib.request" in healthchecks[0], healthchecks
    assert "http://127.0.0.1:8000/health'" in healthchecks[0], healthchecks
    assert "curl" not in healthchecks[0], healthchecks

    cmd = [args for keyword, args in steps if keyword == "CMD"][-1]
    assert cmd == '["fastapi", "run", "--host", "0.0.0.0", "--port", "8000"]', cmd
    env = " ".join(args for keyword, args in steps if keyword == "ENV")
    assert "WEB_CONCURRENCY=" in env, env


def test_sqlite_file_lives_in_a_directory_the_app_user_owns(docker_and_ci: Path) -> None:
    steps = _instructions(docker_and_ci / "Dockerfile")
    env = " ".join(args for keyword, args in steps if keyword == "ENV")
    url = re.search(r"DATABASE_URL=(\S+)", env)
    assert url, env
    assert url.group(1) == "sqlite+aiosqlite:////app/data/my_service.db", url.group(1)
    user = [args for keyword, args in steps if keyword == "USER"][-1]
    assert ("RUN", f"mkdir /app/data && chown {user} /app/data") in steps, steps


def test_dockerignore_keeps_secrets_and_local_state_out_but_not_the_build_inputs(
    each_manager: tuple[str, Path],
) -> None:
    manager, project = each_manager
    patterns = [
        line.strip().rstrip("/")
        for line in (project / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)

    for path in (
        ".venv",
        ".env",
        "my_service.db",
        "my_service.db-wal",
        ".git",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        "src/my_service/__pycache__",
        "src/my_service/main.cpython-311.pyc",
    ):
        assert ignored(path), f"{path} would be sent to the Docker build"
    # What the Dockerfile copies must stay in the build context.
    inputs = ("pyproject.toml", "README.md", "src", "alembic.ini", "migrations")
    for path in inputs + DOCKER_INPUTS[manager]:
        assert not ignored(path), f"{path} is excluded but the Dockerfile needs it"


def test_compose_file_matches_the_compose_spec(docker_and_ci: Path) -> None:
    check_schema("vendor.compose-spec", docker_and_ci / "compose.yaml")


def test_compose_runs_migrations_then_serves_with_data_in_a_volume(docker_and_ci: Path) -> None:
    compose = yaml.safe_load((docker_and_ci / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"migrate", "app"}, services
    assert set(compose["volumes"]) == {"data"}

    for name, service in services.items():
        assert service["build"] == ".", name
        assert service["env_file"] == ".env", name
        assert "data:/app/data" in service["volumes"], name
        url = service["environment"]["DATABASE_URL"]
        assert url == "sqlite+aiosqlite:////app/data/my_service.db", (name, url)

    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    app = services["app"]
    assert app["ports"] == ["8000:8000"]
    assert app["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    healthcheck = app["healthcheck"]
    assert healthcheck["test"][0] == "CMD", healthcheck
    assert "http://127.0.0.1:8000/health'" in healthcheck["test"][-1], healthcheck
    for key in ("interval", "timeout", "retries"):
        assert key in healthcheck, key


def _seconds(duration: str) -> int:
    """A compose duration such as "40s" or "1m30s", in seconds."""
    parts = re.fullmatch(r"(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts is not None, duration
    hours, minutes, seconds = (int(part or 0) for part in parts.groups())
    return (hours * 60 + minutes) * 60 + seconds


def test_compose_waits_for_the_job_worker_longer_than_its_shutdown_grace(copie: Copie) -> None:
    """On SIGTERM the worker gives its jobs in flight WORKER_SHUTDOWN_GRACE_SECONDS; compose
    must not SIGKILL it before then, with room to cancel what is left and exit."""
    project = _render(copie, redis=True, docker=True)
    check_schema("vendor.compose-spec", project / "compose.yaml")
    worker = yaml.safe_load((project / "compose.yaml").read_text())["services"]["worker"]
    assert worker["command"] == ["python", "-m", "my_service", "worker"]
    example = (project / ".env.example").read_text()
    documented = re.search(r"^# WORKER_SHUTDOWN_GRACE_SECONDS=(\d+)$", example, re.MULTILINE)
    assert documented is not None, "WORKER_SHUTDOWN_GRACE_SECONDS is not in .env.example"
    config = (project / "src/my_service/core/config.py").read_text()
    default = re.search(r"worker_shutdown_grace_seconds: int = Field\(default=(\d+),", config)
    assert default is not None
    grace = int(default.group(1))
    assert int(documented.group(1)) == grace
    assert _seconds(worker["stop_grace_period"]) >= grace + 5, worker


def test_readme_documents_docker(each_manager: tuple[str, Path]) -> None:
    manager, project = each_manager
    readme = (project / "README.md").read_text()
    assert "\n## Docker\n" in readme
    assert f"dependencies pinned in\n`{DOCKER_LOCK[manager]}` (commit it first" in readme
    for command in (
        "docker compose up --build",
        "docker compose run --rm migrate",
        "docker build -t my-service .",
        "-e SECRET_KEY",
    ):
        assert command in readme, command


def test_docker_false_leaves_no_docker_files_and_no_mention(ci_without_docker: Path) -> None:
    for name in DOCKER_FILES:
        assert not (ci_without_docker / name).exists(), name
    mention = re.compile(r"docker|\bcompose\b", re.IGNORECASE)
    for path in _text_files(ci_without_docker):
        found = mention.search(path.read_text())
        assert found is None, f"{path.relative_to(ci_without_docker)} mentions {found.group()!r}"


# ------------------------------------------------------------------ ci=github ---


def test_ci_github_renders_a_workflow_that_passesactionlint(
    each_manager: tuple[str, Path],
) -> None:
    _, project = each_manager
    assert (project / WORKFLOW).is_file()
    actionlint(project / WORKFLOW)


def test_ci_workflow_matches_the_github_workflow_schema(each_manager: tuple[str, Path]) -> None:
    _, project = each_manager
    check_schema("vendor.github-workflows", project / WORKFLOW)


def test_the_template_update_workflow_passes_actionlint_and_the_schema(
    docker_and_ci: Path,
) -> None:
    """The same file for every answer: checked once, on the default render."""
    workflow = docker_and_ci / UPDATE_WORKFLOW
    actionlint(workflow)
    check_schema("vendor.github-workflows", workflow)
    loaded = yaml.safe_load(workflow.read_text())
    assert loaded["permissions"] == {"contents": "read", "issues": "write"}
    assert [trigger["cron"] for trigger in loaded[True]["schedule"]] == ["23 6 * * 1"]
    assert "workflow_dispatch" in loaded[True]


def test_ci_workflow_runs_the_readme_checks_on_the_chosen_python(
    each_manager: tuple[str, Path],
) -> None:
    manager, project = each_manager
    workflow = yaml.safe_load((project / WORKFLOW).read_text())
    # PyYAML reads the bare key `on` as the boolean True.
    triggers = workflow[True]
    assert set(triggers) == {"push", "pull_request"}, triggers

    steps = workflow["jobs"]["test"]["steps"]
    uses = [step["uses"] for step in steps if "uses" in step]
    action, inputs = WORKFLOW_SETUP[manager]
    assert {use.split("@")[0] for use in uses} == {"actions/checkout", action}
    for use in uses:
        assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", use), f"{use} is not pinned to a major version"
    setup = next(step for step in steps if step.get("uses", "").startswith(f"{action}@"))
    assert setup["with"] == inputs

    commands = [
        line.strip() for step in steps for line in step.get("run", "").splitlines() if line.strip()
    ]
    run = RUN_PREFIX[manager]
    assert commands == [
        *WORKFLOW_INSTALL[manager],
        f"{run}ruff format --check .",
        f"{run}ruff check .",
        f"{run}mypy",
        f"{run}alembic upgrade head",
        f"{run}alembic check",
        f"{run}pytest --cov",
        *_served_commands(run),
        'cat "$RUNNER_TEMP/server.log"',
    ]

    migrations = next(step for step in steps if "alembic upgrade head" in step.get("run", ""))
    assert len(migrations["env"]["SECRET_KEY"]) >= 32
    assert "ci-only" in migrations["env"]["SECRET_KEY"]
    assert migrations["env"]["DATABASE_URL"].startswith("sqlite+aiosqlite:///${{ runner.temp }}/")


def _served_commands(run: str, *, api_key: bool = False) -> list[str]:
    """The served-app step: migrate, an API key (api_key style), serve, wait, check."""
    url = "http://127.0.0.1:8000"
    create_key = f'API_KEY="$({run}python -m my_service api-keys create ci --client ci)"'
    key = [create_key, "export API_KEY"] if api_key else []
    return [
        f"{run}alembic upgrade head",
        *key,
        f'{run}fastapi run --workers 4 --host 127.0.0.1 --port 8000 > "$RUNNER_TEMP/server.log"'
        " 2>&1 &",
        f"curl --silent --show-error --fail --retry 30 --retry-delay 1 --retry-connrefused"
        f" {url}/health",
        f"{run}python -m tests.integration smoke --app-url {url}",
        f"{run}python -m tests.integration concurrency --app-url {url}",
    ]


@pytest.mark.parametrize(
    ("database", "auth"),
    [("sqlite", "api_key"), ("postgresql", "none"), ("mysql", "jwt")],
)
def test_ci_serves_the_app_and_checks_it_with_the_readme_commands(
    copie: Copie, database: str, auth: str
) -> None:
    """CI starts the app with several workers and runs the integration commands against it,
    as the README shows them; the server's log is shown when that step fails."""
    project = _render(copie, database=database, auth=auth, ci="github", package_manager="poetry")
    actionlint(project / WORKFLOW)
    steps = yaml.safe_load((project / WORKFLOW).read_text())["jobs"]["test"]["steps"]
    served = next(step for step in steps if step.get("id") == "served")
    lines = [line.strip() for line in served["run"].splitlines() if line.strip()]
    assert lines == _served_commands("poetry run ", api_key=auth == "api_key")
    assert ("DATABASE_URL" in served["env"]) == (database == "sqlite")
    log = steps[steps.index(served) + 1]
    assert log["if"] == "failure() && steps.served.outcome == 'failure'"
    readme = (project / "README.md").read_text()
    for line in lines[-2:]:
        assert line in readme, line


def test_readme_mentions_ci_only_when_it_is_rendered(
    docker_and_ci: Path, docker_without_ci: Path
) -> None:
    assert (
        "GitHub Actions (`.github/workflows/ci.yml`)" in (docker_and_ci / "README.md").read_text()
    )
    assert "## Docker" in (docker_without_ci / "README.md").read_text()


def test_ci_none_leaves_no_github_directory_and_no_mention(docker_without_ci: Path) -> None:
    assert not (docker_without_ci / ".github").exists()
    mention = re.compile(r"github actions|workflow|\.github", re.IGNORECASE)
    for path in _text_files(docker_without_ci):
        found = mention.search(path.read_text())
        assert found is None, f"{path.relative_to(docker_without_ci)} mentions {found.group()!r}"


# ------------------------------------------------------------- python_version ---


def test_image_and_ci_use_the_chosen_python_version(copie: Copie) -> None:
    project = _render(copie, python_version="3.13")
    stages = [args for keyword, args in _instructions(project / "Dockerfile") if keyword == "FROM"]
    assert [stage.split()[0] for stage in stages if stage.startswith("python:")] == [
        "python:3.13-slim",
        "python:3.13-slim",
    ], stages
    workflow = yaml.safe_load((project / WORKFLOW).read_text())
    setup_uv = next(
        step
        for step in workflow["jobs"]["test"]["steps"]
        if step.get("uses", "").startswith("astral-sh/setup-uv")
    )
    assert setup_uv["with"]["python-version"] == "3.13"


# ---------------------------------------------------- the linters really lint ---


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        # hadolint DL3002: the last USER must not be root.
        ("Dockerfile", "\nEXPOSE 8000\n", "\nUSER root\nEXPOSE 8000\n"),
        # actionlint: `runner.tmp` is not a property of the runner context.
        (str(WORKFLOW), "runner.temp", "runner.tmp"),
        # shellcheck through actionlint (SC2086): an unquoted variable.
        (str(WORKFLOW), "run: uv run pytest --cov", "run: uv run pytest --cov $PYTEST_ARGS"),
        # shellcheck through actionlint (SC2086), in the update workflow's script.
        (str(UPDATE_WORKFLOW), 'edit "$number"', "edit $number"),
        # The Compose schema: an unknown service key.
        ("compose.yaml", "    restart: unless-stopped\n", "    restart_policy: always\n"),
    ],
)
def test_linters_reject_a_broken_file(
    docker_and_ci: Path, tmp_path: Path, path: str, old: str, new: str
) -> None:
    """Guards the checks above: each linter, as invoked here, fails on a known mistake."""
    text = (docker_and_ci / path).read_text()
    assert old in text
    broken = tmp_path / Path(path).name
    broken.write_text(text.replace(old, new, 1))
    lint = {
        "Dockerfile": _hadolint,
        "compose.yaml": lambda file: check_schema("vendor.compose-spec", file),
        "ci.yml": actionlint,
        "template-update.yml": actionlint,
    }[broken.name]
    with pytest.raises(pytest.fail.Exception):
        lint(broken)


# ------------------------------------------------------------- server databases ---


@pytest.mark.parametrize(
    ("database", "image", "port"),
    [("postgresql", "postgres:17", 5432), ("mysql", "mariadb:11", 3306)],
)
def test_server_databases_get_a_healthy_db_service_before_migrations(
    copie: Copie, database: str, image: str, port: int
) -> None:
    project = _render(copie, database=database, docker=True, ci="github")
    _hadolint(project / "Dockerfile")
    actionlint(project / WORKFLOW)
    check_schema("vendor.github-workflows", project / WORKFLOW)
    job = yaml.safe_load((project / WORKFLOW).read_text())["jobs"]["test"]
    (service,) = job["services"].values()
    assert service["image"] == image
    assert "--health-cmd" in service["options"]
    assert job["env"]["DATABASE_URL"].startswith(
        {"postgresql": "postgresql+asyncpg://", "mysql": "mysql+asyncmy://"}[database]
    )
    check_schema("vendor.compose-spec", project / "compose.yaml")
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "migrate", "app"}
    assert services["db"]["image"] == image
    assert services["db"]["healthcheck"]["test"]
    assert services["db"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["app"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"}
    }
    for name in ("migrate", "app"):
        environment = services[name]["environment"]
        assert environment["DB_HOST"] == "db"
        assert "DATABASE_URL" not in environment
        assert "volumes" not in services[name]
    assert set(compose["volumes"]) == {"db-data"}
    # The image no longer points at an SQLite file, and has no data directory for one.
    dockerfile = (project / "Dockerfile").read_text()
    assert "sqlite" not in dockerfile.lower()
    assert "/app/data" not in dockerfile
    # The db service reads the same credentials the app does, from .env.
    env = (project / ".env").read_text()
    for variable in ("DB_USER", "DB_PASSWORD", "DB_NAME"):
        assert f"{variable}=" in env
        assert f"${{{variable}}}" in (project / "compose.yaml").read_text()


# ------------------------------------------------ the database's roles in compose ---


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def server_compose(request: pytest.FixtureRequest, copie_session: Copie) -> tuple[str, Path]:
    """(database, render with Docker) for each server database."""
    return request.param, _render(copie_session, database=request.param, docker=True)


def _env_file(project: Path) -> dict[str, str]:
    lines = (project / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_compose_runs_the_service_as_a_role_that_is_not_the_superuser(
    server_compose: tuple[str, Path],
) -> None:
    database, project = server_compose
    check_schema("vendor.compose-spec", project / "compose.yaml")
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    environment = compose["services"]["db"]["environment"]
    superuser_password = "${DB_SUPERUSER_PASSWORD:?set DB_SUPERUSER_PASSWORD in .env}"
    if database == "postgresql":
        # The image's superuser is `postgres`; the init script makes the service's role.
        assert environment["POSTGRES_USER"] == "postgres"
        assert environment["POSTGRES_PASSWORD"] == superuser_password
        assert "POSTGRES_DB" not in environment
        assert {key: environment[key] for key in ("DB_USER", "DB_PASSWORD", "DB_NAME")} == {
            key: f"${{{key}}}" for key in ("DB_USER", "DB_PASSWORD", "DB_NAME")
        }
        (config,) = compose["services"]["db"]["configs"]
        assert config["target"] == "/docker-entrypoint-initdb.d/create-app-role.sh"
        assert config["source"] in compose["configs"]
        healthcheck = " ".join(compose["services"]["db"]["healthcheck"]["test"])
        assert "pg_isready -h 127.0.0.1" in healthcheck  # not ready while init runs
    else:
        # MARIADB_USER is created with rights on MARIADB_DATABASE only; root is separate.
        assert environment["MARIADB_USER"] == "${DB_USER}"
        assert environment["MARIADB_PASSWORD"] == "${DB_PASSWORD}"
        assert environment["MARIADB_ROOT_PASSWORD"] == superuser_password
        assert "MARIADB_RANDOM_ROOT_PASSWORD" not in environment
    # Both passwords are generated into .env, and differ.
    values = _env_file(project)
    assert re.fullmatch(r"[0-9a-f]{32}", values["DB_PASSWORD"])
    assert re.fullmatch(r"[0-9a-f]{32}", values["DB_SUPERUSER_PASSWORD"])
    assert values["DB_SUPERUSER_PASSWORD"] != values["DB_PASSWORD"]
    assert "DB_SUPERUSER_PASSWORD=\n" in (project / ".env.example").read_text()
    # The service itself never reads the superuser's password.
    assert "DB_SUPERUSER_PASSWORD" not in compose["services"]["app"].get("environment", {})


def test_without_docker_there_is_no_superuser_password(copie: Copie) -> None:
    project = _render(copie, database="postgresql", docker=False)
    assert "DB_SUPERUSER_PASSWORD" not in (project / ".env").read_text()
    assert "DB_SUPERUSER_PASSWORD" not in (project / ".env.example").read_text()


def _psql(server: DatabaseServer, user: str, password: str, database: str, sql: str) -> str:
    bindir = _postgres_bindir()
    assert bindir is not None
    command = [str(bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]
    completed = subprocess.run(
        command,
        env=child_env(
            {
                "PGHOST": server.host,
                "PGPORT": str(server.port),
                "PGUSER": user,
                "PGPASSWORD": password,
                "PGDATABASE": database,
            }
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() if completed.returncode == 0 else "ERROR " + completed.stderr


@pytest.mark.slow
def test_the_postgresql_init_script_creates_a_role_that_only_owns_its_database(
    copie: Copie, database_server: Callable[[str], DatabaseServer]
) -> None:
    """The script compose mounts in /docker-entrypoint-initdb.d, run as the image runs it
    (bash, with the db service's environment) against a real server's superuser."""
    server = database_server("postgresql")
    if server.external_url:
        pytest.skip("needs a server whose superuser the tests know (a throwaway one)")
    project = _render(copie, database="postgresql", docker=True)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    config = compose["services"]["db"]["configs"][0]["source"]
    script = compose["configs"][config]["content"].replace("$$", "$")  # compose's escaping
    role, password = "app_role_check", 'it\'s a "secret" with spaces'
    bindir = _postgres_bindir()
    assert bindir is not None
    run(
        ["bash", "-eo", "pipefail", "-c", script],
        project,
        env={
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "POSTGRES_USER": SUPERUSER,
            "POSTGRES_DB": SUPERUSER_DATABASE,
            "PGHOST": server.host,
            "PGPORT": str(server.port),
            "PGPASSWORD": SUPERUSER_PASSWORD,
            "DB_USER": role,
            "DB_PASSWORD": password,
            "DB_NAME": role,
        },
    )
    as_app = functools.partial(_psql, server, role, password, role)
    assert (
        as_app(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        )
        == "f|f|t"
    )
    assert (
        as_app("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
        == role
    )
    # What the service and its migrations need: tables in its own database...
    assert (
        as_app(
            "CREATE TABLE notes (id int); INSERT INTO notes VALUES (1); SELECT count(*) FROM notes"
        )
        == "1"
    )
    # ...and what its test suite needs: databases of its own beside it.
    assert as_app(f"CREATE DATABASE {role}_test_gw0") == ""
    assert as_app(f"DROP DATABASE {role}_test_gw0") == ""
    # Nothing more.
    assert "permission denied to create role" in as_app("CREATE ROLE intruder")
    assert "ERROR" in as_app(f"ALTER ROLE {role} SUPERUSER")
    assert "ERROR" in as_app(f"ALTER DATABASE {SUPERUSER_DATABASE} OWNER TO {role}")
    # The password is the one from the environment, quotes and all: a wrong one is refused.
    assert "password authentication failed" in _psql(server, role, "wrong", role, "SELECT 1")


def test_the_readme_shows_only_this_databases_volume(
    server_compose: tuple[str, Path], docker_and_ci: Path
) -> None:
    database, project = server_compose
    docker = (project / "README.md").read_text().split("\n## Docker\n", 1)[1]
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    assert set(compose["volumes"]) == {"db-data"}
    assert "`db-data` volume" in docker
    assert {"postgresql": "PostgreSQL server", "mysql": "MariaDB server"}[database] in docker
    for sqlite_only in ("/app/data", "SQLite", "-data:", "`data`"):
        assert sqlite_only not in docker, sqlite_only
    assert "-e DB_HOST -e DB_USER -e DB_PASSWORD -e DB_NAME my-service" in docker
    assert "DB_SUPERUSER_PASSWORD" in docker
    # The SQLite render, for contrast, shows its own.
    sqlite = (docker_and_ci / "README.md").read_text().split("\n## Docker\n", 1)[1]
    assert "-v my-service-data:/app/data" in sqlite
    assert "db-data" not in sqlite
    assert "DB_SUPERUSER_PASSWORD" not in sqlite
