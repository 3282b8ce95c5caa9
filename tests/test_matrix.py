"""Every variant, database x auth x package manager, in one table with one helper.

Fast layer (no marker): render, no Jinja residue, the project files parse, and
`ruff format --check`, `ruff check` and strict mypy pass on the render.
`sentry` is on in a few chosen variants (SENTRY), not a product axis.
Slow layer (`slow`): install the render with its own package manager and run its own
suite on its real database (and its real Redis), with the commands of the render's own
README.

Select one variant with `-k`, e.g. `uv run pytest tests/test_matrix.py -k postgresql-jwt-uv`.
"""

import itertools
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from servers import DatabaseServer

from harness import (
    TEMPLATE_ROOT,
    assert_no_jinja_residue,
    install_and_test_with_readme,
    render,
    run,
    tool,
    uv,
)

DATABASES = ("sqlite", "postgresql", "mysql")
AUTHS = ("jwt", "api_key", "none")
PACKAGE_MANAGERS = ("uv", "poetry", "pipenv", "pip")


@dataclass(frozen=True)
class Variant:
    database: str
    auth: str
    package_manager: str
    redis: bool = False
    sentry: bool = False
    metrics: bool = False

    def __str__(self) -> str:
        name = f"{self.database}-{self.auth}-{self.package_manager}"
        name = f"{name}-redis" if self.redis else name
        name = f"{name}-sentry" if self.sentry else name
        return f"{name}-metrics" if self.metrics else name

    @property
    def answers(self) -> dict[str, str | bool]:
        return {
            "database": self.database,
            "auth": self.auth,
            "package_manager": self.package_manager,
            "redis": self.redis,
            "sentry": self.sentry,
            "metrics": self.metrics,
        }


def _built_choices(question: str) -> tuple[str, ...]:
    """The choices of a copier.yml question that are built (not disabled by a validator)."""
    spec = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())[question]
    built = []
    for choice in spec["choices"].values():
        if isinstance(choice, dict):
            if "validator" not in choice:
                built.append(choice["value"])
        else:
            built.append(choice)
    return tuple(built)


# `sentry` and `metrics` are on in a few variants rather than product axes: each database,
# each auth style and Redis once, all of them installed and run by the slow layer. Two
# variants have both, so that they are also proven together.
SENTRY = {
    ("sqlite", "jwt", "uv", False),
    ("postgresql", "api_key", "uv", True),
    ("mysql", "none", "pipenv", False),
}
METRICS = {
    ("sqlite", "jwt", "uv", False),
    ("postgresql", "api_key", "uv", True),
    ("mysql", "none", "pip", False),
}

VARIANTS = [
    Variant(*combination, sentry=combination in SENTRY, metrics=combination in METRICS)
    for combination in itertools.product(DATABASES, AUTHS, PACKAGE_MANAGERS, (False, True))
    if combination[0] in _built_choices("database")
    and combination[1] in _built_choices("auth")
    and combination[2] in _built_choices("package_manager")
]
# The slow layer installs and runs a render's own suite: every variant without Redis; with
# Redis, every database x auth style on uv, and each other package manager once (each with
# another database and auth style).
REDIS_ELSEWHERE = {
    ("postgresql", "jwt", "poetry"),
    ("mysql", "api_key", "pipenv"),
    ("sqlite", "none", "pip"),
}
INSTALLED = [
    variant
    for variant in VARIANTS
    if not variant.redis
    or variant.package_manager == "uv"
    or (variant.database, variant.auth, variant.package_manager) in REDIS_ELSEWHERE
]


def test_the_table_covers_every_built_choice() -> None:
    questions = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    for question in ("redis", "sentry", "metrics"):
        assert questions[question]["type"] == "bool", question
    for option, chosen in [("sentry", SENTRY), ("metrics", METRICS)]:
        with_it = [variant for variant in INSTALLED if getattr(variant, option)]
        assert len(with_it) == len(chosen), option
        assert {variant.database for variant in with_it} == set(_built_choices("database"))
        assert {variant.auth for variant in with_it} == set(_built_choices("auth"))
        assert any(variant.redis for variant in with_it), option
    with_redis = [variant for variant in INSTALLED if variant.redis]
    assert {variant.package_manager for variant in with_redis} == set(
        _built_choices("package_manager")
    )
    assert {(v.database, v.auth) for v in with_redis if v.package_manager == "uv"} == set(
        itertools.product(_built_choices("database"), _built_choices("auth"))
    )
    for question, listed in [
        ("database", DATABASES),
        ("auth", AUTHS),
        ("package_manager", PACKAGE_MANAGERS),
    ]:
        assert set(_built_choices(question)) <= set(listed), question


# ----------------------------------------------------------------- fast layer ---


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for all the renders a test process checks (each xdist worker has its
    own). Mypy rechecks every file whose path or content differs from the cached one, and
    every file whose imports changed: only the libraries' analysis is shared, which is most
    of the time of a strict check."""
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.fixture(scope="session")
def lint_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment with every variant's runtime and dev dependencies, so that strict
    mypy checks each render without installing each render."""
    requirements: set[str] = set()
    for database, auth in itertools.product(DATABASES, AUTHS):
        if database not in _built_choices("database") or auth not in _built_choices("auth"):
            continue
        project = render(
            tmp_path_factory.mktemp("deps") / "p",
            database=database,
            auth=auth,
            redis=True,
            sentry=True,
            metrics=True,
        )
        pyproject = tomllib.loads((project / "pyproject.toml").read_text())
        requirements.update(pyproject["project"]["dependencies"])
        requirements.update(pyproject["dependency-groups"]["dev"])
    venv = tmp_path_factory.mktemp("lint-env") / "venv"
    run([uv(), "venv", "--quiet", str(venv)], venv.parent)
    python = venv / "bin" / "python"
    run(
        [uv(), "pip", "install", "--quiet", "--python", str(python), *sorted(requirements)],
        venv.parent,
    )
    return python


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_renders_clean_and_passes_lint_and_strict_types(
    variant: Variant, tmp_path: Path, lint_python: Path, mypy_cache: Path
) -> None:
    project = render(tmp_path / "my-service", **variant.answers)
    assert_no_jinja_residue(project)
    tomllib.loads((project / "pyproject.toml").read_text())
    for name in ("compose.yaml", ".github/workflows/ci.yml", ".pre-commit-config.yaml"):
        assert isinstance(yaml.safe_load((project / name).read_text()), dict), name
    run([tool("ruff"), "format", "--check", "."], project)
    run([tool("ruff"), "check", "."], project)
    mypy = [str(lint_python), "-m", "mypy", "--cache-dir", str(mypy_cache)]
    run(mypy, project, env={"MYPYPATH": "src"})


# ----------------------------------------------------------------- slow layer ---


@pytest.mark.slow
@pytest.mark.parametrize("variant", INSTALLED, ids=str)
def test_its_own_suite_passes_on_its_real_database(
    variant: Variant,
    tmp_path: Path,
    database_server: Callable[[str], DatabaseServer],
    package_manager_tools: Path,
) -> None:
    project = render(tmp_path / "my-service", **variant.answers)
    env = {}
    if variant.database != "sqlite":
        env["DATABASE_URL"] = database_server(variant.database).url
    if variant.redis:
        env["REDIS_URL"] = database_server("redis").url
    install_and_test_with_readme(project, package_manager_tools, env)
