"""No-database ceiling: bare Starlette returning the bytes of the service's items list.

Served by bench/run.py with the render's own Starlette; the payload comes from the file
named by BENCH_PAYLOAD.
"""

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = Path(os.environ["BENCH_PAYLOAD"]).read_bytes()


async def list_items(_: Request) -> Response:
    return Response(BODY, media_type="application/json")


async def health(_: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/api/v1/items", list_items), Route("/health", health)])
