"""The harness's own rules, where a slip would hide or invent failures in the renders.

An install reaches the live package index, and an index can serve a page that lags a release
by a moment. `install_with_readme` runs a README's install once more when, and only when, its
output looks like that: a defect of the template must fail on the first try.
"""

from pathlib import Path

import pytest

import harness
from harness import install_with_readme

# A README whose install counts its attempts in `attempts`, then prints what the n-th attempt
# should print (one line of OUTCOMES each) and exits with its code.
README = """# A service

<!-- install -->
```bash
n=$(( $(cat attempts 2>/dev/null || echo 0) + 1 )); echo "$n" > attempts
line=$(sed -n "${n}p" outcomes); echo "${line#* }" >&2; exit "${line%% *}"
```
"""

HICCUP = "1 ERROR: No matching distribution found for typer==0.29.3"
DEFECT = "1 ERROR: Cannot install my-service because these package versions have conflicts"
SUCCESS = "0 Installed"


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "REGISTRY_RETRY_PAUSE", 0.0)


def _project(tmp_path: Path, *outcomes: str) -> Path:
    (tmp_path / "README.md").write_text(README)
    (tmp_path / "outcomes").write_text("\n".join(outcomes) + "\n")
    return tmp_path


def _attempts(project: Path) -> int:
    return int((project / "attempts").read_text())


def test_an_index_hiccup_is_retried_once_and_shown(tmp_path: Path) -> None:
    project = _project(tmp_path, HICCUP, SUCCESS)
    with pytest.warns(UserWarning, match="No matching distribution found for typer"):
        result = install_with_readme(project, {})
    assert result.returncode == 0
    assert _attempts(project) == 2


def test_a_second_hiccup_fails_the_test(tmp_path: Path) -> None:
    project = _project(tmp_path, HICCUP, HICCUP, SUCCESS)
    with (
        pytest.warns(UserWarning, match="retrying once"),
        pytest.raises(pytest.fail.Exception, match="No matching distribution found"),
    ):
        install_with_readme(project, {})
    assert _attempts(project) == 2


def test_any_other_failure_fails_at_once(tmp_path: Path) -> None:
    project = _project(tmp_path, DEFECT, SUCCESS)
    with pytest.raises(pytest.fail.Exception, match="these package versions have conflicts"):
        install_with_readme(project, {})
    assert _attempts(project) == 1


def test_a_clean_install_runs_once(tmp_path: Path) -> None:
    project = _project(tmp_path, SUCCESS, HICCUP)
    assert install_with_readme(project, {}).returncode == 0
    assert _attempts(project) == 1
