"""What closing a client (or dropping it unclosed) does to its subscriptions and publishes."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from conftest import WAIT, unique

import stan_client
from stan_client import StartPosition, _native, sync
from stan_client.testing import BrokerProcess

STORED = 10
"""Messages stored before subscribing: they arrive together, so batches hold several."""

ROUNDS = 1000
"""Awaitables checked for a reference kept after they resolved. When the runtime released its
reference on its own threads, roughly one in a hundred was still referenced one loop turn
after it resolved."""


async def test_client_close_ends_iteration_without_handing_out_buffered_messages(
    stan_broker: BrokerProcess, channel: str
) -> None:
    publisher = await stan_client.connect(stan_broker.cluster_id, unique("c"), url=stan_broker.url)
    for i in range(STORED):
        await publisher.publish(channel, b"m%d" % i)
    client_id = unique("c")
    sc = await stan_client.connect(stan_broker.cluster_id, client_id, url=stan_broker.url)
    sub = await sc.subscribe(channel, durable_name="d", start_at=StartPosition.FIRST)
    taken = [await asyncio.wait_for(sub.__anext__(), WAIT)]
    while sub._pos >= len(sub._msgs):  # until a batch holds messages not handed out yet
        taken.append(await asyncio.wait_for(sub.__anext__(), WAIT))
    await sc.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(sub.__anext__(), WAIT)
    # With auto acks the messages handed out were acknowledged before the close; the durable
    # resumes right after them.
    sc = await stan_client.connect(stan_broker.cluster_id, client_id, url=stan_broker.url)
    async with await sc.subscribe(channel, durable_name="d", start_at=StartPosition.FIRST) as again:
        nxt = await asyncio.wait_for(again.__anext__(), WAIT)
        assert nxt.sequence == taken[-1].sequence + 1
    await sc.close()
    await publisher.close()


async def test_client_close_ends_a_callback_subscription(
    stan_broker: BrokerProcess, channel: str
) -> None:
    sc = await stan_client.connect(stan_broker.cluster_id, unique("c"), url=stan_broker.url)
    for i in range(STORED):
        await sc.publish(channel, b"m%d" % i)
    got: list[int] = []
    first = asyncio.get_running_loop().create_future()

    async def handler(msg: stan_client.Message) -> None:
        got.append(msg.sequence)
        if not first.done():
            first.set_result(None)
            await sc.close()

    sub = await sc.subscribe(channel, start_at=StartPosition.FIRST, cb=handler)
    await asyncio.wait_for(first, WAIT)
    assert sub._task is not None
    await asyncio.wait_for(sub._task, WAIT)
    assert got == [1]


def test_sync_client_close_ends_iteration_without_handing_out_buffered_messages(
    stan_broker: BrokerProcess, channel: str
) -> None:
    with sync.connect(stan_broker.cluster_id, unique("c"), url=stan_broker.url) as sc:
        for i in range(STORED):
            sc.publish(channel, b"m%d" % i)
        sub = sc.subscribe(channel, start_at=StartPosition.FIRST)
        assert sub.next() is not None
        while sub._pos >= len(sub._msgs):  # until a batch holds messages not handed out yet
            assert sub.next() is not None
        sc.close()
        assert sub.next() is None


async def test_a_client_collected_without_close_fails_its_pending_publishes(
    stan_broker_per_test: BrokerProcess, channel: str
) -> None:
    broker = stan_broker_per_test
    sc = await stan_client.connect(broker.cluster_id, unique("c"), url=broker.url)
    events = sc.events()
    with broker.paused():
        pending = sc.publish_async(channel, b"never acked")
        await asyncio.sleep(0)  # one loop turn: the publish starts
        del sc
        gc.collect()
        with pytest.raises(stan_client.ConnectionClosedError):
            await asyncio.wait_for(pending, WAIT)

        async def all_events() -> list[stan_client.Event]:
            return [ev async for ev in events]

        seen = await asyncio.wait_for(all_events(), WAIT)
        assert isinstance(seen[-1], stan_client.Closed)


async def test_the_binding_keeps_no_reference_to_an_awaitable_it_resolved() -> None:
    # An awaitable keeps its result (a client, a subscription) alive. Once it resolved, the
    # binding must hold no reference to it: one released later on a runtime thread stays
    # until some thread next runs the binding's code, and a client dropped right after
    # `connect` then stayed open, its pending publishes not failed.
    for _ in range(ROUNDS):
        fut = _native._panic_async("")
        await fut
        gone = weakref.ref(fut)
        del fut
        await asyncio.sleep(0)  # one loop turn: the wake-up that resumed us held the future
        assert gone() is None
