"""The rendered `.pre-commit-config.yaml`: local hooks that run the project's own tools.

Fast layer: each package manager's render runs its tools the way its README does, every hook
is `repo: local` + `language: system` (nothing to clone), and pre-commit is a dev dependency.
Slow layer: the default render, installed, runs `pre-commit run --all-files` offline, and
the hooks stop a commit that brings a lint error.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_copie.plugin import Copie

from harness import PACKAGE_MANAGERS, RUN_PREFIX, render, run, run_failing, uv

CONFIG = ".pre-commit-config.yaml"
# (hook id, command after the run prefix, gets the staged file names)
HOOKS = [
    ("ruff-format", "ruff format", True),
    ("ruff-check", "ruff check --fix", True),
    ("mypy", "mypy", False),
    ("alembic-check", "alembic check", False),
]


def _hooks(project: Path) -> list[dict[str, Any]]:
    config = yaml.safe_load((project / CONFIG).read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks: list[dict[str, Any]] = config["repos"][0]["hooks"]
    return hooks


@pytest.mark.parametrize("manager", PACKAGE_MANAGERS)
def test_every_hook_is_local_and_runs_the_projects_tool_as_its_readme_does(
    copie: Copie, manager: str
) -> None:
    result = copie.copy(extra_answers={"package_manager": manager})
    assert result.exit_code == 0, result.exception
    assert result.project_dir is not None
    project = result.project_dir
    hooks = _hooks(project)
    assert [(hook["id"], hook["entry"]) for hook in hooks] == [
        (hook_id, RUN_PREFIX[manager] + command) for hook_id, command, _ in HOOKS
    ]
    for hook, (_, _, filenames) in zip(hooks, HOOKS, strict=True):
        assert hook["language"] == "system", hook
        assert hook.get("pass_filenames", True) is filenames, hook
    alembic = hooks[-1]
    assert alembic["files"] == "^(src/my_service/models/|migrations/)"

    readme = (project / "README.md").read_text()
    assert f"{RUN_PREFIX[manager]}pre-commit install\n" in readme
    # The lint commands of the README are the hooks' commands.
    assert f"{RUN_PREFIX[manager]}ruff check ." in readme
    assert f"{RUN_PREFIX[manager]}mypy" in readme
    declared = (project / ("Pipfile" if manager == "pipenv" else "pyproject.toml")).read_text()
    assert '"pre-commit' in declared or "pre-commit =" in declared


def _env(project: Path) -> dict[str, str]:
    """Offline (uv may not resolve or download anything), pre-commit's cache in the test's
    own directory, and a git identity."""
    return {
        "UV_OFFLINE": "1",
        "PRE_COMMIT_HOME": str(project.parent / "pre-commit-home"),
        "GIT_AUTHOR_NAME": "Template Tests",
        "GIT_AUTHOR_EMAIL": "tests@example.com",
        "GIT_COMMITTER_NAME": "Template Tests",
        "GIT_COMMITTER_EMAIL": "tests@example.com",
    }


@pytest.mark.slow
def test_the_hooks_pass_on_a_fresh_render_and_stop_a_commit_with_a_lint_error(
    tmp_path: Path,
) -> None:
    project = render(tmp_path / "my-service")
    run(["git", "init", "-q", "-b", "main"], project)
    run([uv(), "sync", "--quiet"], project)  # the README's install: writes uv.lock
    env = _env(project)
    run([uv(), "run", "alembic", "upgrade", "head"], project, env=env)
    run(["git", "add", "-A"], project)
    run([uv(), "run", "pre-commit", "install"], project, env=env)
    assert (project / ".git/hooks/pre-commit").is_file()

    checked = run([uv(), "run", "pre-commit", "run", "--all-files"], project, env=env)
    for name in ("ruff format", "ruff check", "mypy (strict)", "alembic check"):
        assert any(
            line.startswith(name) and line.endswith("Passed")
            for line in checked.stdout.splitlines()
        ), (name, checked.stdout)
    # Local hooks only: pre-commit cloned no hook repository into its cache.
    home = Path(env["PRE_COMMIT_HOME"])
    cloned = [path.name for path in home.iterdir() if path.is_dir()] if home.exists() else []
    assert cloned == [], cloned
    run(["git", "commit", "-qm", "render"], project, env=env)  # the hooks pass on commit

    # A name that is not defined (F821): ruff cannot fix it, so the commit is refused.
    module = project / "src/my_service/core/broken.py"
    module.write_text("def answer() -> int:\n    return undefined_name\n")
    run(["git", "add", str(module)], project)
    refused = run_failing(["git", "commit", "-qm", "broken"], project, env=env)
    output = refused.stdout + refused.stderr
    assert "F821" in output, output
    assert "undefined_name" in output, output
    assert run(["git", "status", "--porcelain"], project).stdout.startswith("A "), (
        "the file is still staged, not committed"
    )
