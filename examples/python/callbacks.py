"""Callback style, for code coming from ``asyncio-nats-streaming``: ``cb=`` and ``sc.ack``."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import stan_client

URL = os.environ.get("STAN_URL", "nats://127.0.0.1:4222")
CLUSTER = os.environ.get("STAN_CLUSTER", "test-cluster")


async def main() -> None:
    """Handle three messages in a callback, acking each one."""
    done = asyncio.Event()
    handled = 0

    async with await stan_client.connect(CLUSTER, "callbacks", url=URL) as sc:

        async def handler(msg: stan_client.Message) -> None:
            nonlocal handled
            print("received", msg.sequence, msg.data)
            await sc.ack(msg)
            handled += 1
            if handled == 3:
                done.set()

        def on_error(err: BaseException) -> None:
            print("handler failed:", err)

        sub = await sc.subscribe(
            "jobs",
            queue_group="workers",
            manual_acks=True,
            ack_wait=timedelta(seconds=5),
            cb=handler,
            error_cb=on_error,
        )
        for i in range(3):
            await sc.publish("jobs", f"job {i}".encode())
        await asyncio.wait_for(done.wait(), 10)
        await sub.unsubscribe()


if __name__ == "__main__":
    asyncio.run(main())
