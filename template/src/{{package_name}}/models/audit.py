import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from .base import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    """A record of something that happened: what (`action`), to what (`subject`), by whom
    (`actor`, e.g. `user:<id>`, `client:<id>`, `email:<address>` for a failed login, `cli`),
    and in which request. Events older than AUDIT_RETENTION_DAYS are purged by
    `python -m <package> purge`."""

    __tablename__ = "audit_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    action: str = Field(max_length=64, index=True)
    subject: str = Field(max_length=255)
    # Empty only on events recorded before the template recorded actors.
    actor: str | None = Field(default=None, max_length=255)
    request_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
