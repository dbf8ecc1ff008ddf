"""Pipelined publishes, then a manual-ack consumer that acknowledges in batches.

Run against a broker: ``STAN_URL=nats://127.0.0.1:4222 python batch_acks.py``.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import stan_client
from stan_client import StartPosition

URL = os.environ.get("STAN_URL", "nats://127.0.0.1:4222")
CLUSTER = os.environ.get("STAN_CLUSTER", "test-cluster")
CHANNEL = f"readings-{uuid.uuid4().hex[:8]}"


async def main() -> None:
    """Publish 1000 readings at once, then handle and acknowledge them 100 at a time."""
    # --8<-- [start:batch_acks]
    async with await stan_client.connect(CLUSTER, "batch-acks", url=URL) as sc:
        # All in flight at once: the calls of one loop turn reach the client core together.
        acks = [sc.publish_async(CHANNEL, b"reading %d" % i) for i in range(1000)]
        await asyncio.gather(*acks)

        async with await sc.subscribe(
            CHANNEL, start_at=StartPosition.FIRST, manual_acks=True, max_in_flight=500
        ) as sub:
            handled: list[stan_client.Message] = []
            total = 0
            async for msg in sub:
                handled.append(msg)  # ... handle the message ...
                if len(handled) == 100:
                    await sub.ack_many(handled)  # one call for the hundred
                    total += len(handled)
                    handled.clear()
                    if total == 1000:
                        break
            print("handled and acknowledged", total, "readings")
    # --8<-- [end:batch_acks]


if __name__ == "__main__":
    asyncio.run(main())
