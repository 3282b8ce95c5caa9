"""Password hashing (Argon2 via pwdlib) and JWT access/refresh tokens (PyJWT)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache

import jwt
from anyio import to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

password_hash = PasswordHash((Argon2Hasher(),))


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class InvalidTokenError(Exception):
    """The token is malformed, tampered with, expired or of the wrong type."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    token_id: str
    token_type: TokenType
    issued_at: datetime
    expires_at: datetime


async def hash_password(password: str) -> str:
    # Argon2 is deliberately slow; run it off the event loop.
    return await to_thread.run_sync(password_hash.hash, password)


async def verify_password(password: str, hashed: str) -> tuple[bool, str | None]:
    """Check a password; the second value is a new hash when the parameters have changed."""
    return await to_thread.run_sync(password_hash.verify_and_update, password, hashed)


@cache
def _dummy_hash() -> str:
    return password_hash.hash(uuid.uuid4().hex)


async def burn_password_check(password: str) -> None:
    """Spend the time a real check takes, so an unknown user cannot be told apart by timing."""
    await to_thread.run_sync(password_hash.verify, password, _dummy_hash())


def create_token(
    subject: str,
    token_type: TokenType,
    expires_in: timedelta,
    *,
    secret: str,
    algorithm: str,
) -> tuple[str, TokenClaims]:
    now = datetime.now(UTC)
    claims = TokenClaims(
        subject=subject,
        token_id=uuid.uuid4().hex,
        token_type=token_type,
        issued_at=now,
        expires_at=now + expires_in,
    )
    payload = {
        "sub": claims.subject,
        "jti": claims.token_id,
        "type": claims.token_type.value,
        "iat": claims.issued_at,
        "exp": claims.expires_at,
    }
    return jwt.encode(payload, secret, algorithm=algorithm), claims


def decode_token(
    token: str, expected_type: TokenType, *, secret: str, algorithm: str
) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[algorithm],
            options={"require": ["sub", "jti", "type", "iat", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(str(exc)) from exc
    if payload["type"] != expected_type.value:
        msg = f"expected a {expected_type.value} token"
        raise InvalidTokenError(msg)
    return TokenClaims(
        subject=str(payload["sub"]),
        token_id=str(payload["jti"]),
        token_type=expected_type,
        issued_at=datetime.fromtimestamp(payload["iat"], UTC),
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
    )
