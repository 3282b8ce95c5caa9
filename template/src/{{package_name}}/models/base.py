"""What every table shares: a constraint naming convention, UTC timestamps, and text that
every database can store."""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator
from sqlalchemy import DateTime, String
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import SQLModel

# Deterministic constraint names keep migrations identical on every database. Primary keys
# are left to each database's own naming: MySQL ignores (and warns about) a name there.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores the zone; SQLite and MySQL store naive UTC, and the zone is
    put back on read. MySQL keeps microseconds (DATETIME(6)) like the others.
    Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def __init__(self) -> None:
        super().__init__()

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in {"mysql", "mariadb"}:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl_instance)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime; use an aware one such as datetime.now(UTC)"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # PostgreSQL returns aware UTC datetimes already: skip a Python call per value.
        if dialect.name == "postgresql":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetime
            msg = f"unexpected timestamp value {value!r}"
            raise TypeError(msg)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ExactText(TypeDecorator[str]):
    """Text that the database compares byte for byte, with no padding, on every database.

    PostgreSQL and SQLite compare VARCHAR exactly. MySQL and MariaDB compare it through a
    collation: under `utf8mb4_*_ci`, "vïctim@corp.org" equals "victim@corp.org ", and even
    `utf8mb4_bin` ignores trailing spaces. There the column is VARBINARY (4 bytes for each
    character of `length`, UTF-8), which compares bytes and pads nothing, on both servers.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in {"mysql", "mariadb"}:
            return dialect.type_descriptor(mysql.VARBINARY(self.length * 4))
        return dialect.type_descriptor(self.impl_instance)

    # Only VARBINARY takes and gives bytes: elsewhere, no Python call per value.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name not in {"mysql", "mariadb"}:
            return None
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name not in {"mysql", "mariadb"}:
            return None
        return super().result_processor(dialect, coltype)

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else value.encode()

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return value.decode() if isinstance(value, bytes) else value


def refuse_unstorable(value: object) -> object:
    """Refuse, as a 422, text that a database would refuse or mangle: PostgreSQL rejects NUL
    (a 500 otherwise), and a lone surrogate is not Unicode text that UTF-8 can encode."""
    if isinstance(value, str):
        if "\x00" in value:
            msg = "must not contain NUL (\\x00) characters"
            raise ValueError(msg)
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                msg = "must be valid Unicode text (no lone surrogates)"
                raise ValueError(msg) from None
    return value


# The type of every string a client sends.
StorableStr = Annotated[str, BeforeValidator(refuse_unstorable)]
