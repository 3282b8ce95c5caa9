"""The default service (sqlite + jwt + uv): its files, migrations and a served instance.

Its lint, strict types and own suite run with every other variant in tests/test_matrix.py.
"""

import json
import re
import shutil
import tomllib
from pathlib import Path

import copier
import jinja2
import pytest
import yaml
from packaging.requirements import Requirement

from harness import TEMPLATE_ROOT, assert_no_jinja_residue, exercise_jwt_api, render, run, serve, uv


def test_no_jinja_residue_is_left(default_project: Path) -> None:
    assert_no_jinja_residue(default_project)


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
    versions = sorted((default_project / "migrations" / "versions").glob("*.py"))
    date_prefixed = r"\d{4}_\d{2}_\d{2}_\d{4}-[0-9a-f]{12}_\w+\.py"
    assert all(re.fullmatch(date_prefixed, version.name) for version in versions)
    assert versions[0].name.endswith("_initial_schema.py")
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


def test_without_sentry_nothing_of_it_is_rendered(default_project: Path) -> None:
    """No module, test, dependency, setting or README section: only the recorded answer."""
    answers = yaml.safe_load((default_project / ".copier-answers.yml").read_text())
    assert answers["sentry"] is False
    for path in default_project.rglob("*"):
        if path.is_file() and path.name != ".copier-answers.yml":
            assert "sentry" not in path.name.lower(), path
            assert b"sentry" not in path.read_bytes().lower(), path


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
def test_migrations_upgrade_check_and_downgrade(
    installed_default_project: Path, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"}
    run([uv(), "run", "alembic", "upgrade", "head"], installed_default_project, env=env)
    run([uv(), "run", "alembic", "check"], installed_default_project, env=env)
    run([uv(), "run", "alembic", "downgrade", "base"], installed_default_project, env=env)
    run([uv(), "run", "alembic", "upgrade", "head"], installed_default_project, env=env)


@pytest.mark.slow
def test_the_service_serves_the_whole_flow_over_http(
    installed_default_project: Path, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'served.db'}"}
    run([uv(), "run", "alembic", "upgrade", "head"], installed_default_project, env=env)
    with serve(installed_default_project, env) as server:
        exercise_jwt_api(server.base_url)
    # The access log is JSON and carries the request id that the client saw.
    lines = [json.loads(line) for line in server.log.splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/api/v1/items" and line.get("request_id") for line in lines)


@pytest.mark.parametrize(
    ("path", "typo", "message"),
    [
        ("template/README.md.jinja", "{{ pakage_name }}", "'pakage_name' is undefined"),
        (
            "template/{% if ci == 'github' %}.github{% endif %}/workflows/ci.yml.jinja",
            "# {{ pm.rum }}",
            "has no attribute 'rum'",
        ),
    ],
)
def test_a_misspelt_variable_fails_the_render_and_names_it(
    tmp_path: Path, path: str, typo: str, message: str
) -> None:
    """copier.yml renders with StrictUndefined: a typo is an error, never an empty string."""
    template = tmp_path / "template-copy"
    template.mkdir()
    for name in ("copier.yml", "template", "includes", "copier_migrations"):
        source = TEMPLATE_ROOT / name
        if source.is_dir():
            shutil.copytree(source, template / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, template / name)
    with (template / path).open("a") as file:
        file.write(f"\n{typo}\n")
    destination = tmp_path / "my-service"
    with pytest.raises(jinja2.UndefinedError, match=re.escape(message)):
        copier.run_copy(
            str(template),
            str(destination),
            data={"project_name": "My Service"},
            defaults=True,
            unsafe=True,
            quiet=True,
        )
    assert not destination.exists()  # nothing half-rendered is left behind


# Releases with a published vulnerability that the rendered service's code path reaches: no
# declared dependency may admit them.
VULNERABLE = {"pyjwt": ["2.10.0"]}  # CVE-2024-53861: a partial match of the issuer passed


def test_no_dependency_admits_a_release_with_a_known_vulnerability(
    default_project: Path,
) -> None:
    pyproject = tomllib.loads((default_project / "pyproject.toml").read_text())
    declared = {
        (requirement := Requirement(line)).name.lower(): requirement.specifier
        for line in pyproject["project"]["dependencies"]
    }
    for name, releases in VULNERABLE.items():
        assert name in declared, f"{name} is no longer a dependency: drop it from VULNERABLE"
        admitted = [release for release in releases if declared[name].contains(release)]
        assert not admitted, f"{name}{declared[name]} admits {admitted}"
