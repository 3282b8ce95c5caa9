"""`copier update`, proven on template versions built inside the test, and on releases.

Most tests never rely on tags in this clone (CI uses a fresh clone of main). They copy the
template into a temporary git repository, commit and tag it `1.0.0`, commit a template
fix and tag it `1.1.0`, and then render, edit, commit and update projects like a user.

The release checks at the end use the real released commits from this repository's
history (RELEASED): their migration revisions never change, and a service rendered from
one updates to the working tree with its data. A clone without that history skips them,
and fails under CI=true.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from copier.errors import TaskError
from servers import DatabaseServer

from harness import TEMPLATE_ROOT, run, uv

OLD, NEW, PATCH = "1.0.0", "1.1.0", "1.1.1"
# The template's own files; everything else in this repository is not part of a version.
TEMPLATE_FILES = ["copier.yml", "template", "copier_migrations", "includes"]

# The template fix that 1.1.0 ships, applied to the copied template.
MIDDLEWARE = Path("template/src/{{package_name}}/core/middleware.py.jinja")
OLD_LIMIT, NEW_LIMIT = "{1,128}", "{1,200}"
README = Path("template/README.md.jinja")
README_OLD = 'Generated from a Copier template; see "Updating from the template" below.'
README_NEW = 'Generated from the Copier template; see "Updating from the template" below.'


def git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd).stdout


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{variable}_NAME", "Template Tests")
        monkeypatch.setenv(f"{variable}_EMAIL", "tests@example.com")


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This template as three versions: 1.0.0, 1.1.0 (a fix and a migration) and 1.1.1."""
    repo = tmp_path_factory.mktemp("template-versions")
    for name in TEMPLATE_FILES:
        source = TEMPLATE_ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    identity = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, *identity, "commit", "-qm", "template 1.0.0")
    git(repo, "tag", OLD)

    _replace(repo / MIDDLEWARE, OLD_LIMIT, NEW_LIMIT)
    _replace(repo / "template/tests/test_middleware.py.jinja", '"x" * 129', '"x" * 201')
    _replace(repo / README, README_OLD, README_NEW)
    example = repo / "template/.env.example.jinja"
    example.write_text(example.read_text() + "\n# New in 1.1.0\nREQUEST_ID_MAX_LENGTH=200\n")
    git(repo, "add", "-A")
    git(repo, *identity, "commit", "-qm", "template 1.1.0: longer request ids")
    git(repo, "tag", NEW)

    _replace(repo / README, README_NEW, README_NEW.replace("below", "further down"))
    git(repo, "add", "-A")
    git(repo, *identity, "commit", "-qm", "template 1.1.1: wording")
    git(repo, "tag", PATCH)
    return repo


def render_at(template: Path, version: str, destination: Path, **answers: object) -> Path:
    copier.run_copy(
        str(template),
        str(destination),
        data={"project_name": "My Service", **answers},
        defaults=True,
        unsafe=True,
        vcs_ref=version,
        quiet=True,
    )
    git(destination, "init", "-q", "-b", "main")
    commit_all(destination, "render")
    return destination


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-qm", message)


def update(project: Path, version: str, **data: object) -> None:
    copier.run_update(
        str(project),
        data=data,
        defaults=True,
        overwrite=True,
        unsafe=True,
        vcs_ref=version,
        quiet=True,
    )


def conflict_markers(project: Path) -> list[str]:
    found = []
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts and ".venv" not in path.parts:
            text = path.read_text(errors="replace")
            if re.search(r"^(<<<<<<<|>>>>>>>) ", text, re.MULTILINE):
                found.append(str(path.relative_to(project)))
    return found


def rejects(project: Path) -> list[Path]:
    return [path for path in project.rglob("*.rej") if ".venv" not in path.parts]


def env_values(project: Path) -> dict[str, str]:
    lines = (project / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


# --------------------------------------------------------------- user's work ---

PACKAGE = Path("src/my_service")
# The updated render's own suite, without its coverage gate: here it proves that the
# update works with the user's edits (the matrix enforces coverage on every variant).
SUITE = [uv(), "run", "pytest", "-q", "-p", "no:cacheprovider", "--no-cov"]
REPORTS_ROUTER = """from fastapi import APIRouter

from my_service.api.deps import CurrentUser

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/summary")
async def summary(current_user: CurrentUser) -> dict[str, str]:
    return {"owner": current_user.email}
"""
NOTE_MODEL = """import uuid

from sqlmodel import Field, SQLModel


class Note(SQLModel, table=True):
    __tablename__ = "notes"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    body: str = Field(max_length=500)
"""
REPORTS_TEST = """import httpx


async def test_the_summary_names_the_owner(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await client.get("/api/v1/reports/summary", headers=auth_headers)
    assert response.json() == {"owner": "alice@example.com"}
"""
README_NOTE = "\n## Our team's notes\n\nOn call: #backend-oncall.\n"


def make_user_edits(project: Path, *, with_migration: bool) -> None:
    """What a team does to a fresh render: a router, a model and its migration, a setting,
    the README, and the local .env."""
    (project / PACKAGE / "api/routes/reports.py").write_text(REPORTS_ROUTER)
    _replace(
        project / PACKAGE / "api/router.py",
        "api_router.include_router(items.router)\n",
        "api_router.include_router(items.router)\napi_router.include_router(reports.router)\n",
    )
    _replace(
        project / PACKAGE / "api/router.py",
        "from my_service.api.routes import auth, items, users",
        "from my_service.api.routes import auth, items, reports, users",
    )
    (project / PACKAGE / "models/note.py").write_text(NOTE_MODEL)
    _replace(
        project / PACKAGE / "models/__init__.py",
        "from .item import",
        "from .note import Note\nfrom .item import",
    )
    _replace(
        project / PACKAGE / "models/__init__.py",
        '    "ItemsPublic",\n',
        '    "ItemsPublic",\n    "Note",\n',
    )
    _replace(
        project / PACKAGE / "core/config.py",
        "refresh_token_expire_days: int = Field(default=7,",
        "refresh_token_expire_days: int = Field(default=14,",
    )
    (project / "tests/test_reports.py").write_text(REPORTS_TEST)
    with (project / "README.md").open("a") as readme:
        readme.write(README_NOTE)
    with (project / ".env").open("a") as env:
        env.write("LOG_LEVEL=DEBUG\n")
    if with_migration:
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{project / 'autogenerate.db'}"}
        run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
        run(
            [uv(), "run", "alembic", "revision", "--autogenerate", "-m", "add notes"],
            project,
            env=env,
        )
        (project / "autogenerate.db").unlink()
    commit_all(project, "our work")


def assert_user_edits_survived(project: Path) -> None:
    assert (project / PACKAGE / "api/routes/reports.py").read_text() == REPORTS_ROUTER
    router = (project / PACKAGE / "api/router.py").read_text()
    assert "api_router.include_router(reports.router)" in router
    assert (project / PACKAGE / "models/note.py").read_text() == NOTE_MODEL
    assert "from .note import Note" in (project / PACKAGE / "models/__init__.py").read_text()
    assert "default=14," in (project / PACKAGE / "core/config.py").read_text()
    assert (project / "README.md").read_text().endswith(README_NOTE)
    assert env_values(project)["LOG_LEVEL"] == "DEBUG"


def assert_template_fix_arrived(project: Path) -> None:
    assert NEW_LIMIT in (project / PACKAGE / "core/middleware.py").read_text()
    assert README_NEW in (project / "README.md").read_text()


# ------------------------------------------------------------------- tests ---


def test_answers_replay_without_questions_and_keep_the_secret(
    template_repo: Path, tmp_path: Path
) -> None:
    project = render_at(template_repo, OLD, tmp_path / "project")
    answers_before = yaml.safe_load((project / ".copier-answers.yml").read_text())
    secret_before = env_values(project)["SECRET_KEY"]
    # The CLI, as a user runs it, with no terminal to answer on: it must ask nothing.
    copier_cli = shutil.which("copier") or str(Path(uv()).with_name("copier"))
    completed = subprocess.run(
        [copier_cli, "update", "--trust", "--defaults", "--vcs-ref", NEW],
        cwd=project,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    answers_after = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers_after.pop("_commit") == NEW
    assert answers_before.pop("_commit") == OLD
    assert answers_after == answers_before
    assert "secret" not in (project / ".copier-answers.yml").read_text().lower()
    assert env_values(project)["SECRET_KEY"] == secret_before
    assert_template_fix_arrived(project)


def test_the_example_migration_runs_only_when_crossing_its_version(
    template_repo: Path, tmp_path: Path
) -> None:
    project = render_at(template_repo, OLD, tmp_path / "project")
    assert "REQUEST_ID_MAX_LENGTH" not in env_values(project)
    update(project, NEW)
    values = env_values(project)
    assert values["REQUEST_ID_MAX_LENGTH"] == "200"  # added to .env by copier_migrations/
    assert values["SECRET_KEY"]
    # Only what the update added: settings that were already in .env.example stay out.
    assert "CORS_ORIGINS" not in values
    commit_all(project, "update to 1.1.0")

    # 1.1.0 -> 1.1.1 crosses no migration: a setting the user removed stays removed.
    env = project / ".env"
    env.write_text(
        "\n".join(line for line in env.read_text().splitlines() if "REQUEST_ID" not in line) + "\n"
    )
    update(project, PATCH)
    assert "REQUEST_ID_MAX_LENGTH" not in env_values(project)


def test_a_line_changed_by_both_sides_is_a_reported_conflict(
    template_repo: Path, tmp_path: Path
) -> None:
    project = render_at(template_repo, OLD, tmp_path / "project")
    middleware = project / PACKAGE / "core/middleware.py"
    _replace(middleware, OLD_LIMIT, "{1,64}")
    commit_all(project, "shorter request ids")
    update(project, NEW)
    text = middleware.read_text()
    assert conflict_markers(project) == [str(PACKAGE / "core/middleware.py")]
    # Standard markers, with both sides of the line.
    assert re.search(r"^<<<<<<< before updating$", text, re.MULTILINE), text
    assert re.search(r"^>>>>>>> after updating$", text, re.MULTILINE), text
    assert "{1,64}" in text
    assert NEW_LIMIT in text
    assert not rejects(project)
    # Git sees the conflicted file as changed, so it cannot be committed by accident unseen.
    assert str(PACKAGE / "core/middleware.py") in git(project, "status", "--porcelain")


def test_update_refuses_a_dirty_project(template_repo: Path, tmp_path: Path) -> None:
    project = render_at(template_repo, OLD, tmp_path / "project")
    (project / "scratch.py").write_text("x = 1\n")
    with pytest.raises(Exception, match=r"(?i)dirty"):
        update(project, NEW)


@pytest.mark.slow
def test_update_keeps_the_users_work_and_the_suite_passes(
    template_repo: Path, tmp_path: Path
) -> None:
    project = render_at(template_repo, OLD, tmp_path / "project")
    run([uv(), "sync", "--quiet"], project)
    make_user_edits(project, with_migration=True)
    update(project, NEW)
    assert conflict_markers(project) == []
    assert rejects(project) == []
    assert_template_fix_arrived(project)
    assert_user_edits_survived(project)
    migrations = sorted((project / "migrations/versions").glob("*add_notes.py"))
    assert len(migrations) == 1
    commit_all(project, "update to 1.1.0")
    run([uv(), "sync", "--quiet"], project)
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'check.db'}"}
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    run([uv(), "run", "alembic", "check"], project, env=env)
    result = run(SUITE, project)
    assert " passed" in result.stdout.splitlines()[-1]
    assert "test_the_summary_names_the_owner" not in result.stdout  # passed, not reported


@pytest.fixture(scope="module")
def postgresql(database_server: Callable[[str], DatabaseServer]) -> str:
    return database_server("postgresql").url


@pytest.mark.slow
def test_switching_the_database_by_update_keeps_the_users_work(
    template_repo: Path, tmp_path: Path, postgresql: str
) -> None:
    project = render_at(template_repo, NEW, tmp_path / "project")
    run([uv(), "sync", "--quiet"], project)
    make_user_edits(project, with_migration=True)
    update(project, NEW, database="postgresql")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["database"] == "postgresql"
    assert conflict_markers(project) == []
    assert rejects(project) == []
    assert_user_edits_survived(project)
    assert "asyncpg" in (project / "pyproject.toml").read_text()
    assert "aiosqlite" not in (project / "pyproject.toml").read_text()
    # The local .env moved to PostgreSQL too, keeping the secret and the user's own lines.
    values = env_values(project)
    assert "DATABASE_URL" not in values
    assert values["DB_PORT"] == "5432"
    assert re.fullmatch(r"[0-9a-f]{32}", values["DB_PASSWORD"])
    assert values["LOG_LEVEL"] == "DEBUG"
    assert "# DATABASE_URL=sqlite+aiosqlite" in (project / ".env").read_text()
    commit_all(project, "switch to PostgreSQL")
    run([uv(), "sync", "--quiet"], project)
    env = {"DATABASE_URL": postgresql}
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    run([uv(), "run", "alembic", "check"], project, env=env)
    run([uv(), "run", "alembic", "downgrade", "base"], project, env=env)
    result = run(SUITE, project, env=env)
    assert " passed" in result.stdout.splitlines()[-1]

    # A further switch between servers keeps the password: a compose volume created with it
    # accepts no other.
    commit_all(project, "lock")
    update(project, NEW, database="mysql")
    assert env_values(project)["DB_PASSWORD"] == values["DB_PASSWORD"]
    assert env_values(project)["DB_PORT"] == "3306"


# The optional services a user may turn on in a rendered service: the module, the
# requirement and the test file each brings.
OPTIONAL_SERVICES = {
    "redis": ("core/redis.py", '"redis>=', "tests/test_jobs.py"),
    "sentry": ("core/sentry.py", '"sentry-sdk[fastapi]>=', "tests/test_sentry.py"),
    "metrics": ("core/metrics.py", '"prometheus-client>=', "tests/test_metrics.py"),
}


@pytest.mark.slow
def test_turning_redis_sentry_and_metrics_on_by_update_keeps_the_users_work(
    template_repo: Path, tmp_path: Path, database_server: Callable[[str], DatabaseServer]
) -> None:
    project = render_at(template_repo, NEW, tmp_path / "project")
    run([uv(), "sync", "--quiet"], project)
    make_user_edits(project, with_migration=True)
    update(project, NEW, **dict.fromkeys(OPTIONAL_SERVICES, True))
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {name: answers[name] for name in OPTIONAL_SERVICES} == dict.fromkeys(
        OPTIONAL_SERVICES, True
    )
    assert conflict_markers(project) == []
    assert rejects(project) == []
    assert_user_edits_survived(project)
    pyproject = (project / "pyproject.toml").read_text()
    for module, requirement, tests in OPTIONAL_SERVICES.values():
        assert (project / PACKAGE / module).is_file(), module
        assert requirement in pyproject, requirement
        assert (project / tests).is_file(), tests
    assert "redis:" in (project / "compose.yaml").read_text()
    commit_all(project, "turn Redis, Sentry and metrics on")
    run([uv(), "sync", "--quiet"], project)
    # The suite's Redis tests run against a real server; CI=true makes a missing one fail.
    env = {"REDIS_URL": database_server("redis").url, "CI": "true"}
    result = run(SUITE, project, env=env)
    assert " passed" in result.stdout.splitlines()[-1]
    assert "skipped" not in result.stdout.splitlines()[-1]

    commit_all(project, "lock")
    update(project, NEW, **dict.fromkeys(OPTIONAL_SERVICES, False))
    pyproject = (project / "pyproject.toml").read_text()
    for module, requirement, tests in OPTIONAL_SERVICES.values():
        assert not (project / PACKAGE / module).exists(), module
        assert requirement not in pyproject, requirement
        assert not (project / tests).exists(), tests
    assert "redis" not in pyproject
    assert_user_edits_survived(project)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_env_is_private_after_copy_and_after_the_update_steps_rewrite_it(
    template_repo: Path, tmp_path: Path
) -> None:
    project = render_at(template_repo, OLD, tmp_path / "project", database="postgresql")
    env = project / ".env"
    assert _mode(env) == 0o600  # SECRET_KEY and DB_PASSWORD: the owner's only
    update(project, NEW)  # sync_env.py adds a setting to .env
    assert "REQUEST_ID_MAX_LENGTH" in env_values(project)
    assert _mode(env) == 0o600
    commit_all(project, "update to 1.1.0")
    update(project, NEW, database="mysql")  # env_database.py moves .env to MySQL
    assert env_values(project)["DB_PORT"] == "3306"
    assert _mode(env) == 0o600


def test_database_switches_keep_the_existing_db_password(
    template_repo: Path, tmp_path: Path
) -> None:
    project = render_at(template_repo, NEW, tmp_path / "project", database="postgresql")
    rendered = env_values(project)
    assert re.fullmatch(r"[0-9a-f]{32}", rendered["DB_PASSWORD"])
    for database in ("mysql", "sqlite", "postgresql"):
        update(project, NEW, database=database)
        commit_all(project, f"switch to {database}")
        values = env_values(project)
        if database == "sqlite":
            assert "DB_PASSWORD" not in values
            assert "DB_SUPERUSER_PASSWORD" not in values
            assert values["DATABASE_URL"].startswith("sqlite+aiosqlite:")
        else:
            # Kept, even across SQLite, where they waited commented out.
            for key in ("DB_PASSWORD", "DB_SUPERUSER_PASSWORD"):
                assert values[key] == rendered[key], (database, key)


def test_an_update_gives_compose_the_superuser_password_it_needs(
    template_repo: Path, tmp_path: Path
) -> None:
    project = render_at(template_repo, NEW, tmp_path / "project", database="postgresql")
    env = project / ".env"
    # As rendered before compose's db service had a superuser of its own.
    env.write_text(
        "\n".join(line for line in env.read_text().splitlines() if "SUPERUSER" not in line) + "\n"
    )
    update(project, NEW)
    values = env_values(project)
    assert re.fullmatch(r"[0-9a-f]{32}", values["DB_SUPERUSER_PASSWORD"])
    assert values["DB_SUPERUSER_PASSWORD"] != values["DB_PASSWORD"]
    update(project, NEW)  # once there, it stays as it is (.env is not committed)
    assert env_values(project) == values


def test_an_unknown_answer_in_an_update_is_refused(template_repo: Path, tmp_path: Path) -> None:
    project = render_at(template_repo, NEW, tmp_path / "project")
    with pytest.raises(ValueError, match="'oracle' is not in"):
        update(project, NEW, database="oracle")
    assert git(project, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("auth", "api_key"),
        ("auth", "none"),
        ("package_name", "billing_api"),
        ("project_slug", "billing-api"),
    ],
)
def test_changing_a_fixed_answer_by_update_is_refused_before_anything_is_written(
    template_repo: Path, tmp_path: Path, name: str, value: str
) -> None:
    project = render_at(template_repo, NEW, tmp_path / "project")
    router = project / PACKAGE / "api/routes/reports.py"
    router.write_text(REPORTS_ROUTER)  # the user's own code in the package
    commit_all(project, "our work")
    answers_before = (project / ".copier-answers.yml").read_text()
    with pytest.raises(TaskError) as refused:
        update(project, NEW, **{name: value})
    assert git(project, "status", "--porcelain") == ""
    assert (project / ".copier-answers.yml").read_text() == answers_before
    assert router.read_text() == REPORTS_ROUTER
    assert "guard_answers.py" in str(refused.value)  # the refusing step is named


GUARD = [sys.executable, str(TEMPLATE_ROOT / "copier_migrations" / "guard_answers.py")]
RECORDED = "auth: jwt\ndatabase: sqlite\npackage_name: my_service\nproject_slug: my-service\n"
# The refusal for each fixed answer: its reason, then what to do by hand.
REFUSALS = {
    "auth=none": (
        "auth cannot be changed by copier update (this project has auth=jwt): each style "
        "ships a different first migration, so your migrations and database would no longer "
        "match; render a new project with auth=none and move your code into it."
    ),
    "package_name=billing_api": (
        "package_name cannot be changed by copier update (this project has "
        "package_name=my_service): it names src/my_service/ and every import, so the update "
        "would render src/billing_api/ and delete src/my_service/ with your code in it; keep "
        "the name (it is only the import name), or render a new project with "
        "package_name=billing_api and move your code into it."
    ),
    "project_slug=billing-api": (
        "project_slug cannot be changed by copier update (this project has "
        "project_slug=my-service): it is the distribution name your lock file records and "
        "the name of the Docker image, so the update would rename them under your lock file "
        "and deployments; to rename, edit name in pyproject.toml (then refresh the lock) and "
        "image in compose.yaml by hand: later updates keep your edits like any others."
    ),
}


def _guard(cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GUARD, *arguments], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("requested", list(REFUSALS))
def test_the_guard_explains_each_refusal(tmp_path: Path, requested: str) -> None:
    (tmp_path / ".copier-answers.yml").write_text(RECORDED)
    unset = ["auth=", "package_name=", "project_slug="]
    refused = _guard(tmp_path, *unset, requested)
    assert refused.returncode == 1
    assert refused.stderr == REFUSALS[requested] + "\n"
    same = ["auth=jwt", "package_name=my_service", "project_slug=my-service"]
    for allowed in (unset, same):
        assert _guard(tmp_path, *allowed).returncode == 0
    # After an update whose answer changed at the prompt: compared with the committed answers.
    git(tmp_path, "init", "-q")
    commit_all(tmp_path, "rendered")
    name, value = requested.split("=")
    changed = [line for line in RECORDED.splitlines() if not line.startswith(f"{name}:")]
    (tmp_path / ".copier-answers.yml").write_text("\n".join([*changed, f"{name}: {value}"]))
    after = _guard(tmp_path, "--after", *same, requested)
    assert after.returncode == 1
    assert after.stderr.startswith(REFUSALS[requested])
    assert after.stderr.rstrip().endswith("git reset --hard && git clean -fd")


def test_the_guard_lists_every_refused_answer(tmp_path: Path) -> None:
    (tmp_path / ".copier-answers.yml").write_text(RECORDED)
    refused = _guard(tmp_path, *REFUSALS)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == list(REFUSALS.values())


# ------------------------------------------------------------- check-update ---

WORKFLOW = Path(".github/workflows/template-update.yml")


def copier_cli() -> str:
    return shutil.which("copier") or str(Path(uv()).with_name("copier"))


def check_update(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [copier_cli(), "check-update", *args],
        cwd=project,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_update_reports_the_newer_version_until_the_update(
    template_repo: Path, tmp_path: Path
) -> None:
    project = render_at(template_repo, OLD, tmp_path / "project")
    checked = check_update(project)
    assert (checked.returncode, checked.stdout) == (
        0,
        f"New template version available.\nCurrent version is {OLD}, latest version is {PATCH}.\n",
    ), checked.stderr
    assert check_update(project, "--quiet").returncode == 2  # for scripts: 2 is "newer"
    assert json.loads(check_update(project, "--output-format", "json").stdout) == {
        "update_available": True,
        "current_version": OLD,
        "latest_version": PATCH,
    }

    update(project, PATCH)
    commit_all(project, f"update to {PATCH}")
    checked = check_update(project)
    assert (checked.returncode, checked.stdout) == (0, "Project is up-to-date!\n"), checked.stderr
    assert check_update(project, "--quiet").returncode == 0
    assert (
        json.loads(check_update(project, "--output-format", "json").stdout)["update_available"]
        is False
    )


# Stand-ins for what a GitHub runner has: pipx runs the template's own Copier (no download),
# and gh answers `issue list` from a file and logs every other call.
FAKE_PIPX = """#!/bin/bash
[ "$1 $2" = "run --spec" ] && [ "$3" = "$EXPECTED_SPEC" ] || { echo "pipx $*" >&2; exit 64; }
shift 3
[ "$1" = copier ] || exit 64
shift
exec "$COPIER" "$@"
"""
FAKE_GH = """#!/bin/bash
if [ "$1 $2" = "issue list" ]; then cat "$OPEN_ISSUES"; else printf '%s\\0' "$@" >> "$GH_LOG"; fi
"""


def _workflow_steps(project: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    workflow = yaml.safe_load((project / WORKFLOW).read_text())
    job = workflow["jobs"]["check"]
    return job["env"], {step["name"]: step for step in job["steps"] if "name" in step}


def _run_step(
    project: Path, step: dict[str, Any], tools: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return run(
        ["bash", "-e", "-c", step["run"]],
        project,
        env={"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", **env},
    )


def test_the_template_update_workflow_opens_one_issue_then_keeps_it_up_to_date(
    template_repo: Path, tmp_path: Path
) -> None:
    project = render_at(template_repo, OLD, tmp_path / "project")
    workflow = yaml.safe_load((project / WORKFLOW).read_text())
    assert workflow["permissions"] == {"contents": "read", "issues": "write"}
    assert set(workflow[True]) == {"schedule", "workflow_dispatch"}  # PyYAML reads `on` as True
    job_env, steps = _workflow_steps(project)
    check, report = (
        steps["Check the template for a newer version"],
        steps["Open or update the issue"],
    )
    assert report["if"] == "steps.check.outputs.available == 'true'"

    tools = tmp_path / "tools"
    tools.mkdir()
    for name, script in (("pipx", FAKE_PIPX), ("gh", FAKE_GH)):
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    # The Copier the workflow asks for is at least the template's _min_copier_version.
    minimum = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())["_min_copier_version"]
    env = {
        **job_env,
        "COPIER": copier_cli(),
        "EXPECTED_SPEC": f"copier>={minimum},<10",
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
        "OPEN_ISSUES": str(tmp_path / "open-issues.json"),
        "GH_LOG": str(tmp_path / "gh.log"),
    }

    def outputs() -> dict[str, str]:
        path = Path(env["GITHUB_OUTPUT"])
        path.write_text("")
        _run_step(project, check, tools, env)
        return dict(line.split("=", 1) for line in path.read_text().splitlines())

    def report_and_log(open_issues: list[dict[str, Any]], found: dict[str, str]) -> list[str]:
        Path(env["OPEN_ISSUES"]).write_text(json.dumps(open_issues))
        Path(env["GH_LOG"]).write_text("")
        versions = {"CURRENT": found["current"], "LATEST": found["latest"]}
        _run_step(project, report, tools, {**env, **versions})
        return Path(env["GH_LOG"]).read_text().split("\0")[:-1]

    found = outputs()
    assert found == {"available": "true", "current": OLD, "latest": PATCH}
    title = job_env["ISSUE_TITLE"]
    # No open issue: one is created, saying which versions and how to update.
    calls = report_and_log([], found)
    assert calls[:4] == ["issue", "create", "--title", title], calls
    body = calls[calls.index("--body") + 1]
    assert f"version {OLD} of its Copier template; version {PATCH} is available" in body
    assert "    copier update --trust --defaults\n" in body
    # The issue is open (beside one whose title only contains it): that one is edited.
    similar = {"number": 3, "title": f"{title} for the docs"}
    calls = report_and_log([similar, {"number": 7, "title": title}], found)
    assert calls == ["issue", "edit", "7", "--body", body], calls

    update(project, PATCH)
    commit_all(project, f"update to {PATCH}")
    assert outputs() == {"available": "false", "current": PATCH, "latest": PATCH}


# ------------------------------------------------------------------ releases ---
