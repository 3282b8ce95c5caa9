import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from .base import UTCDateTime, utcnow


class RefreshToken(SQLModel, table=True):
    """A refresh token that was issued. It is spent on use (rotation) or revoked by logout."""

    __tablename__ = "refresh_tokens"

    id: str = Field(primary_key=True, max_length=32)  # the token's jti
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TokenPair(SQLModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int  # seconds until the access token expires


class RefreshRequest(SQLModel):
    refresh_token: str = Field(min_length=1, max_length=4096)
