"""`sample-data`: items that look like a small business's to-do list, to try the service with.

The texts are made up from the lists below, with some non-ASCII names in them, as real data
has. `--seed` makes a run repeatable.
"""

import asyncio
import random
import time
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from .api import API, Identity, describe

CUSTOMERS = (
    "Acme Corp",
    "Müller GmbH",
    "Café Brûlé",
    "Łódź Logistics",
    "Nakamura & Sons",
    "Oakridge Dental",
    "São Paulo Imports",
    "Fjord Outfitters",
)
PRODUCTS = ("espresso beans", "A4 paper", "USB-C cables", "standing desks", "printer toner")
HOSTS = ("api.example.com", "shop.example.org", "status.example.net")
MONTHS = ("January", "March", "May", "July", "September", "November")
TITLES = (
    "Ship order #{number} to {customer}",
    "Invoice {customer} for {month}",
    "Call {customer} about their renewal",
    "Restock {product} ({quantity} units)",
    "Review pull request #{number}",
    "Renew the TLS certificate for {host}",
    "Plan the {month} release",
    "Answer {customer}'s support ticket #{number}",
)
DESCRIPTIONS = (
    "Due by the end of {month}. Ask {customer} before changing anything.",
    "Blocked until the {product} delivery arrives.",
    "{quantity} customers asked for this; see ticket #{number}.",
    "Waiting for {customer} to confirm.",
    None,
)
# Requests in flight at once: enough to be quick, few enough for a small server.
IN_FLIGHT = 8


def make_item(rng: random.Random) -> dict[str, Any]:
    values = {
        "number": rng.randint(1000, 99999),
        "customer": rng.choice(CUSTOMERS),
        "product": rng.choice(PRODUCTS),
        "host": rng.choice(HOSTS),
        "month": rng.choice(MONTHS),
        "quantity": rng.randint(2, 500),
    }
    description = rng.choice(DESCRIPTIONS)
    return {
        "title": rng.choice(TITLES).format(**values),
        "description": description.format(**values) if description else None,
    }


async def run(
    http: httpx.AsyncClient, owner: Identity, count: int, seed: int | None, console: Console
) -> int:
    """Create `count` items as `owner`; 0 if every one was created, else 1."""
    rng = random.Random(seed)  # noqa: S311 - made-up texts, not secrets
    items = [make_item(rng) for _ in range(count)]
    slots = asyncio.Semaphore(IN_FLIGHT)
    failures: list[str] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )

    async def create(item: dict[str, Any]) -> None:
        try:
            async with slots:
                response = await http.post(f"{API}/items", json=item, headers=owner.headers)
        except httpx.TransportError as exc:
            failures.append(f"no answer: {type(exc).__name__}: {exc}".rstrip(": "))
        else:
            if response.status_code != httpx.codes.CREATED:
                failures.append(describe(response))
        progress.advance(task)

    started = time.perf_counter()
    with progress:
        task = progress.add_task("sample items", total=count)
        async with asyncio.TaskGroup() as group:
            for item in items:
                group.create_task(create(item))
    seconds = time.perf_counter() - started
    if failures:
        console.print(Text(f"sample-data: {len(failures)} of {count} items failed", "bold red"))
        console.print(Text(f"  first: {failures[0]}", "red"))
        return 1
    console.print(f"sample-data: created {count} items for {owner.name} in {seconds:.1f} s")
    return 0
