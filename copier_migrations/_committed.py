"""What a file said in the project's last commit, for the update steps beside this module.

`copier update` runs only on a clean git tree, so while it runs, HEAD holds the project as it
was before the update. Each step runs as a script, so Python finds this module beside it.
"""

import subprocess
from pathlib import Path


def committed_text(project: Path, path: str) -> str | None:
    """The text of `path` at HEAD, or None when there is no git or no such file."""
    shown = subprocess.run(  # noqa: S603 - a fixed git command
        ["git", "show", f"HEAD:{path}"],  # noqa: S607 - the user's git
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else None
