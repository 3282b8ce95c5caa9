"""Copier update step: refuse to switch the `auth` answer of an existing project.

Each auth style ships a different first Alembic revision (users and refresh tokens, API
keys and clients, or items with no owner), so after a switch the project's own later
migrations, and every database already migrated, would no longer match the code. A new
style means a new project: render one with the style you want and move your code into it.

Usage (from the project directory, as Copier runs it):
    python guard_auth.py REQUESTED          before the update: REQUESTED is --data auth, or ""
    python guard_auth.py NEW --after        after the update: NEW is the answer now recorded
Before, it compares with `.copier-answers.yml` (not yet rewritten); after, with the answers
as committed (git's HEAD: Copier updates only clean trees).
"""

import re
import sys
from pathlib import Path

from _committed import committed_text

_RECORDED = re.compile(r"^auth:\s*['\"]?(\w+)", re.MULTILINE)


def _recorded_auth(project: Path, *, committed: bool) -> str | None:
    if committed:
        text = committed_text(project, ".copier-answers.yml") or ""
    else:
        answers = project / ".copier-answers.yml"
        text = answers.read_text(encoding="utf-8") if answers.is_file() else ""
    match = _RECORDED.search(text)
    return match.group(1) if match else None


def main(project: Path, requested: str, *, after: bool) -> int:
    recorded = _recorded_auth(project, committed=after)
    if not requested or recorded is None or requested == recorded:
        return 0
    message = (
        f"auth cannot be changed by copier update (this project has auth={recorded}): each "
        "style ships a different first migration, so your migrations and database would no "
        f"longer match; render a new project with auth={requested} and move your code into it."
    )
    if after:
        message += " Undo this update with: git reset --hard && git clean -fd"
    print(message, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(Path.cwd(), sys.argv[1], after="--after" in sys.argv[2:]))
