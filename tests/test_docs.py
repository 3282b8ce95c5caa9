"""The documentation site in docs/: it builds strictly, and it says what the template does.

- the site builds with `mkdocs build --strict` (any warning or broken link fails), offline;
- the options reference documents every question of copier.yml, with its help text, its
  fixed default and exactly its choices;
- the getting-started page shows only the README's two marked commands, verbatim; CI runs
  the template-tests one, and a slow test here runs the render-and-run one;
- its tour of the rendered tree lists exactly the files of the default render.
"""

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import TEMPLATE_ROOT, child_env, free_port, run, serving, uv

DOCS = TEMPLATE_ROOT / "docs"
README = TEMPLATE_ROOT / "README.md"
OPTIONS = DOCS / "options.md"
GETTING_STARTED = DOCS / "getting-started.md"
MARKERS = ("render-and-run", "template-tests")


# ------------------------------------------------------------------ parsing ---


def questions() -> dict[str, dict[str, Any]]:
    """The questions of copier.yml: top-level keys not starting with `_`, minus computed ones."""
    config = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    return {
        name: spec
        for name, spec in config.items()
        if not name.startswith("_") and spec.get("when") is not False
    }


def choice_values(spec: dict[str, Any]) -> set[str]:
    """The values a question accepts: a list of values, or labels mapped to a value or a dict."""
    choices = spec.get("choices")
    if choices is None:
        return set()
    if isinstance(choices, list):
        return {str(choice) for choice in choices}
    return {str(value["value"] if isinstance(value, dict) else value) for value in choices.values()}


def question_sections(text: str) -> dict[str, str]:
    """Each "### `name`" heading of the options page, with the text up to the next heading."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        heading = re.fullmatch(r"### `([A-Za-z0-9_]+)`\s*", line)
        if heading:
            current = heading.group(1)
            assert current not in sections, f"{current} is documented twice"
            sections[current] = ""
        elif line.startswith("#"):
            current = None
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def table_first_cells(text: str, header: str) -> list[str]:
    """The first cells of the rows of each table whose first header cell is `header`."""
    cells: list[str] = []
    in_table = False
    for line in text.splitlines():
        row = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            in_table = False
        elif row[0] == header:
            in_table = True
        elif in_table and not set(row[0]) <= {"-", ":"}:
            cells.append(row[0])
    return cells


def backticked(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected one `value` in the first cell, got {cell!r}"
    return match.group(1)


def normalized(text: str) -> str:
    """Markdown prose without blockquote marks and line breaks, for comparing sentences."""
    return " ".join(re.sub(r"^> ?", "", text, flags=re.MULTILINE).split())


def marked_block(path: Path, marker: str) -> str:
    """The body of the fenced block that follows `<!-- marker -->` in a Markdown file."""
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == f"<!-- {marker} -->"]
    assert len(starts) == 1, f"{path.name} needs exactly one <!-- {marker} --> marker"
    fence = starts[0] + 1
    assert lines[fence].startswith("```"), f"a fenced block must follow the {marker} marker"
    end = lines.index("```", fence + 1)
    return "\n".join(lines[fence + 1 : end])


def fenced_blocks(path: Path) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)\n```$", path.read_text(), flags=re.MULTILINE | re.DOTALL)


def ci_command() -> str:
    """What .ci/run runs: the second line after the template-tests marker (its awk script)."""
    ci_script = (TEMPLATE_ROOT / ".ci" / "run").read_text()
    assert "/<!-- template-tests -->/ {getline; getline; print; exit}" in ci_script
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "<!-- template-tests -->" in line)
    return lines[start + 2]


# -------------------------------------------------------------- the build ---


def test_the_site_builds_strictly_and_loads_nothing_from_elsewhere(tmp_path: Path) -> None:
    """Any warning (a broken link or anchor, a page missing from nav) fails the build.

    Not `--quiet`: it hides warnings from the counter that `--strict` reads, so a quiet
    strict build passes with broken links.
    """
    site = tmp_path / "site"
    run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        TEMPLATE_ROOT,
        env={"NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 9, pages
    for page in pages:
        html = page.read_text()
        # Links to other sites are fine; loading a script, style or font from one is not.
        remote = re.findall(r'<(?:script|img)[^>]+src="https?://[^"]+"', html)
        remote += re.findall(r'<link[^>]+rel="(?:stylesheet|preconnect)"[^>]+>', html)
        remote = [tag for tag in remote if "http" in tag]
        assert not remote, f"{page} loads {remote}"


# ------------------------------------------------------ the options page ---


def test_every_question_is_documented_and_nothing_else() -> None:
    documented = set(question_sections(OPTIONS.read_text()))
    asked = set(questions())
    assert not asked - documented, f"questions missing from docs/options.md: {asked - documented}"
    assert not documented - asked, (
        f"docs/options.md documents no such question: {documented - asked}"
    )


@pytest.mark.parametrize("name", sorted(questions()))
def test_the_documented_choices_are_exactly_the_questions_choices(name: str) -> None:
    section = question_sections(OPTIONS.read_text()).get(name, "")
    documented = [backticked(cell) for cell in table_first_cells(section, "choice")]
    assert len(documented) == len(set(documented)), f"{name}: a choice is listed twice"
    actual = choice_values(questions()[name])
    assert not set(documented) - actual, (
        f"{name}: docs/options.md documents choices that copier.yml does not have: "
        f"{set(documented) - actual}"
    )
    assert not actual - set(documented), (
        f"{name}: choices missing from the table in docs/options.md: {actual - set(documented)}"
    )


@pytest.mark.parametrize("name", sorted(questions()))
def test_the_help_text_and_the_default_match_copier_yml(name: str) -> None:
    spec = questions()[name]
    section = question_sections(OPTIONS.read_text()).get(name, "")
    assert normalized(spec["help"]) in normalized(section), (
        f"{name}: quote its help text from copier.yml in docs/options.md:\n> {spec['help']}"
    )
    default = spec["default"]
    if isinstance(default, str) and "{{" in default:
        return  # a derived default is described in words
    shown = str(default).lower() if isinstance(default, bool) else str(default)
    assert f"**Default:** `{shown}`" in section, f"{name}: the default is `{shown}`"


# ------------------------------------------------- the getting-started page ---


@pytest.mark.parametrize("marker", MARKERS)
def test_the_getting_started_commands_are_the_readmes(marker: str) -> None:
    assert marked_block(GETTING_STARTED, marker) == marked_block(README, marker)


def test_the_getting_started_page_shows_no_other_command() -> None:
    readme_commands = {marked_block(README, marker) for marker in MARKERS}
    for block in fenced_blocks(GETTING_STARTED):
        assert block in readme_commands, f"an untested command on getting-started.md:\n{block}"


def test_ci_runs_the_template_tests_command_of_the_page() -> None:
    assert ci_command() == marked_block(GETTING_STARTED, "template-tests")


def test_the_tour_lists_every_file_of_the_default_render(default_project: Path) -> None:
    text = GETTING_STARTED.read_text()
    tour = text[text.index("## A tour of the rendered tree") :]
    listed = [backticked(cell) for cell in table_first_cells(tour, "path")]
    rendered = {
        path.relative_to(default_project).as_posix()
        for path in default_project.rglob("*")
        if path.is_file() and ".git" not in path.parts
    }
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert not rendered - set(listed), f"files missing from the tour: {rendered - set(listed)}"
    assert not set(listed) - rendered, f"the render has no such file: {set(listed) - rendered}"
    assert listed == sorted(listed), "keep the tour in path order (as `sorted` orders it)"


# ------------------------------------------------------------------- slow ---


@pytest.mark.slow
def test_the_render_and_run_command_serves_the_service(tmp_path: Path) -> None:
    """Run the README's render-and-run command as written, from a copy of the working tree.

    Two substitutions, both checked here: the leading `python3 -m pip install uv` is left
    out (it is the same step that starts the template-tests command, which CI runs on every
    build, and here uv is already the template's own), and `--port <free port>` is appended
    to the final `uv run fastapi dev`, so that the server cannot collide with anything on
    8000. The command runs in a shell of its own (a new session), from a copy of the
    working tree in a temporary directory, so its `../my-service` lands there too. Once
    `/health` answers, the whole process group (uv, the reloader and the server) is stopped.
    """
    command = marked_block(README, "render-and-run")
    install, rest = command.split(" && ", 1)
    assert install == "python3 -m pip install uv"
    assert marked_block(README, "template-tests").startswith(install + " && ")
    assert rest.startswith("uvx copier copy ")
    assert rest.endswith(" && uv run fastapi dev")

    clone = tmp_path / "clone"
    shutil.copytree(
        TEMPLATE_ROOT,
        clone,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "site", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"
        ),
    )
    port = free_port()
    env = child_env()
    env["PATH"] = os.pathsep.join([str(Path(uv()).parent), env.get("PATH", "")])
    log_path = tmp_path / "server.log"
    with serving(f"{rest} --port {port}", clone, env=env, log_path=log_path) as process:
        statuses = _wait_for_statuses(
            f"http://127.0.0.1:{port}", ["/health", "/health/ready", "/docs"], process
        )
    assert statuses == [200, 200, 200], log_path.read_text(errors="replace")[-5000:]
    assert (tmp_path / "my-service" / "my_service.db").is_file()


def _wait_for_statuses(
    base: str, paths: list[str], process: subprocess.Popen[bytes], timeout: float = 600
) -> list[int]:
    """Wait until the first path answers 200, then return the status of each path."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return [-process.returncode]
        try:
            statuses = []
            for path in paths:
                with urllib.request.urlopen(base + path, timeout=5) as response:  # noqa: S310
                    statuses.append(response.status)
            return statuses
        except OSError:
            time.sleep(0.5)
    return [0]


def test_the_readme_points_to_the_docs() -> None:
    readme = README.read_text()
    assert "uv run mkdocs serve" in readme
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert "docs/index.md" in links
    for link in links:
        assert (TEMPLATE_ROOT / link).is_file(), f"README.md links to a missing page: {link}"
