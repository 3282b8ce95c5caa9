"""Copier update step: keep the local `.env` on the database the project is switching to.

`.env` belongs to the user and `copier update` never rewrites it, so after switching the
`database` answer (`copier update --data database=postgresql`) it would still name the old
database, and the service would refuse to start. Run after every update, this compares the
answer recorded before it (`.copier-answers.yml` as committed, git's HEAD; Copier updates
only clean trees) with the new one; when they differ it comments out
the old database settings in `.env`, appends the new database's, and says what it did. For a
server it keeps the password `.env` already has (set, or commented out by an earlier switch):
compose's `db` service reads it too, and a data volume that was created with it keeps
accepting only it. Only when there is none (a switch from SQLite) is a fresh one generated.
When the answer does not change it does nothing, so it runs on every update.

Usage (from the project directory, as Copier runs it):
    python env_database.py NEW_DATABASE PACKAGE_NAME
"""

import re
import secrets
import sys
from pathlib import Path

from _committed import committed_text

_PORTS = {"postgresql": 5432, "mysql": 3306}
_DATABASE_SETTING = re.compile(r"^(DATABASE_URL|DB_HOST|DB_PORT|DB_USER|DB_PASSWORD|DB_NAME)=")
_RECORDED = re.compile(r"^database:\s*['\"]?(\w+)", re.MULTILINE)
_PASSWORD = re.compile(r"^DB_PASSWORD=(\S+)")
# A password this step commented out at an earlier switch.
_OLD_PASSWORD = re.compile(r"^# DB_PASSWORD=(\S+)  \(for \w+; commented out by copier update\)")


def _existing_password(lines: list[str]) -> str | None:
    """The password `.env` sets, else the last one an earlier switch commented out."""
    for pattern in (_PASSWORD, _OLD_PASSWORD):
        found = [match.group(1) for line in lines if (match := pattern.match(line))]
        if found:
            return found[-1]
    return None


def _settings_for(database: str, package: str, password: str | None) -> list[str]:
    if database == "sqlite":
        return [f"DATABASE_URL=sqlite+aiosqlite:///./{package}.db"]
    return [
        "DB_HOST=localhost",
        f"DB_PORT={_PORTS[database]}",
        f"DB_USER={package}",
        f"DB_PASSWORD={password or secrets.token_hex(16)}",
        f"DB_NAME={package}",
    ]


def main(project: Path, database: str, package: str) -> int:
    env = project / ".env"
    if database not in {"sqlite", *_PORTS} or not env.is_file():
        return 0
    before = committed_text(project, ".copier-answers.yml")
    recorded = _RECORDED.search(before) if before is not None else None
    if recorded is None or recorded.group(1) == database:
        return 0
    current = env.read_text(encoding="utf-8").splitlines()
    password = _existing_password(current)
    lines = [
        f"# {line}  (for {recorded.group(1)}; commented out by copier update)"
        if _DATABASE_SETTING.match(line)
        else line
        for line in current
    ]
    lines += [
        f"# Added by copier update for database={database}:",
        *_settings_for(database, package, password),
    ]
    # Rewritten in place, so the file keeps its mode (0600: it holds secrets).
    env.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f".env: switched from {recorded.group(1)} to {database} settings")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path.cwd(), sys.argv[1], sys.argv[2]))
