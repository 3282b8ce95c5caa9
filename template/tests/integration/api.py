"""What every command shares: the identity requests are sent as, and what an answer must be."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "/api/v1"


class Fatal(Exception):  # noqa: N818 - read as `raise Fatal("...")`
    """The command cannot go on (the app is unreachable, it refused the credentials); the
    message says why, in one line."""


class CheckFailed(Exception):  # noqa: N818 - read as `raise CheckFailed("...")`
    """An answer is not the one the service promises."""


@dataclass(frozen=True)
class Identity:
    """Who a request is sent as: a user, an API key's client, or anyone (an open API)."""

    name: str
    headers: dict[str, str] = field(default_factory=dict)


ANYONE = Identity("anyone")


@dataclass
class Smoke:
    """What the smoke checks share as they run in order: the owner of the items (signed in by
    the auth style's checks), another owner when the style has one, and the item made."""

    client: httpx.AsyncClient
    owner: Identity = ANYONE
    other: Identity | None = None
    item: dict[str, Any] | None = None

    def need_item(self) -> dict[str, Any]:
        if self.item is None:
            msg = "no item to check: creating one failed above"
            raise CheckFailed(msg)
        return self.item


@dataclass(frozen=True)
class Check:
    """One line of `smoke`: its name says what must hold; `step` raises CheckFailed if not."""

    name: str
    step: Callable[[Smoke], Awaitable[None]]


def describe(response: httpx.Response) -> str:
    """`POST /api/v1/items -> 422 {"detail": ...}`, the body cut short, for one line."""
    body = " ".join(response.text.split())
    if len(body) > 200:
        body = body[:200] + "..."
    request = response.request
    return f"{request.method} {request.url.path} -> {response.status_code} {body}".rstrip()


def expect(response: httpx.Response, status: int) -> Any:
    """The JSON body of an answer that must have this status (None for an empty body)."""
    if response.status_code != status:
        msg = f"expected {status}, got {describe(response)}"
        raise CheckFailed(msg)
    if not response.content:
        return None
    try:
        return response.json()
    except json.JSONDecodeError:
        msg = f"expected a JSON body, got {describe(response)}"
        raise CheckFailed(msg) from None


def expect_object(response: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON object of an answer that must have this status."""
    body = expect(response, status)
    if not isinstance(body, dict):
        msg = f"expected a JSON object, got {describe(response)}"
        raise CheckFailed(msg)
    return body


def refused(what: str, response: httpx.Response) -> Fatal:
    """The error for credentials the app did not accept (or a rate limit it applied)."""
    detail = _detail(response)
    if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
        retry = response.headers.get("retry-after", "?")
        return Fatal(f"the app rate-limited {what} (429, retry after {retry} s): {detail}")
    return Fatal(f"the app refused {what} ({response.status_code}: {detail})")


def unreachable(url: str, exc: httpx.TransportError) -> Fatal:
    """The error for an app that cannot be reached, with the transport's reason."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return Fatal(f"cannot connect to the app at {url} ({reason}): is it running there?")
    if isinstance(exc, httpx.TimeoutException):
        return Fatal(f"the app at {url} did not answer in time ({type(exc).__name__})")
    return Fatal(f"lost the connection to the app at {url}: {reason}")


async def check_reachable(client: httpx.AsyncClient, url: str) -> None:
    """GET /health, so that a wrong URL stops the command with one clear line."""
    try:
        response = await client.get("/health")
    except httpx.TransportError as exc:
        raise unreachable(url, exc) from None
    try:
        body = response.json() if response.status_code == httpx.codes.OK else None
    except json.JSONDecodeError:
        body = None
    if not (isinstance(body, dict) and body.get("status") == "ok"):
        msg = (
            f"{url} is not this service: GET /health answered {response.status_code} "
            "(give the root URL, without /api/v1)"
        )
        raise Fatal(msg)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except json.JSONDecodeError:
        return response.text[:200] or "no body"
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return json.dumps(body)[:200]
