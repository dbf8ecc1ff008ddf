"""The official Python client (asyncio-nats-streaming 0.4.0, ``stan.aio``) across a failover.

Driven by ``failover.py`` over standard input and output (one line each way per step):

1. connects (one STAN session for the whole run, pinging every second), subscribes a durable
   with manual acks, publishes ``a-0`` .. ``a-{N-1}`` (each awaited), waits until the durable
   got them all and prints ``PHASE1``;
2. waits for ``KILLED`` on standard input (the active broker was killed with SIGKILL), then
   publishes ``b-0`` .. ``b-{N-1}``, each retried until acknowledged (a publish sent while no
   broker is active times out), and waits until the durable got every ``b-*`` too;
3. waits three ping intervals (pings every second: a broker that did not know the session
   would answer one with an error), publishes once more, and prints ``OK <json>`` and exits 0
   when the session was never lost (``conn_lost_cb`` not called, no refused publish, the same
   session published and received throughout); otherwise ``FAIL <why>`` and exit status 1.

It needs Python <= 3.9 (the client passes asyncio's removed ``loop=`` argument).
"""

import argparse
import asyncio
import json
import sys
import time

from nats.aio.client import Client as NATS  # type: ignore
from stan.aio.client import Client as STAN  # type: ignore

N = 20
WAIT = 60.0


def say(line):
    """One line to the driver."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(args):
    """The three steps of the module docstring; raises on any failure."""
    loop = asyncio.get_event_loop()
    nc = NATS()
    await nc.connect(servers=args.url.split(","), loop=loop, max_reconnect_attempts=-1)
    sc = STAN()
    lost = []

    async def conn_lost(err):
        lost.append(str(err))

    # Pings every second (10 may go unanswered during the failover): a broker that did not know
    # this session would answer one with an error, which calls conn_lost.
    await sc.connect(
        args.cluster_id,
        args.client_id,
        nats=nc,
        conn_lost_cb=conn_lost,
        ping_interval=1,
        ping_max_out=10,
    )

    async def publish(data, ack_wait):
        ack = await sc.publish(args.channel, data, ack_wait=ack_wait)
        if ack.error:
            raise AssertionError(f"publish refused: {ack.error}")

    got = {}
    redelivered = 0

    async def on_msg(msg):
        nonlocal redelivered
        data = msg.data.decode()
        if msg.seq in got and got[msg.seq] != data:
            raise AssertionError(f"sequence {msg.seq} changed payload")
        got[msg.seq] = data
        if msg.proto.redelivered:
            redelivered += 1
        await sc.ack(msg)

    await sc.subscribe(
        args.channel,
        cb=on_msg,
        durable_name="dur",
        deliver_all_available=True,
        manual_acks=True,
        ack_wait=2,
    )

    async def wait_all(prefix):
        deadline = time.monotonic() + WAIT
        want = {f"{prefix}-{i}" for i in range(N)}
        while not want <= set(got.values()):
            if time.monotonic() > deadline:
                missing = sorted(want - set(got.values()))
                raise AssertionError(f"the durable did not get {missing}")
            await asyncio.sleep(0.02)

    for i in range(N):
        await publish(f"a-{i}".encode(), 5)
    await wait_all("a")
    say("PHASE1")

    line = await loop.run_in_executor(None, sys.stdin.readline)
    if line.strip() != "KILLED":
        raise AssertionError(f"expected KILLED, got {line!r}")
    retries = 0
    for i in range(N):
        deadline = time.monotonic() + WAIT
        while True:
            try:
                await publish(f"b-{i}".encode(), 2)
                break
            # Not the builtin TimeoutError before Python 3.11.
            except asyncio.TimeoutError:  # noqa: UP041
                # No active broker yet: the outcome is unknown, publish again.
                retries += 1
                if time.monotonic() > deadline:
                    raise
    await wait_all("b")

    seqs = sorted(got)
    gaps = [s for s in range(1, seqs[-1] + 1) if s not in got]
    if gaps:
        raise AssertionError(f"sequences missing at the durable: {gaps}")
    # Three more pings, answered by the new active broker for this same session.
    await asyncio.sleep(3)
    if lost:
        raise AssertionError(f"the STAN session was lost: {lost}")
    await publish(b"last", 5)
    await sc.close()
    await nc.close()
    if lost:
        raise AssertionError(f"the STAN session was lost: {lost}")
    say(
        "OK "
        + json.dumps(
            {
                "messages": len(got),
                "last_seq": seqs[-1],
                "publish_retries": retries,
                "redelivered": redelivered,
            }
        )
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--cluster-id", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--channel", required=True)
    a = p.parse_args()
    try:
        asyncio.get_event_loop().run_until_complete(main(a))
    except Exception as e:  # every failure is reported the same way
        say(f"FAIL {type(e).__name__}: {e}")
        sys.exit(1)
