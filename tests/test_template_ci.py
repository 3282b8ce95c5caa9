"""The template's own GitHub Actions workflow: valid, and covering every variant."""

import itertools
from pathlib import Path
from typing import Any

import yaml
from test_matrix import AUTHS, DATABASES, PACKAGE_MANAGERS

from harness import TEMPLATE_ROOT, actionlint, check_schema

WORKFLOW = TEMPLATE_ROOT / ".github" / "workflows" / "ci.yml"


def _workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_the_workflow_passes_actionlint_and_the_schema() -> None:
    actionlint(WORKFLOW)
    check_schema("vendor.github-workflows", WORKFLOW)


def test_the_variant_jobs_are_exactly_the_test_matrix() -> None:
    variant = _workflow()["jobs"]["variant"]
    matrix = variant["strategy"]["matrix"]
    jobs = set(itertools.product(matrix["database"], matrix["auth"], matrix["package_manager"]))
    assert jobs == set(itertools.product(DATABASES, AUTHS, PACKAGE_MANAGERS))
    services = variant["services"]
    assert set(services) == {"postgres", "mariadb", "redis"}
    env = variant["env"]
    assert env["TEMPLATE_TESTS_POSTGRESQL_URL"].startswith("postgresql+asyncpg://")
    assert env["TEMPLATE_TESTS_MYSQL_URL"].startswith("mysql+asyncmy://")


def test_the_jobs_run_the_same_entry_points_as_ci_run() -> None:
    steps = {
        name: " ".join(str(step.get("run", "")) for step in job["steps"])
        for name, job in _workflow()["jobs"].items()
    }
    assert 'uv run pytest -m "not slow"' in steps["render"]
    assert "uv run pytest tests/test_matrix.py -m slow" in steps["variant"]
    assert "uv run pytest -m slow" in steps["servers"]
    assert "--ignore=tests/test_matrix.py" in steps["servers"]
    assert "mkdocs build --strict" in steps["docs"]
    assert "ruff check" in steps["lint"]
    # Together the pytest jobs run what .ci/run runs: the README's test command.
    readme = (TEMPLATE_ROOT / "README.md").read_text()
    assert "uv run pytest" in readme
    assert Path(TEMPLATE_ROOT / ".ci" / "run").is_file()
