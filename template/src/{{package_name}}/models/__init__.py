"""Every table model, imported here so that `SQLModel.metadata` (and Alembic) sees them all."""

from .audit import AuditEvent
from .base import UTCDateTime, utcnow
from .item import Item, ItemCreate, ItemPublic, ItemsPublic, ItemUpdate
from .token import RefreshRequest, RefreshToken, TokenPair
from .user import User, UserCreate, UserPublic

__all__ = [
    "AuditEvent",
    "Item",
    "ItemCreate",
    "ItemPublic",
    "ItemUpdate",
    "ItemsPublic",
    "RefreshRequest",
    "RefreshToken",
    "TokenPair",
    "UTCDateTime",
    "User",
    "UserCreate",
    "UserPublic",
    "utcnow",
]
