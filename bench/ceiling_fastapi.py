"""No-database ceiling: FastAPI returning the items list through a response model of the same
shape as the service's, validated and serialized on every request, as the service does.

Served by bench/run.py with the render's own FastAPI; the payload (what the service's list
returned) comes from the file named by BENCH_PAYLOAD.
"""

import json
import os
import uuid
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel

PAYLOAD = json.loads(Path(os.environ["BENCH_PAYLOAD"]).read_text())


class ItemPublic(BaseModel):
    id: uuid.UUID
    title: str
    description: str | None
    owner_id: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


class ItemsPublic(BaseModel):
    data: list[ItemPublic]
    count: int


app = FastAPI()


@app.get("/api/v1/items")
async def list_items() -> ItemsPublic:
    return ItemsPublic.model_validate(PAYLOAD)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
