"""The default service (sqlite + jwt + uv): rendered, linted, installed, tested, served."""

import json
import re
import subprocess
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness import free_port, render, run, uv, wait_until_serving

TEXT_SUFFIXES = {".py", ".toml", ".md", ".ini", ".yml", ".yaml", ".mako", ".example", ""}


def _text_files(project: Path) -> list[Path]:
    return [
        path
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.parts and path.suffix in TEXT_SUFFIXES
    ]


def test_no_jinja_residue_is_left(default_project: Path) -> None:
    for path in project_paths(default_project):
        assert "{{" not in path.name, path
        assert "{%" not in path.name, path
    for path in _text_files(default_project):
        text = path.read_text()
        # GitHub Actions expressions (${{ ... }}) are the only legitimate double braces.
        stripped = re.sub(r"\$\{\{.*?\}\}", "", text)
        for marker in ("{{", "{%", "%}", "{#"):
            assert marker not in stripped, f"{marker} left in {path}"
        assert "\n\n\n\n" not in text, f"a blank-line cluster is left in {path}"


def project_paths(project: Path) -> list[Path]:
    return [path for path in project.rglob("*") if ".git" not in path.parts]


def test_the_layout_gives_each_concern_its_module(default_project: Path) -> None:
    package = default_project / "src" / "my_service"
    for module in [
        "main.py",
        "core/config.py",
        "core/db.py",
        "core/security.py",
        "core/middleware.py",
        "core/logging.py",
        "models/user.py",
        "models/item.py",
        "api/deps.py",
        "api/routes/auth.py",
        "api/routes/items.py",
        "api/routes/health.py",
        "tasks.py",
    ]:
        assert (package / module).is_file(), module
    versions = list((default_project / "migrations" / "versions").glob("*.py"))
    assert len(versions) == 1
    date_prefixed = r"\d{4}_\d{2}_\d{2}_\d{4}-[0-9a-f]{12}_initial_schema\.py"
    assert re.fullmatch(date_prefixed, versions[0].name)
    assert "import sqlmodel" in (default_project / "migrations" / "script.py.mako").read_text()


def test_project_files_parse(default_project: Path) -> None:
    pyproject = tomllib.loads((default_project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "my-service"
    assert pyproject["tool"]["fastapi"]["entrypoint"] == "my_service.main:app"
    assert pyproject["project"]["requires-python"] == ">=3.11"
    dependencies = " ".join(pyproject["project"]["dependencies"])
    for banned in ("passlib", "python-jose", "bcrypt"):
        assert banned not in dependencies
    answers = yaml.safe_load((default_project / ".copier-answers.yml").read_text())
    assert answers["database"] == "sqlite"
    assert answers["_src_path"]


def test_the_secret_is_fresh_per_render_and_never_recorded(
    default_project: Path, tmp_path: Path
) -> None:
    other = render(tmp_path / "other")
    secrets = []
    for project in (default_project, other):
        env = dict(
            line.split("=", 1)
            for line in (project / ".env").read_text().splitlines()
            if line and not line.startswith("#")
        )
        assert re.fullmatch(r"[0-9a-f]{64}", env["SECRET_KEY"])
        for recorded in (project / ".copier-answers.yml", project / ".env.example"):
            assert env["SECRET_KEY"] not in recorded.read_text()
        secrets.append(env["SECRET_KEY"])
    assert secrets[0] != secrets[1]
    assert ".env\n" in (default_project / ".gitignore").read_text()


def test_the_readme_gives_the_run_and_test_commands(default_project: Path) -> None:
    readme = (default_project / "README.md").read_text()
    assert "uv run alembic upgrade head && uv run fastapi dev" in readme
    assert "uv run pytest" in readme


# ------------------------------------------------------------------ slow ---


@pytest.mark.slow
def test_lint_and_strict_types_pass(installed_default_project: Path) -> None:
    run([uv(), "run", "ruff", "format", "--check", "."], installed_default_project)
    run([uv(), "run", "ruff", "check", "."], installed_default_project)
    run([uv(), "run", "mypy"], installed_default_project)


@pytest.mark.slow
def test_the_rendered_suite_passes_with_coverage(installed_default_project: Path) -> None:
    result = run([uv(), "run", "pytest", "-q", "-p", "no:cacheprovider"], installed_default_project)
    summary = re.search(r"(\d+) passed", result.stdout)
    assert summary is not None, result.stdout
    assert int(summary.group(1)) >= 80
    assert "failed" not in result.stdout.splitlines()[-1]
    assert "Required test coverage of 90% reached" in result.stdout


@pytest.mark.slow
def test_migrations_upgrade_check_and_downgrade(
    installed_default_project: Path, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"}
    run([uv(), "run", "alembic", "upgrade", "head"], installed_default_project, env=env)
    run([uv(), "run", "alembic", "check"], installed_default_project, env=env)
    run([uv(), "run", "alembic", "downgrade", "base"], installed_default_project, env=env)
    run([uv(), "run", "alembic", "upgrade", "head"], installed_default_project, env=env)


def _call(
    base: str,
    method: str,
    path: str,
    *,
    json_body: object = None,
    form: dict[str, str] | None = None,
    token: str | None = None,
) -> tuple[int, dict[str, str], object]:
    headers = {}
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            body = response.read()
            return response.status, dict(response.headers), json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, dict(error.headers), json.loads(body) if body else None


@pytest.mark.slow
def test_the_service_serves_the_whole_flow_over_http(
    installed_default_project: Path, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'served.db'}", "LOG_FORMAT": "json"}
    run([uv(), "run", "alembic", "upgrade", "head"], installed_default_project, env=env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [uv(), "run", "fastapi", "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=installed_default_project,
            env={**_clean_env(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(f"{base}/health", server)
            _exercise_api(base)
        finally:
            server.terminate()
            server.wait(timeout=30)
    # The access log is JSON and carries the request id that the client saw.
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/api/v1/items" and line.get("request_id") for line in lines)


def _clean_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    return env


def _exercise_api(base: str) -> None:
    status, headers, body = _call(base, "GET", "/health/ready")
    assert (status, body) == (200, {"status": "ok", "database": "ok"})
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    assert float(headers["x-process-time"]) >= 0

    credentials = {"email": "http@example.com", "password": "a long enough password"}
    status, _, user = _call(base, "POST", "/api/v1/auth/register", json_body=credentials)
    assert status == 201
    assert isinstance(user, dict)
    assert "hashed_password" not in user
    status, _, _ = _call(base, "POST", "/api/v1/auth/register", json_body=credentials)
    assert status == 409

    form = {"username": credentials["email"], "password": credentials["password"]}
    status, _, tokens = _call(base, "POST", "/api/v1/auth/login", form=form)
    assert status == 200
    assert isinstance(tokens, dict)
    status, _, _ = _call(base, "POST", "/api/v1/auth/login", form={**form, "password": "wrong"})
    assert status == 401

    refresh = {"refresh_token": tokens["refresh_token"]}
    status, _, rotated = _call(base, "POST", "/api/v1/auth/refresh", json_body=refresh)
    assert status == 200
    assert isinstance(rotated, dict)
    assert _call(base, "POST", "/api/v1/auth/refresh", json_body=refresh)[0] == 401
    access = rotated["access_token"]

    assert _call(base, "GET", "/api/v1/items")[0] == 401
    status, _, me = _call(base, "GET", "/api/v1/users/me", token=access)
    assert status == 200
    assert isinstance(me, dict)
    assert me["id"] == user["id"]

    status, _, item = _call(base, "POST", "/api/v1/items", json_body={"title": "t"}, token=access)
    assert status == 201
    assert isinstance(item, dict)
    status, _, listing = _call(base, "GET", "/api/v1/items?limit=10", token=access)
    assert (status, listing) == (200, {"data": [item], "count": 1})
    assert _call(base, "POST", "/api/v1/items", json_body={"title": ""}, token=access)[0] == 422
    assert _call(base, "DELETE", f"/api/v1/items/{item['id']}", token=access)[0] == 204
    assert _call(base, "GET", f"/api/v1/items/{item['id']}", token=access)[0] == 404
