"""Copier update step: keep the local `.env` on the database the project uses.

`.env` belongs to the user and `copier update` never rewrites it, so after switching the
`database` answer (`copier update --data database=postgresql`) it would still name the old
database, and the service would refuse to start. Run after every update, this compares the
answer recorded before it (`.copier-answers.yml` as committed, git's HEAD; Copier updates
only clean trees) with the new one; when they differ it comments out the old database
settings in `.env`, appends the new database's, and says what it did.

Passwords are kept: for a server it keeps the `DB_PASSWORD` (and, with Docker, the
`DB_SUPERUSER_PASSWORD`) that `.env` already has, set or commented out by an earlier switch,
since compose's `db` service reads them too and a data volume created with them accepts no
other. Only when there is none (a switch from SQLite) is a fresh one generated.

With Docker and a server database, it also adds `DB_SUPERUSER_PASSWORD` when `.env` has
none (a project rendered before compose's `db` service needed it). Otherwise it does
nothing, so it runs on every update. `.env` is rewritten in place, so it keeps its mode.

Usage (from the project directory, as Copier runs it):
    python env_database.py NEW_DATABASE PACKAGE_NAME DOCKER
where DOCKER is the `docker` answer ("True" or "False").
"""

import re
import secrets
import sys
from pathlib import Path

from _committed import committed_text

_PORTS = {"postgresql": 5432, "mysql": 3306}
_DATABASE_SETTING = re.compile(
    r"^(DATABASE_URL|DB_HOST|DB_PORT|DB_USER|DB_PASSWORD|DB_SUPERUSER_PASSWORD|DB_NAME)="
)
_RECORDED = re.compile(r"^database:\s*['\"]?(\w+)", re.MULTILINE)
_SUPERUSER_COMMENT = "# The server's superuser, for compose's `db` service only:"


def _existing(lines: list[str], key: str) -> str | None:
    """The value `.env` sets for `key`, else the last one an earlier switch commented out."""
    patterns = (
        re.compile(rf"^{key}=(\S+)"),
        re.compile(rf"^# {key}=(\S+)  \(for \w+; commented out by copier update\)"),
    )
    for pattern in patterns:
        found = [match.group(1) for line in lines if (match := pattern.match(line))]
        if found:
            return found[-1]
    return None


def _password(lines: list[str], key: str) -> str:
    return _existing(lines, key) or secrets.token_hex(16)


def _settings_for(database: str, package: str, lines: list[str], *, docker: bool) -> list[str]:
    if database == "sqlite":
        return [f"DATABASE_URL=sqlite+aiosqlite:///./{package}.db"]
    settings = [
        "DB_HOST=localhost",
        f"DB_PORT={_PORTS[database]}",
        f"DB_USER={package}",
        f"DB_PASSWORD={_password(lines, 'DB_PASSWORD')}",
        f"DB_NAME={package}",
    ]
    if docker:
        settings += [
            _SUPERUSER_COMMENT,
            f"DB_SUPERUSER_PASSWORD={_password(lines, 'DB_SUPERUSER_PASSWORD')}",
        ]
    return settings


def _write(env: Path, lines: list[str]) -> None:
    # In place (not a new file), so .env keeps its mode: 0600, it holds secrets.
    env.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(project: Path, database: str, package: str, *, docker: bool) -> int:
    env = project / ".env"
    if database not in {"sqlite", *_PORTS} or not env.is_file():
        return 0
    current = env.read_text(encoding="utf-8").splitlines()
    before = committed_text(project, ".copier-answers.yml")
    recorded = _RECORDED.search(before) if before is not None else None
    if recorded is not None and recorded.group(1) != database:
        lines = [
            f"# {line}  (for {recorded.group(1)}; commented out by copier update)"
            if _DATABASE_SETTING.match(line)
            else line
            for line in current
        ]
        lines += [
            f"# Added by copier update for database={database}:",
            *_settings_for(database, package, current, docker=docker),
        ]
        _write(env, lines)
        print(f".env: switched from {recorded.group(1)} to {database} settings")
    elif (
        database in _PORTS
        and docker
        and not any(line.startswith("DB_SUPERUSER_PASSWORD=") for line in current)
    ):
        password = f"DB_SUPERUSER_PASSWORD={_password(current, 'DB_SUPERUSER_PASSWORD')}"
        _write(env, [*current, _SUPERUSER_COMMENT, password])
        print(".env: added DB_SUPERUSER_PASSWORD for compose's db service")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path.cwd(), sys.argv[1], sys.argv[2], docker=sys.argv[3:4] == ["True"]))
