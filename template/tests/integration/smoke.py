"""`smoke`: each endpoint's main success and failure path, in order, one line per check.

The list is `checks()`: the service's checks (health, readiness), the auth style's (they
sign in the owner of the items), the item checks, and the auth style's checks on the item.
A check is a `Check`, a name that says what must hold and a coroutine that raises
CheckFailed when it does not: a new feature adds its own list here.
"""

import time
import uuid

import httpx
from rich.console import Console
from rich.text import Text

from . import auth
from .api import API, Check, CheckFailed, Smoke, describe, expect, expect_object

ITEMS = f"{API}/items"
ITEM = ITEMS + "/{id}"


async def health(smoke: Smoke) -> None:
    body, alive = expect(await smoke.client.get("/health"), 200), {"status": "ok"}
    if body != alive:
        msg = f"expected {alive!r}, got {body!r}"
        raise CheckFailed(msg)


async def readiness(smoke: Smoke) -> None:
    response = await smoke.client.get("/health/ready")
    if response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
        msg = f"the app cannot reach its database: {describe(response)}"
        raise CheckFailed(msg)
    body = expect(response, 200)
    # The database, and whatever else the service checks (Redis, when it uses it).
    if body.get("database") != "ok" or any(value != "ok" for value in body.values()):
        msg = f"expected the database and every other dependency to be ok, got {body!r}"
        raise CheckFailed(msg)


async def request_id(smoke: Smoke) -> None:
    sent = uuid.uuid4().hex
    response = await smoke.client.get("/health", headers={"X-Request-ID": sent})
    expect(response, 200)
    if response.headers.get("x-request-id") != sent:
        msg = f"sent X-Request-ID {sent}, got {response.headers.get('x-request-id')!r}"
        raise CheckFailed(msg)
    if "x-process-time" not in response.headers:
        msg = "no X-Process-Time header"
        raise CheckFailed(msg)


async def create_item(smoke: Smoke) -> None:
    sent = {"title": "Smoke test item", "description": "Made by `smoke`; deleted at its end."}
    response = await smoke.client.post(ITEMS, json=sent, headers=smoke.owner.headers)
    item = expect_object(response, 201)
    if {key: item.get(key) for key in sent} != sent or "id" not in item:
        msg = f"expected the item sent, with an id, got {describe(response)}"
        raise CheckFailed(msg)
    smoke.item = item


async def read_item(smoke: Smoke) -> None:
    item = smoke.need_item()
    response = await smoke.client.get(f"{ITEMS}/{item['id']}", headers=smoke.owner.headers)
    if (read := expect(response, 200)) != item:
        msg = f"expected {item!r}, got {read!r}"
        raise CheckFailed(msg)


async def list_items(smoke: Smoke) -> None:
    item = smoke.need_item()
    params = {"limit": 100}
    response = await smoke.client.get(ITEMS, params=params, headers=smoke.owner.headers)
    page = expect_object(response, 200)
    ids = [listed.get("id") for listed in page.get("data", [])]
    if item["id"] not in ids or not isinstance(page.get("count"), int) or page["count"] < 1:
        msg = f"expected the item in the first page, with a count: {describe(response)}"
        raise CheckFailed(msg)


async def update_item(smoke: Smoke) -> None:
    item = smoke.need_item()
    path, title = f"{ITEMS}/{item['id']}", "Smoke test item, renamed"
    response = await smoke.client.patch(path, json={"title": title}, headers=smoke.owner.headers)
    updated = expect_object(response, 200)
    kept = {key: value for key, value in item.items() if key not in {"title", "updated_at"}}
    if updated.get("title") != title or any(updated.get(k) != v for k, v in kept.items()):
        msg = f"expected only the title (and updated_at) to change, got {updated!r}"
        raise CheckFailed(msg)
    smoke.item = updated


async def empty_title(smoke: Smoke) -> None:
    response = await smoke.client.post(ITEMS, json={"title": ""}, headers=smoke.owner.headers)
    body = expect_object(response, 422)
    errors = body.get("detail")
    if not (isinstance(errors, list) and errors and errors[0].get("loc") == ["body", "title"]):
        msg = f"expected FastAPI's 422 shape naming body.title, got {describe(response)}"
        raise CheckFailed(msg)


async def malformed_id(smoke: Smoke) -> None:
    expect(await smoke.client.get(f"{ITEMS}/not-a-uuid", headers=smoke.owner.headers), 422)


async def limit_too_large(smoke: Smoke) -> None:
    response = await smoke.client.get(ITEMS, params={"limit": 1000}, headers=smoke.owner.headers)
    expect(response, 422)


async def unknown_item(smoke: Smoke) -> None:
    path = f"{ITEMS}/{uuid.uuid4()}"
    expect(await smoke.client.get(path, headers=smoke.owner.headers), 404)


async def delete_item(smoke: Smoke) -> None:
    item = smoke.need_item()
    path = f"{ITEMS}/{item['id']}"
    expect(await smoke.client.delete(path, headers=smoke.owner.headers), 204)
    smoke.item = None
    expect(await smoke.client.get(path, headers=smoke.owner.headers), 404)


def checks(credentials: auth.Credentials) -> list[Check]:
    before_items, on_item = auth.sign_in_checks(credentials)
    return [
        Check("GET /health is 200", health),
        Check("GET /health/ready is 200: the app reaches its database", readiness),
        Check("a response carries the X-Request-ID sent and X-Process-Time", request_id),
        *before_items,
        Check(f"POST {ITEMS} is 201 with the item", create_item),
        Check(f"GET {ITEM} is 200 with the same item", read_item),
        Check(f"GET {ITEMS} lists the item, with a count", list_items),
        Check(f"PATCH {ITEM} is 200 and changes the title", update_item),
        Check(f"POST {ITEMS} with an empty title is 422, in FastAPI's shape", empty_title),
        Check(f"GET {ITEMS}/not-a-uuid is 422", malformed_id),
        Check(f"GET {ITEMS}?limit=1000 is 422", limit_too_large),
        Check(f"GET {ITEMS}/<unknown id> is 404", unknown_item),
        *on_item,
        Check(f"DELETE {ITEM} is 204, and the item is then 404", delete_item),
    ]


async def run(client: httpx.AsyncClient, credentials: auth.Credentials, console: Console) -> int:
    """Run every check, in order, printing a line for each; the number that failed."""
    smoke = Smoke(client)
    all_checks = checks(credentials)
    failed = 0
    for check in all_checks:
        started = time.perf_counter()
        try:
            await check.step(smoke)
        except CheckFailed as exc:
            failed += 1
            console.print(Text.assemble(("FAIL ", "bold red"), check.name, f": {exc}"))
            continue
        except httpx.TransportError as exc:
            failed += 1
            reason = str(exc) or type(exc).__name__
            console.print(Text.assemble(("FAIL ", "bold red"), check.name, f": {reason}"))
            continue
        milliseconds = (time.perf_counter() - started) * 1000
        console.print(
            Text.assemble(("ok   ", "green"), check.name, (f"  {milliseconds:.0f} ms", "dim"))
        )
    if failed:
        console.print(Text(f"smoke: {failed} of {len(all_checks)} checks failed", "bold red"))
        return 1
    console.print(Text(f"smoke: all {len(all_checks)} checks passed", "bold green"))
    return 0
