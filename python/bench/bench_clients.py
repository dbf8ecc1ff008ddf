"""Compare stan_client with the PyPI ``asyncio-nats-streaming`` client (``stan.aio``).

Not part of CI and not a test: the numbers depend on the machine and on everything else
running. ``asyncio-nats-streaming`` (and the ``asyncio-nats-client`` it needs) no longer runs
on Python >= 3.10 (it passes the removed ``loop=`` argument to asyncio), so each client runs
in its own interpreter; the broker, the message count and the payload are the same::

    python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install ./python
    python3.9 -m venv /tmp/bench39
    /tmp/bench39/bin/pip install asyncio-nats-streaming "protobuf<3.21"
    /tmp/benchvenv/bin/python python/bench/bench_clients.py \
        --stanpy-python /tmp/bench39/bin/python --messages 20000

Each scenario runs in a fresh worker process against a fresh broker; the time is measured
inside the worker, from before connecting to after the last ack or message.

Scenarios, each against a fresh broker started by ``stan_client.testing``:

- ``publish-sync``: publish and wait for each ack before the next one.
- ``publish-pipelined``: publish everything, then wait for all acks.
- ``consume``: a subscription delivering everything the channel stores (auto acks).

A scenario that fails is reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

PAYLOAD = b"x" * 128

Scenario = Callable[[str, str, int], Coroutine[Any, Any, None]]


# ---------------------------------------------------------------- stan_client (this package)
async def ours_publish_sync(url: str, channel: str, n: int) -> None:
    import stan_client

    async with await stan_client.connect("test-cluster", "bench-ours-ps", url=url) as sc:
        for _ in range(n):
            await sc.publish(channel, PAYLOAD)


async def ours_publish_pipelined(url: str, channel: str, n: int) -> None:
    import stan_client

    async with await stan_client.connect("test-cluster", "bench-ours-pp", url=url) as sc:
        await asyncio.gather(*[sc.publish_async(channel, PAYLOAD) for _ in range(n)])


async def ours_consume(url: str, channel: str, n: int) -> None:
    import stan_client

    sc = await stan_client.connect("test-cluster", "bench-ours-c", url=url)
    async with sc, await sc.subscribe(channel, deliver_all_available=True) as sub:
        seen = 0
        async for _ in sub:
            seen += 1
            if seen == n:
                break


# ---------------------------------------------------------------- asyncio-nats-streaming
async def _stanpy(url: str, client_id: str) -> tuple[Any, Any]:
    from nats.aio.client import Client as NATS  # type: ignore[import-not-found]
    from stan.aio.client import Client as STAN  # type: ignore[import-not-found]

    nc = NATS()
    await nc.connect(servers=[url])
    sc = STAN()
    await sc.connect("test-cluster", client_id, nats=nc)
    return nc, sc


async def stanpy_publish_sync(url: str, channel: str, n: int) -> None:
    nc, sc = await _stanpy(url, "bench-stanpy-ps")
    try:
        for _ in range(n):
            await sc.publish(channel, PAYLOAD)
    finally:
        await sc.close()
        await nc.close()


async def stanpy_publish_pipelined(url: str, channel: str, n: int) -> None:
    nc, sc = await _stanpy(url, "bench-stanpy-pp")
    done = asyncio.Event()
    acked = 0

    async def on_ack(ack: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()

    try:
        for _ in range(n):
            await sc.publish(channel, PAYLOAD, ack_handler=on_ack)
        await done.wait()
    finally:
        await sc.close()
        await nc.close()


async def stanpy_consume(url: str, channel: str, n: int) -> None:
    nc, sc = await _stanpy(url, "bench-stanpy-c")
    done = asyncio.Event()
    seen = 0

    async def cb(msg: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    try:
        await sc.subscribe(channel, start_at="first", cb=cb)
        await done.wait()
    finally:
        await sc.close()
        await nc.close()


CLIENTS: dict[str, dict[str, Scenario]] = {
    "stan_client": {
        "publish-sync": ours_publish_sync,
        "publish-pipelined": ours_publish_pipelined,
        "consume": ours_consume,
    },
    "asyncio-nats-streaming": {
        "publish-sync": stanpy_publish_sync,
        "publish-pipelined": stanpy_publish_pipelined,
        "consume": stanpy_consume,
    },
}


async def fill(url: str, channel: str, n: int) -> None:
    import stan_client

    async with await stan_client.connect("test-cluster", "bench-fill", url=url) as sc:
        await asyncio.gather(*[sc.publish_async(channel, PAYLOAD) for _ in range(n)])


def worker(client: str, scenario: str, url: str, n: int) -> None:
    """Run one scenario in this process and print the elapsed seconds."""
    fn = CLIENTS[client][scenario]
    start = time.perf_counter()
    asyncio.run(fn(url, f"bench.{scenario}", n))
    print(time.perf_counter() - start)


def run_one(python: str, client: str, scenario: str, n: int, timeout: float) -> str:
    from stan_client.testing import run_broker

    with run_broker() as broker:
        if scenario == "consume":
            asyncio.run(fill(broker.url, f"bench.{scenario}", n))
        cmd = [python, __file__, "--worker", client, scenario, broker.url, str(n)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "failed: timeout"
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            return f"failed: {last[:70]}"
        elapsed = float(r.stdout.strip().splitlines()[-1])
    return f"{n / elapsed:>10,.0f} msg/s"


def main() -> None:
    parser = argparse.ArgumentParser(description="stan_client vs asyncio-nats-streaming")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--stanpy-python", default=os.environ.get("STANPY_PYTHON", sys.executable))
    parser.add_argument("--worker", nargs=4, metavar=("CLIENT", "SCENARIO", "URL", "N"))
    args = parser.parse_args()
    if args.worker:
        client, scenario, url, n = args.worker
        worker(client, scenario, url, int(n))
        return
    pythons = {"stan_client": sys.executable, "asyncio-nats-streaming": args.stanpy_python}
    print(f"{args.messages} messages of {len(PAYLOAD)} bytes (publish-sync: a fifth of them)")
    for scenario in ("publish-sync", "publish-pipelined", "consume"):
        for client in CLIENTS:
            n = args.messages if scenario != "publish-sync" else max(1, args.messages // 5)
            result = run_one(pythons[client], client, scenario, n, args.timeout)
            print(f"{scenario:<18} {client:<24} {result}", flush=True)


if __name__ == "__main__":
    main()
