"""Copier migration: give a project's local `.env` the settings that this update added.

`.env` belongs to the user (it is in `_skip_if_exists`, so `copier update` never rewrites
it). When an update adds a setting to `.env.example`, this copies that `KEY=value` line into
`.env`, unless `.env` already sets the key; everything else in `.env` (the secret included)
is left alone, and settings that were in `.env.example` before the update are not copied
(their defaults live in the code). Empty example values (secrets) are never copied: the
service says at startup which required setting is missing. What the update added is the
difference between `.env.example` as committed (git's HEAD, before the update) and as the
update left it. Idempotent, offline, standard library only; it prints what it added.

Usage (from the project directory, as Copier runs it): python sync_env.py
"""

import re
import sys
from pathlib import Path

from _committed import committed_text

_SETTING = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def _settings(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        match = _SETTING.match(line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def main(project: Path) -> int:
    env, example = project / ".env", project / ".env.example"
    if not env.is_file() or not example.is_file():
        return 0
    before = committed_text(project, ".env.example")
    if before is None:
        return 0
    present = _settings(env.read_text(encoding="utf-8"))
    old = _settings(before)
    missing = {
        key: value
        for key, value in _settings(example.read_text(encoding="utf-8")).items()
        if key not in old and key not in present and value.strip()
    }
    if not missing:
        return 0
    text = env.read_text(encoding="utf-8")
    lines = [] if text.endswith("\n") or not text else [""]
    lines.append("# Added by `copier update` from .env.example:")
    lines += [f"{key}={value}" for key, value in missing.items()]
    env.write_text(text + "\n".join(lines) + "\n", encoding="utf-8")
    print(f".env: added {', '.join(missing)} from .env.example")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path.cwd()))
