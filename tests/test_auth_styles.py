"""The three auth styles: each renders a coherent service of its own, not the others' parts.

One row per style in STYLES; the render-level tests read the files, the slow ones install each
style once (shared by every slow test of that style), lint it, run its suite and migrations,
serve it, and compare the three OpenAPI documents.
"""

import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import (
    assert_no_jinja_residue,
    call,
    render,
    run,
    serve,
    uv,
)

PACKAGE = "src/my_service"


@dataclass(frozen=True)
class Style:
    name: str
    own_files: tuple[str, ...]  # files that this style, and no other, renders
    tables: frozenset[str]  # what its first migration creates
    dependencies: frozenset[str]  # what it adds to the dependencies every style has
    readme: tuple[str, ...]  # what its README must say
    auth_paths: frozenset[str]  # the /api/v1 paths that exist only for authentication
    security_schemes: frozenset[str]


STYLES = [
    Style(
        name="jwt",
        own_files=(
            f"{PACKAGE}/core/security.py",
            f"{PACKAGE}/core/email.py",
            f"{PACKAGE}/api/routes/auth.py",
            f"{PACKAGE}/api/routes/users.py",
            f"{PACKAGE}/models/user.py",
            f"{PACKAGE}/models/token.py",
            f"{PACKAGE}/models/password_reset.py",
            "migrations/versions/2026_12_06_0000-482a882efca0_password_reset_tokens.py",
            "tests/test_auth.py",
            "tests/test_password_reset.py",
            "tests/test_users.py",
        ),
        tables=frozenset({"users", "items", "refresh_tokens", "audit_events"}),
        dependencies=frozenset({"aiosmtplib", "limits", "pwdlib", "pyjwt"}),
        readme=(
            "with JWT authentication",
            "Authorization: Bearer <token>",
            "uv run python -m my_service create-superuser",
            "FIRST_SUPERUSER_EMAIL",
            "`GET /api/v1/users`",
            "`POST /api/v1/auth/password-recovery`",
            "SMTP_HOST",
        ),
        auth_paths=frozenset(
            {
                "/api/v1/auth/register",
                "/api/v1/auth/login",
                "/api/v1/auth/refresh",
                "/api/v1/auth/logout",
                "/api/v1/auth/password-recovery",
                "/api/v1/auth/reset-password",
                "/api/v1/users",
                "/api/v1/users/me",
            }
        ),
        security_schemes=frozenset({"OAuth2PasswordBearer"}),
    ),
    Style(
        name="api_key",
        own_files=(
            f"{PACKAGE}/core/api_keys.py",
            f"{PACKAGE}/models/client.py",
            f"{PACKAGE}/api/routes/clients.py",
            "tests/test_api_keys.py",
        ),
        tables=frozenset({"clients", "api_keys", "items", "audit_events"}),
        dependencies=frozenset({"limits"}),
        readme=(
            "with API-key authentication",
            "`X-API-Key` header",
            "uv run python -m my_service api-keys create",
            "uv run python -m my_service api-keys list",
            "uv run python -m my_service api-keys revoke",
            "sk_myservice_",
            "SHA-256",
        ),
        auth_paths=frozenset({"/api/v1/clients/me"}),
        security_schemes=frozenset({"APIKeyHeader"}),
    ),
    Style(
        name="none",
        own_files=(),
        tables=frozenset({"items", "audit_events"}),
        dependencies=frozenset(),
        readme=(
            "**open API: no authentication**",
            "**This API is open: it has no authentication.**",
            "To add authentication later",
            "uv run python -m my_service purge",
        ),
        auth_paths=frozenset(),
        security_schemes=frozenset(),
    ),
]
BY_NAME = {style.name: style for style in STYLES}
# The CLI exists where there is something to administer.
SHARED_BY_SOME = {
    f"{PACKAGE}/cli.py": {"jwt", "api_key", "none"},
    f"{PACKAGE}/__main__.py": {"jwt", "api_key", "none"},
    f"{PACKAGE}/core/rate_limit.py": {"jwt", "api_key"},
    "tests/test_rate_limits.py": {"jwt", "api_key"},
}
# Nothing of JWT's may leak into a style that signs no tokens.
JWT_WORDS = (
    "SECRET_KEY",
    "secret_key",
    "pwdlib",
    "import jwt",
    "OAuth2",
    "users.id",
    "hashed_password",
)


def _ids(styles: list[Style]) -> list[str]:
    return [style.name for style in styles]


@pytest.fixture(scope="session", params=STYLES, ids=_ids(STYLES))
def style(request: pytest.FixtureRequest) -> Style:
    style: Style = request.param
    return style


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Render each style once per session, on first use."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = render(
                tmp_path_factory.mktemp(f"render-{name}") / "my-service", auth=name
            )
        return cache[name]

    return get


@pytest.fixture(scope="session")
def installs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], Path]:
    """Render and `uv sync` each style once per session, on first use (the uv cache is shared)."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            project = render(tmp_path_factory.mktemp(f"install-{name}") / "my-service", auth=name)
            run([uv(), "sync", "--quiet"], project)
            cache[name] = project
        return cache[name]

    return get


@pytest.fixture
def project(renders: Callable[[str], Path], style: Style) -> Path:
    return renders(style.name)


@pytest.fixture
def installed(installs: Callable[[str], Path], style: Style) -> Path:
    return installs(style.name)


def _source_files(project: Path) -> Iterator[Path]:
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts and path.suffix in {".py", ".toml", ""}:
            yield path


# ------------------------------------------------------------------ render ---


def test_no_jinja_residue_is_left(project: Path) -> None:
    assert_no_jinja_residue(project)


def test_the_style_renders_its_own_files_and_none_of_the_others(
    project: Path, style: Style
) -> None:
    for path in style.own_files:
        assert (project / path).is_file(), path
    for other in STYLES:
        if other is not style:
            for path in other.own_files:
                assert not (project / path).exists(), f"{other.name}'s {path} is in {style.name}"
    for path, styles in SHARED_BY_SOME.items():
        assert (project / path).is_file() is (style.name in styles), path


def test_the_dependencies_are_the_styles_own(project: Path, style: Style) -> None:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    names = {
        re.split(r"[\[<>=]", dependency)[0] for dependency in pyproject["project"]["dependencies"]
    }
    every_style = {
        "alembic",
        "aiosqlite",
        "fastapi",
        "pydantic-settings",
        "sqlalchemy",
        "sqlmodel",
        "structlog",
    }
    assert names == every_style | style.dependencies


@pytest.mark.parametrize("name", ["api_key", "none"])
def test_a_style_without_tokens_has_nothing_of_jwt(
    renders: Callable[[str], Path], name: str
) -> None:
    project = renders(name)
    for path in [*_source_files(project), project / ".env", project / ".env.example"]:
        text = path.read_text()
        for word in JWT_WORDS:
            assert word not in text, f"{word!r} in {path.relative_to(project)}"


def test_the_first_migration_creates_exactly_the_styles_tables(project: Path, style: Style) -> None:
    revisions = sorted((project / "migrations" / "versions").glob("*.py"))
    revision = revisions[0]  # the date prefix sorts them in order
    assert re.fullmatch(r"\d{4}_\d{2}_\d{2}_\d{4}-[0-9a-f]{12}_initial_schema\.py", revision.name)
    created = set(re.findall(r'op\.create_table\(\s*"(\w+)"', revision.read_text()))
    assert created == style.tables


def test_the_readme_describes_the_style(project: Path, style: Style) -> None:
    readme = (project / "README.md").read_text()
    for phrase in style.readme:
        assert phrase in readme, phrase
    for other in STYLES:
        if other is not style:
            assert other.readme[0] not in readme, other.readme[0]


def test_only_the_jwt_style_gets_a_secret(project: Path, style: Style) -> None:
    env = (project / ".env").read_text()
    assert ("SECRET_KEY=" in env) is (style.name == "jwt")
    answers = (project / ".copier-answers.yml").read_text()
    assert f"auth: {style.name}" in answers


# -------------------------------------------------------------------- slow ---


@pytest.mark.slow
def test_migrations_upgrade_match_the_models_and_downgrade(installed: Path, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"}
    run([uv(), "run", "alembic", "upgrade", "head"], installed, env=env)
    run([uv(), "run", "alembic", "check"], installed, env=env)
    run([uv(), "run", "alembic", "downgrade", "base"], installed, env=env)


def _request(
    base: str, method: str, path: str, headers: dict[str, str] | None = None, body: object = None
) -> tuple[int, Any]:
    status, _, payload = call(base, method, path, json_body=body, headers=headers)
    return status, payload


def _jwt_credentials(base: str, _project: Path, _env: dict[str, str]) -> dict[str, str]:
    account = {"email": "served@example.com", "password": "a long enough password"}
    assert _request(base, "POST", "/api/v1/auth/register", body=account)[0] == 201
    form = {"username": account["email"], "password": account["password"]}
    status, _, tokens = call(base, "POST", "/api/v1/auth/login", form=form)
    assert status == 200, tokens
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _api_key_credentials(_base: str, project: Path, env: dict[str, str]) -> dict[str, str]:
    created = run(
        [uv(), "run", "python", "-m", "my_service", "api-keys", "create", "smoke test"],
        project,
        env=env,
    )
    key = created.stdout.strip()
    assert re.fullmatch(r"sk_myservice_[A-Za-z0-9_-]{43}", key), created.stdout
    assert "cannot be shown again" in created.stderr
    return {"X-API-Key": key}


def _no_credentials(_base: str, _project: Path, _env: dict[str, str]) -> dict[str, str]:
    return {}


CREDENTIALS: dict[str, Callable[[str, Path, dict[str, str]], dict[str, str]]] = {
    "jwt": _jwt_credentials,
    "api_key": _api_key_credentials,
    "none": _no_credentials,
}
# Routes that every style has; the style's own ones come from Style.auth_paths.
PROTECTED = [("GET", "/api/v1/items", None), ("POST", "/api/v1/items", {"title": "served"})]


@pytest.mark.slow
def test_the_served_api_refuses_no_credentials_and_accepts_good_ones(
    installed: Path, style: Style, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'served.db'}"}
    run([uv(), "run", "alembic", "upgrade", "head"], installed, env=env)
    with serve(installed, env) as served:
        base = served.base_url
        credentials = CREDENTIALS[style.name](base, installed, env)
        for method, path, body in PROTECTED:
            without = _request(base, method, path, body=body)
            with_them = _request(base, method, path, credentials, body)
            if style.name == "none":
                assert without[0] in {200, 201}, (method, path, without)
            else:
                assert without[0] == 401, (method, path, without)
            assert with_them[0] in {200, 201}, (method, path, with_them)
        if style.name == "api_key":
            wrong = {"X-API-Key": "sk_myservice_" + "A" * 43}
            assert _request(base, "GET", "/api/v1/items", wrong) == (
                401,
                {"detail": "Invalid or missing API key"},
            )
            assert _request(base, "GET", "/api/v1/clients/me", credentials)[1]["name"] == (
                "smoke test"
            )
        status, listing = _request(base, "GET", "/api/v1/items", credentials)
        assert (status, listing["count"]) == (200, 2 if style.name == "none" else 1)


def _openapi(project: Path, tmp_path: Path) -> dict[str, Any]:
    script = "import json; from my_service.main import app; print(json.dumps(app.openapi()))"
    env = {
        "SECRET_KEY": "openapi-secret-key-that-is-long-enough",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'openapi.db'}",
    }
    document: dict[str, Any] = json.loads(
        run([uv(), "run", "python", "-c", script], project, env=env).stdout
    )
    return document


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _without_auth(document: dict[str, Any], style: Style) -> dict[str, Any]:
    """The document less everything auth adds: its paths, schemes, requirements and 401s."""
    paths = json.loads(json.dumps(document["paths"]))
    for path in style.auth_paths:
        del paths[path]
    for operations in paths.values():
        for operation in operations.values():
            operation.pop("security", None)
            operation["responses"].pop("401", None)
    schemas = document["components"]["schemas"]
    reachable: set[str] = set()
    pending = list(_refs(paths))
    while pending:
        name = pending.pop()
        if name not in reachable:
            reachable.add(name)
            pending += _refs(schemas[name])
    kept = {name: json.loads(json.dumps(schemas[name])) for name in reachable}
    # Ownership is auth too: an item has an owner only where there are principals.
    item = kept["ItemPublic"]
    item["properties"].pop("owner_id", None)
    item["required"] = [field for field in item["required"] if field != "owner_id"]
    return {
        "openapi": document["openapi"],
        "info": document["info"],
        "paths": paths,
        "schemas": kept,
    }


@pytest.mark.slow
def test_the_openapi_documents_differ_only_where_auth_differs(
    installs: Callable[[str], Path], tmp_path: Path
) -> None:
    documents = {style.name: _openapi(installs(style.name), tmp_path) for style in STYLES}
    for style in STYLES:
        document = documents[style.name]
        assert {p for p in document["paths"] if p.startswith("/api/v1/")} >= style.auth_paths
        schemes = document.get("components", {}).get("securitySchemes", {})
        assert set(schemes) == style.security_schemes
    assert documents["api_key"]["components"]["securitySchemes"]["APIKeyHeader"]["in"] == "header"

    normalised = {
        name: _without_auth(document, BY_NAME[name]) for name, document in documents.items()
    }
    assert set(normalised["jwt"]["paths"]) == {
        "/health",
        "/health/ready",
        "/api/v1/items",
        "/api/v1/items/{item_id}",
    }
    assert normalised["api_key"] == normalised["jwt"]
    assert normalised["none"] == normalised["jwt"]
    assert "owner_id" in documents["jwt"]["components"]["schemas"]["ItemPublic"]["properties"]
    assert "owner_id" in documents["api_key"]["components"]["schemas"]["ItemPublic"]["properties"]
