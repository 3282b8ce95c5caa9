"""`concurrency`: N clients at once, each sending its requests one after the other.

Each client works on its own items, as its owner (the auth style's users or key, spread
over the clients), in a fixed mix of writes and reads: of every ten requests, three create
an item, one renames one, one deletes one, three read one back and two list a page. Every
answer is checked (status, and the title a client last wrote), so a read that misses a
write made through another worker process is an error too.

Afterwards, every item a client made is read back by its owner (200, with its last title),
every item it deleted must be gone (404), each owner's item count must have grown by exactly
the items left, and, when there are several owners, no owner may read another's item. The
items are then deleted, unless --keep.
"""

import asyncio
import contextlib
import functools
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .api import API, Identity

ITEMS = f"{API}/items"
MIX = ("create", "read", "list", "create", "update", "read", "create", "list", "read", "delete")
# How many errors are shown as examples; all of them are counted.
SHOWN_ERRORS = 5
# Requests in flight at once while checking and cleaning up after the load.
IN_FLIGHT = 16


@dataclass
class Tally:
    """How many requests were sent, the latency of each answer, and every error, per
    operation."""

    sent: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def error(self, operation: str, what: str) -> None:
        self.errors[operation] += 1
        if len(self.examples) < SHOWN_ERRORS:
            self.examples.append(f"{operation}: {what}")

    async def send(
        self, operation: str, request: Coroutine[Any, Any, httpx.Response], status: int
    ) -> Any:
        """Await one request, time it, and return its JSON body if it has the expected status
        (True for an empty one); None after counting an error."""
        self.sent[operation] += 1
        started = time.perf_counter()
        try:
            response = await request
        except httpx.TransportError as exc:
            self.error(operation, f"no answer: {type(exc).__name__}: {exc}".rstrip(": "))
            return None
        self.seconds[operation].append(time.perf_counter() - started)
        body = " ".join(response.text.split())[:160]
        if response.status_code != status:
            self.error(operation, f"expected {status}, got {response.status_code} {body}")
            return None
        try:
            return response.json() if response.content else True
        except json.JSONDecodeError:
            self.error(operation, f"expected JSON, got {body!r}")
            return None


@dataclass
class Client:
    """One simulated client: its owner, and what it made."""

    index: int
    owner: Identity
    titles: dict[str, str] = field(default_factory=dict)  # item id -> the title last written
    deleted: list[str] = field(default_factory=list)
    made: int = 0


async def run_client(
    http: httpx.AsyncClient,
    client: Client,
    requests: int,
    tally: Tally,
    advance: Callable[[], None],
) -> None:
    """Send `requests` requests, one after the other, in the mix of MIX."""
    headers = client.owner.headers
    for step in range(requests):
        operation = MIX[(client.index + step) % len(MIX)]
        if operation in {"read", "update", "delete"} and not client.titles:
            operation = "create"
        ids = list(client.titles)
        if operation == "create":
            client.made += 1
            title = f"load {client.index}.{client.made}"
            body = {"title": title, "description": f"Made by client {client.index}."}
            item = await tally.send(operation, http.post(ITEMS, json=body, headers=headers), 201)
            if isinstance(item, dict) and item.get("title") == title and "id" in item:
                client.titles[str(item["id"])] = title
            elif isinstance(item, dict):
                tally.error(operation, f"sent the title {title!r}, the answer is {item!r}")
        elif operation == "read":
            item_id = ids[step % len(ids)]
            item = await tally.send(operation, http.get(f"{ITEMS}/{item_id}", headers=headers), 200)
            if isinstance(item, dict) and item.get("title") != client.titles[item_id]:
                tally.error(
                    operation,
                    f"{item_id} has the title {item.get('title')!r}, "
                    f"not the {client.titles[item_id]!r} written before",
                )
        elif operation == "list":
            listing = http.get(ITEMS, params={"limit": 20}, headers=headers)
            page = await tally.send(operation, listing, 200)
            if isinstance(page, dict) and not isinstance(page.get("count"), int):
                tally.error(operation, f"a page without a count: {page!r}")
        elif operation == "update":
            item_id, title = ids[-1], f"load {client.index}.{step} renamed"
            renaming = http.patch(f"{ITEMS}/{item_id}", json={"title": title}, headers=headers)
            if await tally.send(operation, renaming, 200):
                client.titles[item_id] = title
        else:  # delete the oldest
            item_id = ids[0]
            deleting = http.delete(f"{ITEMS}/{item_id}", headers=headers)
            if await tally.send(operation, deleting, 204):
                del client.titles[item_id]
                client.deleted.append(item_id)
        advance()


async def count_items(http: httpx.AsyncClient, owner: Identity, tally: Tally) -> int | None:
    """How many items the owner sees (None after counting an error)."""
    page = await tally.send(
        "count", http.get(ITEMS, params={"limit": 1}, headers=owner.headers), 200
    )
    return page["count"] if isinstance(page, dict) and isinstance(page.get("count"), int) else None


@dataclass
class Verification:
    """What the checks after the load found: counts of what held, and a Tally of what did
    not."""

    readable: int = 0
    gone: int = 0
    counts: int = 0
    hidden: int = 0
    deleted: int = 0
    tally: Tally = field(default_factory=Tally)


async def _bounded(tasks: Iterable[Coroutine[Any, Any, None]], limit: int) -> None:
    """Run coroutines, at most `limit` at a time."""
    slots = asyncio.Semaphore(limit)

    async def bounded(task: Coroutine[Any, Any, None]) -> None:
        async with slots:
            await task

    async with asyncio.TaskGroup() as group:
        for task in tasks:
            group.create_task(bounded(task))


async def verify(
    http: httpx.AsyncClient,
    clients: list[Client],
    counts_before: dict[str, int | None],
    found: Verification,
    progress: Progress,
) -> None:
    """Every item is readable by its owner with its last title, every deleted one is gone,
    each owner's count grew by the items left, and no owner reads another's items."""
    tally = found.tally
    owners = {client.owner.name: client.owner for client in clients}
    total = sum(len(client.titles) + len(client.deleted) for client in clients)
    task = progress.add_task("verify", total=total)

    async def readable(owner: Identity, item_id: str, title: str) -> None:
        item = await tally.send(
            "read back", http.get(f"{ITEMS}/{item_id}", headers=owner.headers), 200
        )
        if isinstance(item, dict) and item.get("title") == title:
            found.readable += 1
        elif isinstance(item, dict):
            tally.error(
                "read back", f"{item_id} has the title {item.get('title')!r}, not {title!r}"
            )
        progress.advance(task)

    async def gone(owner: Identity, item_id: str) -> None:
        if await tally.send(
            "deleted is 404", http.get(f"{ITEMS}/{item_id}", headers=owner.headers), 404
        ):
            found.gone += 1
        progress.advance(task)

    await _bounded(
        [
            *(
                readable(client.owner, item_id, title)
                for client in clients
                for item_id, title in client.titles.items()
            ),
            *(gone(client.owner, item_id) for client in clients for item_id in client.deleted),
        ],
        IN_FLIGHT,
    )
    for name, owner in owners.items():
        expected_growth = sum(len(c.titles) for c in clients if c.owner.name == name)
        before, after = counts_before[name], await count_items(http, owner, tally)
        if before is None or after is None:
            continue
        if after == before + expected_growth:
            found.counts += 1
        else:
            tally.error(
                "count",
                f"{name} had {before} items and made {expected_growth} more, but counts {after} "
                "(another writer at the same time would explain it)",
            )
    if len(owners) > 1:
        # A sample: the item of each client, read by the owner of the next client.
        pairs = [
            (clients[(i + 1) % len(clients)].owner, next(iter(client.titles)))
            for i, client in enumerate(clients)
            if client.titles and clients[(i + 1) % len(clients)].owner.name != client.owner.name
        ][:50]
        for other, item_id in pairs:
            path = f"{ITEMS}/{item_id}"
            if await tally.send(
                "another owner's is 404", http.get(path, headers=other.headers), 404
            ):
                found.hidden += 1


async def clean_up(
    http: httpx.AsyncClient,
    clients: list[Client],
    found: Verification,
    progress: Progress,
) -> None:
    """Delete the items the clients left."""
    task = progress.add_task("clean up", total=sum(len(client.titles) for client in clients))

    async def delete(owner: Identity, item_id: str) -> None:
        deleting = http.delete(f"{ITEMS}/{item_id}", headers=owner.headers)
        if await found.tally.send("clean up", deleting, 204):
            found.deleted += 1
        progress.advance(task)

    await _bounded(
        (delete(client.owner, item_id) for client in clients for item_id in client.titles),
        IN_FLIGHT,
    )


def percentile(values: list[float], percent: float) -> float:
    """The nearest-rank percentile, in milliseconds (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)] * 1000


def latencies(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values, default=0) * 1000, 1),
    }


@dataclass
class Options:
    clients: int
    requests: int
    keep: bool
    json_report: Path | None


async def run(
    http: httpx.AsyncClient,
    new_client: Callable[[], httpx.AsyncClient],
    owners: list[Identity],
    owners_described: str,
    options: Options,
    console: Console,
) -> int:
    """The load, its checks and the report; 0 if no error at all, else 1. Each simulated
    client has its own connection (`new_client()`); the checks share `http`."""
    clients = [Client(index, owners[index % len(owners)]) for index in range(options.clients)]
    total = options.clients * options.requests
    console.print(
        f"concurrency: {options.clients} clients x {options.requests} requests = {total} "
        f"requests to {http.base_url}, {owners_described}"
    )
    progress = Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    found = Verification()
    with progress:
        counts_before = {
            owner.name: await count_items(http, owner, found.tally) for owner in owners
        }
        tally = Tally()
        task = progress.add_task("load", total=total)
        advance = functools.partial(progress.advance, task)
        async with contextlib.AsyncExitStack() as stack:
            connections = [await stack.enter_async_context(new_client()) for _ in clients]
            started = time.perf_counter()
            async with asyncio.TaskGroup() as group:
                for client, connection in zip(clients, connections, strict=True):
                    group.create_task(
                        run_client(connection, client, options.requests, tally, advance)
                    )
            seconds = time.perf_counter() - started
        await verify(http, clients, counts_before, found, progress)
        if not options.keep:
            await clean_up(http, clients, found, progress)

    figures = summarize(options, owners, clients, tally, seconds, found)
    print_report(console, figures)
    if options.json_report is not None:
        options.json_report.write_text(json.dumps(figures, indent=2) + "\n")
    failures = figures["errors"] + figures["check_errors"]
    if failures:
        console.print(Text(f"concurrency: FAILED, {failures} errors", "bold red"))
        return 1
    console.print(Text("concurrency: ok, no errors", "bold green"))
    return 0


def summarize(
    options: Options,
    owners: list[Identity],
    clients: list[Client],
    tally: Tally,
    seconds: float,
    found: Verification,
) -> dict[str, Any]:
    """The figures of a run, as printed and as written by --json."""
    answered = [value for values in tally.seconds.values() for value in values]
    sent = tally.sent.total()
    return {
        "clients": options.clients,
        "requests_per_client": options.requests,
        "owners": len(owners),
        "requests": sent,
        "seconds": round(seconds, 3),
        "throughput": round(sent / seconds if seconds else 0.0, 1),
        **latencies(answered),
        "errors": tally.errors.total(),
        "by_operation": {
            operation: {
                "requests": tally.sent[operation],
                "errors": tally.errors[operation],
                **latencies(tally.seconds[operation]),
            }
            for operation in sorted(tally.sent)
        },
        "items_made": sum(client.made for client in clients),
        "readable": found.readable,
        "expected_readable": sum(len(client.titles) for client in clients),
        "gone": found.gone,
        "expected_gone": sum(len(client.deleted) for client in clients),
        "counts_right": found.counts,
        "hidden_from_others": found.hidden,
        "cleaned_up": found.deleted,
        "check_errors": found.tally.errors.total(),
        "error_examples": [*tally.examples, *found.tally.examples],
    }


def print_report(console: Console, figures: dict[str, Any]) -> None:
    table = Table(box=None)
    for header in ("operation", "requests", "errors", "p50 ms", "p99 ms", "max ms"):
        table.add_column(header, justify="left" if header == "operation" else "right")
    for operation, row in figures["by_operation"].items():
        table.add_row(
            operation,
            *(str(row[key]) for key in ("requests", "errors")),
            *(f"{row[key]:.0f}" for key in ("p50_ms", "p99_ms", "max_ms")),
        )
    console.print(table)
    console.print(
        f"load: {figures['requests']} requests in {figures['seconds']:.1f} s, "
        f"{figures['throughput']:.0f} requests/s, p50 {figures['p50_ms']:.0f} ms, "
        f"p99 {figures['p99_ms']:.0f} ms, {figures['errors']} errors"
    )
    checks = (
        f"check: {figures['readable']} of {figures['expected_readable']} items readable by "
        f"their owner with their last title, {figures['gone']} of {figures['expected_gone']} "
        f"deleted items gone, item counts right for {figures['counts_right']} of "
        f"{figures['owners']} owners"
    )
    if figures["owners"] > 1:
        checks += f", {figures['hidden_from_others']} items hidden from another owner"
    console.print(checks)
    if figures["cleaned_up"]:
        console.print(f"clean up: deleted the {figures['cleaned_up']} items left")
    for example in figures["error_examples"][:SHOWN_ERRORS]:
        console.print(Text(f"  error: {example}", "red"))
