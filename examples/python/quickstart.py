"""Publish, then read everything back through a durable subscription with manual acks.

Run against a broker: ``STAN_URL=nats://127.0.0.1:4222 python quickstart.py``.
"""

from __future__ import annotations

import asyncio
import os

import stan_client
from stan_client import StartPosition

URL = os.environ.get("STAN_URL", "nats://127.0.0.1:4222")
CLUSTER = os.environ.get("STAN_CLUSTER", "test-cluster")


async def main() -> None:
    """Publish two orders and audit them."""
    # --8<-- [start:quickstart]
    async with await stan_client.connect(CLUSTER, "quickstart", url=URL) as sc:
        guid = await sc.publish("orders", b"order #1")  # returns once acked
        ack = sc.publish_async("orders", b"order #2")  # awaitable ack, returned at once
        print("published", guid, await ack)
        async with await sc.subscribe(
            "orders", durable_name="audit", start_at=StartPosition.FIRST, manual_acks=True
        ) as sub:
            async for msg in sub:
                print(f"#{msg.sequence} {msg.data!r} stored at {msg.timestamp:%H:%M:%S}")
                await msg.ack()
                if msg.sequence >= 2:
                    break
    # --8<-- [end:quickstart]


if __name__ == "__main__":
    asyncio.run(main())
