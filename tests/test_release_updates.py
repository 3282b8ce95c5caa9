"""Updates from released versions of the template: their migration revisions never change,
and a service rendered from each release updates to this tree and keeps its data, emails
that the canonical-email revision must rewrite, and rows it must refuse to merge, included.

A release is the commit CHANGELOG.md names for it (tags do not reach this repository).
"""

import json
import os
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import DatabaseServer, _postgres_bindir
from test_update import commit_all, conflict_markers, env_values, git, rejects, update

from harness import TEMPLATE_ROOT, call, render, run, run_failing, serve, uv

# The commits released (CHANGELOG.md). Services rendered from them have applied their
# migrations, so their revision files never change again; later schema changes come as new
# revisions, and an update from each must keep a service's data.
RELEASED = {
    "1.0.0": "7474d70c7442b0fb7874afcb67b5e0723248b742",
    "1.1.0": "a4f35d029a5e0f88762afc76828bb91c0c4925e0",
}
REVISIONS = "template/migrations/versions"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _require_history(commit: str) -> None:
    """Skip (fail in CI) when this clone cannot show a released commit."""
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        reason = (
            f"the released commit {commit} is not in this clone's history (a shallow "
            "clone?): fetch it, e.g. `git fetch --unshallow`"
        )
        if _in_ci():
            pytest.fail(f"{reason} (CI=true: the release checks must run)", pytrace=False)
        pytest.skip(reason)


@pytest.mark.parametrize("version", list(RELEASED))
def test_released_migration_revisions_never_change(version: str) -> None:
    commit = RELEASED[version]
    _require_history(commit)
    released = git(TEMPLATE_ROOT, "ls-tree", "-r", "--name-only", commit, "--", REVISIONS)
    paths = released.splitlines()
    assert paths, f"{version} ({commit}) has no revision files under {REVISIONS}"
    changed = []
    for path in paths:
        shown = subprocess.run(
            ["git", "show", f"{commit}:{path}"], cwd=TEMPLATE_ROOT, capture_output=True
        )
        assert shown.returncode == 0, shown.stderr
        current = TEMPLATE_ROOT / path
        if not current.is_file() or current.read_bytes() != shown.stdout:
            changed.append(path)
    assert not changed, (
        f"revision files released in {version} were changed or removed: {changed}. "
        "Services have applied them already; add a new revision instead."
    )


def _exercise_and_keep(base: str) -> tuple[str, dict[str, Any]]:
    """A user and an item, written through the API; returns the password and the item."""
    credentials = {"email": "kept@example.com", "password": "a long enough password"}
    assert call(base, "POST", "/api/v1/auth/register", json_body=credentials)[0] == 201
    token = _login(base, credentials["password"])
    status, _, item = call(base, "POST", "/api/v1/items", json_body={"title": "kept"}, token=token)
    assert status == 201, item
    return credentials["password"], item


def _login(base: str, password: str) -> str:
    form = {"username": "kept@example.com", "password": password}
    status, _, tokens = call(base, "POST", "/api/v1/auth/login", form=form)
    assert status == 200, tokens
    return str(tokens["access_token"])


def _fresh_postgresql_database(server: DatabaseServer, name: str) -> str:
    """A new, empty database on the test server; its async URL."""
    url = urllib.parse.urlsplit(server.url)
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's client programs are not installed")
    run(
        [
            str(bindir / "createdb"),
            "-h",
            url.hostname or "",
            "-p",
            str(url.port),
            "-U",
            url.username or "",
            name,
        ],
        TEMPLATE_ROOT,
        env={"PGPASSWORD": urllib.parse.unquote(url.password or "")},
    )
    return urllib.parse.urlunsplit(url._replace(path=f"/{name}"))


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
@pytest.mark.parametrize("version", list(RELEASED))
def test_a_service_rendered_from_a_release_updates_and_keeps_its_data(
    tmp_path: Path,
    database_server: Callable[[str], DatabaseServer],
    version: str,
    database: str,
) -> None:
    commit = RELEASED[version]
    _require_history(commit)
    project = tmp_path / "my-service"
    # As a user rendered it: the template at that commit, from this repository's history.
    render(project, vcs_ref=commit, database=database)
    git(project, "init", "-q", "-b", "main")
    commit_all(project, f"render {version}")
    # Copier records `git describe --tags --always`: the tag where there is one.
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"]
    assert recorded == version or commit.startswith(recorded), recorded
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    else:
        name = f"release_update_{version.replace('.', '_')}"
        url = _fresh_postgresql_database(database_server("postgresql"), name)
    env = {"DATABASE_URL": url}

    run([uv(), "sync", "--quiet"], project)
    commit_all(project, "lock")  # uv.lock, as the README asks
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    with serve(project, env) as served:
        password, item = _exercise_and_keep(served.base_url)
    # Rows that older code could store: an email that is not canonical, and two that become
    # one address once canonical (as a hand-made row, or an import, may have left them).
    ids = _insert_users(project, env, [" Carol@Example.com", *COLLIDING])
    assert git(project, "status", "--porcelain") == ""

    # Update to this working tree, the way the README says (answers replayed).
    update(project, "HEAD")
    assert conflict_markers(project) == []
    assert rejects(project) == []
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["database"] == database
    if database == "postgresql":
        values = env_values(project)  # compose's db service has what it needs
        assert values["DB_SUPERUSER_PASSWORD"] != values["DB_PASSWORD"]
    commit_all(project, "update from the template")

    run([uv(), "sync", "--quiet"], project)
    # The colliding rows stop the migration, which says which rows and what to do...
    stopped = run_failing([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    assert "never merged silently" in stopped.stderr, stopped.stderr
    for user_id in ids[1:]:
        assert user_id in stopped.stderr.replace("-", ""), stopped.stderr
    # ...and, resolved as it says, the upgrade goes through and keeps every row.
    resolve = f"UPDATE users SET email = 'frank2@example.com' WHERE id = '{ids[2]}'"  # noqa: S608
    _sql(project, env, resolve)
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    run([uv(), "run", "alembic", "check"], project, env=env)
    emails = sorted(_sql(project, env, "SELECT email FROM users"))
    assert emails == [
        "carol@example.com",
        "frank2@example.com",
        "frank@bücher.example",
        "kept@example.com",
    ]
    with serve(project, env) as served:
        token = _login(served.base_url, password)
        status, _, listing = call(served.base_url, "GET", "/api/v1/items", token=token)
    assert status == 200, listing
    assert listing["count"] == 1
    assert [row["id"] for row in listing["data"]] == [item["id"]]
    assert listing["data"][0]["title"] == "kept"


# Two spellings of one address: the domain in Unicode and in IDNA's ASCII, with a capital and
# a leading space. A 1.x service could store both; the canonical form is one.
COLLIDING = ["frank@bücher.example", " Frank@xn--bcher-kva.example"]

_SQL = """
import asyncio, json, os, sys, uuid
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

async def main() -> None:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    async with engine.begin() as connection:
        if sys.argv[1] == "insert":
            users = sa.table(
                "users", *(sa.column(name) for name in ("email", "hashed_password",
                "is_active", "is_superuser", "created_at")), sa.column("id", sa.Uuid()),
            )
            ids = []
            for email in json.loads(sys.argv[2]):
                ids.append(uuid.uuid4())
                await connection.execute(sa.insert(users).values(
                    id=ids[-1], email=email, hashed_password="x", is_active=True,
                    is_superuser=False, created_at=sa.func.current_timestamp(),
                ))
            print(json.dumps([user_id.hex for user_id in ids]))
        else:
            result = await connection.execute(sa.text(sys.argv[2]))
            rows = [row[0] for row in result] if result.returns_rows else []
            print(json.dumps([r.decode() if isinstance(r, bytes) else r for r in rows]))
    await engine.dispose()

asyncio.run(main())
"""


def _insert_users(project: Path, env: dict[str, str], emails: list[str]) -> list[str]:
    """Users stored with exactly these emails, straight into the service's database; their
    ids, as 32 hex digits."""
    inserted = run(
        [uv(), "run", "python", "-c", _SQL, "insert", json.dumps(emails)], project, env=env
    )
    ids: list[str] = json.loads(inserted.stdout)
    return ids


def _sql(project: Path, env: dict[str, str], statement: str) -> list[Any]:
    """Run one SQL statement on the service's database; the first column of its rows."""
    done = run([uv(), "run", "python", "-c", _SQL, "sql", statement], project, env=env)
    rows: list[Any] = json.loads(done.stdout)
    return rows
