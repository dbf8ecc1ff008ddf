"""Watch connection events while working; the stream ends with ``Closed``."""

from __future__ import annotations

import asyncio
import os

import stan_client
from stan_client import Closed, ConnectionLost, Resumed

URL = os.environ.get("STAN_URL", "nats://127.0.0.1:4222")
CLUSTER = os.environ.get("STAN_CLUSTER", "test-cluster")


async def watch(events: stan_client.Events) -> None:
    """Print every event until the client is closed."""
    async for event in events:
        match event:
            case ConnectionLost(reason=reason, resuming=resuming):
                print(f"session lost ({reason.value}), resuming={resuming}")
            case Resumed(failed_subscriptions=failed):
                print(f"resumed, {failed} subscriptions lost")
            case Closed():
                print("closed")
            case other:
                print("event", other)


async def main() -> None:
    """Publish a few messages with an event watcher running."""
    sc = await stan_client.connect(CLUSTER, "events-demo", url=URL)
    watcher = asyncio.create_task(watch(sc.events()))
    for i in range(3):
        await sc.publish("metrics", b"%d" % i)
    await sc.close()
    await asyncio.wait_for(watcher, 10)


if __name__ == "__main__":
    asyncio.run(main())
