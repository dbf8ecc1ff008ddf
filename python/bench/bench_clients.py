"""One benchmark measurement of a Python STAN client, printed as one JSON line.

Runs ONE scenario with ONE client in this process and prints exactly one JSON line on stdout
(everything else goes to stderr), following the repository's benchmark contract::

    python bench_clients.py --client ours|official \\
        --scenario pub-pipelined|pub-awaited|consume-auto|consume-manual \\
        --messages N --size BYTES --url nats://HOST:PORT --cluster-id ID --channel NAME

    {"lang": "python", "client": "ours", "scenario": "pub-pipelined", "size": 128,
     "messages": 20000, "seconds": 0.1, "msgs_per_sec": 200000.0, "p50_us": null,
     "p99_us": null, "rss_kb": 40000}

``ours`` is this package (``stan_client``, install the release wheel: ``pip install
./python``); ``official`` is the PyPI ``asyncio-nats-streaming`` 0.4.0 client (``stan.aio``),
which only runs on Python <= 3.9: run this script with that interpreter for it (see
``python/bench/README.md``). The broker is started by the caller; every run needs a fresh
channel name. Each scenario is written as a new user would write it with that client:

- ``pub-pipelined``: every publish in flight at once (``asyncio.gather`` of
  ``publish_async`` / ``publish`` with an ``ack_handler``), timed from the first publish until
  every ack arrived.
- ``pub-awaited``: publish and await each ack before the next; also p50/p99 of the round trip.
- ``consume-auto`` / ``consume-manual``: the channel is filled first (untimed), then a
  subscription delivering all available messages (max in flight 10000) with auto acks, or
  with manual acks (``await msg.ack()`` / ``await sc.ack(msg)`` per message; ours can use
  ``Subscription.ack_many`` per received burst with ``--ack-many``), timed from subscribe
  until N messages were received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

MAX_IN_FLIGHT = 10_000


class Result:
    """What one measurement produced."""

    def __init__(self, seconds: float, round_trips_us: list[float] | None = None) -> None:
        self.seconds = seconds
        self.round_trips_us = round_trips_us


def peak_rss_kb() -> int:
    """The peak resident set size of this process (VmHWM), in KiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def percentile(sorted_values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of already sorted values."""
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


# ---------------------------------------------------------------- ours (stan_client)
async def ours(args: argparse.Namespace, payload: bytes) -> Result:
    import stan_client

    n, channel = args.messages, args.channel
    client_id = f"bench-ours-{os.getpid()}"
    sc = await stan_client.connect(
        args.cluster_id, client_id, url=args.url, max_pub_acks_in_flight=max(n, 16384)
    )
    async with sc:
        if args.scenario == "pub-pipelined":
            start = time.perf_counter()
            await asyncio.gather(*[sc.publish_async(channel, payload) for _ in range(n)])
            return Result(time.perf_counter() - start)
        if args.scenario == "pub-awaited":
            trips = []
            clock = time.perf_counter
            start = clock()
            for _ in range(n):
                t0 = clock()
                await sc.publish(channel, payload)
                trips.append((clock() - t0) * 1e6)
            return Result(clock() - start, trips)
        # consume-*: fill the channel first (untimed).
        await asyncio.gather(*[sc.publish_async(channel, payload) for _ in range(n)])
        manual = args.scenario == "consume-manual"
        seen = 0
        start = time.perf_counter()
        sub = await sc.subscribe(
            channel, deliver_all_available=True, max_in_flight=MAX_IN_FLIGHT, manual_acks=manual
        )
        if not manual:
            async for _ in sub:
                seen += 1
                if seen == n:
                    break
        elif args.ack_many:
            burst: list[stan_client.Message] = []
            async for msg in sub:
                burst.append(msg)
                seen += 1
                if seen == n or len(burst) >= 256:
                    await sub.ack_many(burst)
                    burst = []
                if seen == n:
                    break
        else:
            async for msg in sub:
                await msg.ack()
                seen += 1
                if seen == n:
                    break
        elapsed = time.perf_counter() - start
        await sub.close()
        return Result(elapsed)


# ---------------------------------------------------------------- official (stan.aio)
async def official(args: argparse.Namespace, payload: bytes) -> Result:
    from nats.aio.client import Client as NATS  # type: ignore[import-not-found]
    from stan.aio.client import Client as STAN  # type: ignore[import-not-found]

    n, channel = args.messages, args.channel
    nc = NATS()
    await nc.connect(servers=[args.url])
    sc = STAN()
    await sc.connect(
        args.cluster_id,
        f"bench-official-{os.getpid()}",
        nats=nc,
        max_pub_acks_inflight=max(n, 16384),
    )
    try:
        if args.scenario == "pub-pipelined":
            return Result(await official_pipelined(sc, channel, payload, n))
        if args.scenario == "pub-awaited":
            trips = []
            clock = time.perf_counter
            start = clock()
            for _ in range(n):
                t0 = clock()
                await sc.publish(channel, payload)
                trips.append((clock() - t0) * 1e6)
            return Result(clock() - start, trips)
        await official_pipelined(sc, channel, payload, n)  # fill (untimed)
        manual = args.scenario == "consume-manual"
        done = asyncio.Event()
        seen = 0

        async def cb(msg: Any) -> None:
            nonlocal seen
            if manual:
                await sc.ack(msg)
            seen += 1
            if seen == n:
                done.set()

        start = time.perf_counter()
        sub = await sc.subscribe(
            channel, start_at="first", cb=cb, max_inflight=MAX_IN_FLIGHT, manual_acks=manual
        )
        await done.wait()
        elapsed = time.perf_counter() - start
        await sub.close()
        return Result(elapsed)
    finally:
        await sc.close()
        await nc.close()


async def official_pipelined(sc: Any, channel: str, payload: bytes, n: int) -> float:
    """Publish n messages with an ack handler each; seconds until every ack arrived."""
    done = asyncio.Event()
    acked = 0

    async def on_ack(ack: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()

    start = time.perf_counter()
    for _ in range(n):
        await sc.publish(channel, payload, ack_handler=on_ack)
    await done.wait()
    return time.perf_counter() - start


CLIENTS: dict[str, Callable[[argparse.Namespace, bytes], Coroutine[Any, Any, Result]]] = {
    "ours": ours,
    "official": official,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="one Python STAN client benchmark measurement")
    parser.add_argument("--client", choices=sorted(CLIENTS), required=True)
    parser.add_argument(
        "--scenario",
        choices=["pub-pipelined", "pub-awaited", "consume-auto", "consume-manual"],
        required=True,
    )
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--cluster-id", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument(
        "--ack-many",
        action="store_true",
        help="consume-manual with ours: ack each received burst with Subscription.ack_many",
    )
    args = parser.parse_args()
    if args.messages < 1 or args.size < 0:
        parser.error("--messages must be >= 1 and --size >= 0")
    result = asyncio.run(CLIENTS[args.client](args, b"x" * args.size))
    trips = sorted(result.round_trips_us) if result.round_trips_us else None
    line = {
        "lang": "python",
        "client": args.client,
        "scenario": args.scenario,
        "size": args.size,
        "messages": args.messages,
        "seconds": round(result.seconds, 6),
        "msgs_per_sec": round(args.messages / result.seconds, 1),
        "p50_us": round(percentile(trips, 50), 1) if trips else None,
        "p99_us": round(percentile(trips, 99), 1) if trips else None,
        "rss_kb": peak_rss_kb(),
    }
    sys.stdout.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
