"""Copier update step: refuse to change the answers that an existing project cannot follow.

Some answers shape what a project has built on top of the render, so `copier update` cannot
switch them without losing or breaking the user's work:

- `auth`: each style ships a different first Alembic revision (users and refresh tokens,
  API keys and clients, or items with no owner), so the project's own later migrations, and
  every database already migrated, would no longer match the code;
- `package_name`: it names `src/<package_name>/` and every import, so the update would
  render a new package and delete the old one, with the user's code in it;
- `project_slug`: it is the distribution name that the lock file records and the name of
  the Docker image, so an update would rename them under the lock file and deployments.

Each refusal says why, and the way to get there by hand.

Usage (from the project directory, as Copier runs it):
    python guard_answers.py NAME=REQUESTED ...           before the update: each REQUESTED
                                                         is the --data value, or ""
    python guard_answers.py --after NAME=NEW ...         after the update: each NEW is the
                                                         answer now recorded
Before, it compares with `.copier-answers.yml` (not yet rewritten); after, with the answers
as committed (git's HEAD: Copier updates only clean trees), since an answer changed at the
prompt is only known then; the refusal then says how to undo the update.
"""

import re
import sys
from pathlib import Path

from _committed import committed_text

# For each answer that cannot change: why, and what to do instead ({old} and {new} are the
# recorded and the requested value).
FIXED = {
    "auth": (
        "each style ships a different first migration, so your migrations and database would "
        "no longer match",
        "render a new project with auth={new} and move your code into it.",
    ),
    "package_name": (
        "it names src/{old}/ and every import, so the update would render src/{new}/ and "
        "delete src/{old}/ with your code in it",
        "keep the name (it is only the import name), or render a new project with "
        "package_name={new} and move your code into it.",
    ),
    "project_slug": (
        "it is the distribution name your lock file records and the name of the Docker "
        "image, so the update would rename them under your lock file and deployments",
        "to rename, edit name in pyproject.toml (then refresh the lock) and image in "
        "compose.yaml by hand: later updates keep your edits like any others.",
    ),
}
UNDO = " Undo this update with: git reset --hard && git clean -fd"


def recorded_answers(project: Path, *, committed: bool) -> dict[str, str]:
    """The fixed answers as `.copier-answers.yml` records them, now or at HEAD."""
    if committed:
        text = committed_text(project, ".copier-answers.yml") or ""
    else:
        answers = project / ".copier-answers.yml"
        text = answers.read_text(encoding="utf-8") if answers.is_file() else ""
    found = {}
    for name in FIXED:
        match = re.search(rf"^{name}:\s*['\"]?([\w.-]+)", text, re.MULTILINE)
        if match:
            found[name] = match.group(1)
    return found


def refusals(recorded: dict[str, str], requested: dict[str, str]) -> list[str]:
    messages = []
    for name, (reason, instead) in FIXED.items():
        old, new = recorded.get(name), requested.get(name, "")
        if not new or old is None or new == old:
            continue
        messages.append(
            f"{name} cannot be changed by copier update (this project has {name}={old}): "
            f"{reason.format(old=old, new=new)}; {instead.format(old=old, new=new)}"
        )
    return messages


def main(project: Path, arguments: list[str]) -> int:
    after = "--after" in arguments
    requested = dict(argument.split("=", 1) for argument in arguments if argument != "--after")
    messages = refusals(recorded_answers(project, committed=after), requested)
    if messages:
        print("\n".join(messages) + (UNDO if after else ""), file=sys.stderr)
    return 1 if messages else 0


if __name__ == "__main__":
    sys.exit(main(Path.cwd(), sys.argv[1:]))
