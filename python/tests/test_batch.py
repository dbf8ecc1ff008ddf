"""Receiving in batches, acks at batch edges, cancellation, ack_many, publish coalescing."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from conftest import WAIT, next_msg, take, unique

import stan_client
from stan_client import StartPosition, _native, sync
from stan_client.testing import BrokerProcess


async def fill(sc: stan_client.Client, channel: str, n: int) -> None:
    guids = await asyncio.gather(*[sc.publish_async(channel, b"%d" % i) for i in range(n)])
    assert len(guids) == n


async def resume_first_sequence(sc: stan_client.Client, channel: str, durable: str) -> int:
    """The sequence a durable resumes at: what the server did not see acknowledged."""
    sub = await sc.subscribe(channel, durable_name=durable, manual_acks=True)
    first = (await next_msg(sub)).sequence
    await sub.close()
    return first


async def test_order_across_batch_boundaries(
    client: stan_client.Client, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stan_client.client, "BATCH_MAX", 7)
    n = 500
    await fill(client, channel, n)
    sub = await client.subscribe(channel, deliver_all_available=True, max_in_flight=1000)
    sizes: set[int] = set()
    seqs: list[int] = []
    async for msg in sub:
        seqs.append(msg.sequence)
        assert sub._batch is not None
        sizes.add(len(sub._batch))
        if len(seqs) == n:
            break
    await sub.close()
    assert seqs == list(range(1, n + 1))
    assert max(sizes) <= 7


async def test_native_batch_api(client: stan_client.Client, channel: str) -> None:
    await fill(client, channel, 20)
    native = (await client.subscribe(channel, deliver_all_available=True, manual_acks=True))._native
    got: list[int] = []
    while len(got) < 20:
        batch = await asyncio.wait_for(native.next_batch(6), WAIT)
        assert batch is not None and 1 <= len(batch) <= 6
        msgs = batch.messages()
        assert batch.taken == 0  # reading takes nothing
        batch.mark_taken(len(msgs))
        assert batch.taken == len(msgs)
        assert "Batch(len=" in repr(batch)
        got.extend(m.sequence for m in msgs)
        await client.ack_many(msgs)
    assert got == list(range(1, 21))
    await native.close()


async def test_auto_ack_at_batch_edges(
    client: stan_client.Client, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of at most 3: taking 5 messages crosses a batch edge. Every message taken is
    # acknowledged (the newest when the subscription closes); the sixth, buffered but never
    # taken, is not: the durable resumes there.
    monkeypatch.setattr(stan_client.client, "BATCH_MAX", 3)
    await fill(client, channel, 10)
    sub = await client.subscribe(channel, durable_name="edges", deliver_all_available=True)
    assert [m.sequence for m in await take(sub, 5)] == [1, 2, 3, 4, 5]
    await sub.close()
    assert await resume_first_sequence(client, channel, "edges") == 6


async def test_break_out_of_async_for_leaves_the_rest_unacked(
    client: stan_client.Client, channel: str
) -> None:
    await fill(client, channel, 50)
    sub = await client.subscribe(channel, durable_name="brk", deliver_all_available=True)
    taken = 0
    async for _ in sub:
        taken += 1
        if taken == 3:
            break
    # The rest of the batch (if it held more) is handed out neither now nor later.
    await sub.close()
    assert await resume_first_sequence(client, channel, "brk") == 4


async def test_close_with_partly_consumed_batch(client: stan_client.Client, channel: str) -> None:
    await fill(client, channel, 50)
    sub = await client.subscribe(channel, durable_name="part", deliver_all_available=True)
    await take(sub, 2)
    # The second receive found the rest of the burst buffered: one batch, partly consumed.
    assert sub._batch is not None
    in_batch = len(sub._batch)
    await take(sub, 1)
    await sub.close()
    assert sub._batch is None
    assert [m async for m in sub] == []  # closed: nothing more is handed out
    assert await resume_first_sequence(client, channel, "part") == 4
    assert in_batch >= 1


async def test_client_close_right_after_the_last_message_acks_it(
    client: stan_client.Client, channel: str, stan_broker: BrokerProcess
) -> None:
    await fill(client, channel, 5)
    cid = unique("c")
    consumer = await stan_client.connect(stan_broker.cluster_id, cid, url=stan_broker.url)
    sub = await consumer.subscribe(channel, durable_name="cc", deliver_all_available=True)
    assert [m.sequence for m in await take(sub, 3)] == [1, 2, 3]
    # No further receive, no subscription close: the third was handed out, so it is handled.
    await consumer.close()
    consumer = await stan_client.connect(stan_broker.cluster_id, cid, url=stan_broker.url)
    try:
        assert await resume_first_sequence(consumer, channel, "cc") == 4
    finally:
        await consumer.close()


async def test_cancelled_receive_acks_nothing_unseen(
    stan_broker: BrokerProcess, client: stan_client.Client, channel: str
) -> None:
    sub = await client.subscribe(channel, durable_name="cancel", ack_wait=timedelta(seconds=1))
    pending = asyncio.ensure_future(sub.__anext__())
    await asyncio.sleep(0)  # the receive is now waiting in the client core
    # Publish from another client, blocking this loop: the batch reaches the client core (and
    # possibly the completion of the waiting receive is queued) while the loop cannot run.
    with sync.connect(stan_broker.cluster_id, unique("pub"), url=stan_broker.url) as other:
        for i in range(3):
            other.publish(channel, b"%d" % i)
        # Let the deliveries arrive while the loop is blocked; the assertions below hold
        # whichever side of the cancellation they land on.
        time.sleep(0.2)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await sub.close()
    # None of the three was seen: none was acked; the durable resumes at the first one.
    assert await resume_first_sequence(client, channel, "cancel") == 1


async def test_wait_for_timeout_then_receive_again(
    client: stan_client.Client, channel: str
) -> None:
    sub = await client.subscribe(channel)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(sub.__anext__(), 0.2)
    await client.publish(channel, b"after")
    assert (await next_msg(sub)).data == b"after"
    await sub.close()


async def test_back_pressure_slow_consumer(client: stan_client.Client, channel: str) -> None:
    # The application is slower than the broker: with max_in_flight=5 the server never has
    # more than 5 unacknowledged messages out, so no batch is larger; nothing is lost or
    # redelivered, and the order holds.
    n = 300
    sub = await client.subscribe(channel, deliver_all_available=True, max_in_flight=5)
    producer = asyncio.ensure_future(fill(client, channel, n))
    seqs: list[int] = []
    largest = 0
    async for msg in sub:
        assert not msg.redelivered
        seqs.append(msg.sequence)
        assert sub._batch is not None
        largest = max(largest, len(sub._batch))
        for _ in range(20):  # slow handling, yielding to the loop
            await asyncio.sleep(0)
        if len(seqs) == n:
            break
    await asyncio.wait_for(producer, WAIT)
    await sub.close()
    assert seqs == list(range(1, n + 1))
    assert 1 <= largest <= 5


async def test_ack_many(client: stan_client.Client, channel: str) -> None:
    await fill(client, channel, 30)
    sub = await client.subscribe(
        channel, durable_name="many", deliver_all_available=True, manual_acks=True
    )
    msgs = await take(sub, 30)
    await sub.ack_many(msgs[:20])
    await sub.ack_many(msgs[:20])  # twice is a no-op
    await sub.ack_many(iter(msgs[20:25]))
    await sub.close()
    assert await resume_first_sequence(client, channel, "many") == 26


async def test_ack_many_bad_input(client: stan_client.Client, channel: str) -> None:
    await client.publish(channel, b"x")
    sub = await client.subscribe(channel, deliver_all_available=True)
    msg = await next_msg(sub)
    with pytest.raises(stan_client.InvalidStateError):
        await sub.ack_many([msg])  # auto-ack subscription
    bad: list[Any] = [msg, "not a message"]
    with pytest.raises(TypeError, match="ack_many takes messages"):
        await client.ack_many(bad)
    await sub.ack_many([])
    await sub.close()


def test_sync_ack_many_and_batches(stan_broker: BrokerProcess) -> None:
    channel = unique("ch")
    with sync.connect(stan_broker.cluster_id, unique("s"), url=stan_broker.url) as sc:
        for i in range(10):
            sc.publish(channel, b"%d" % i)
        sub = sc.subscribe(channel, durable_name="d", deliver_all_available=True, manual_acks=True)
        msgs = [sub.next(timedelta(seconds=WAIT)) for _ in range(10)]
        got = [m for m in msgs if m is not None]
        assert [m.sequence for m in got] == list(range(1, 11))
        sub.ack_many(got[:4])
        sub.close()
        sub = sc.subscribe(channel, durable_name="d", manual_acks=True)
        first = sub.next(timedelta(seconds=WAIT))
        assert first is not None and first.sequence == 5
        sub.close()


class CountingClient:
    """Wraps a native client and counts the native publish calls."""

    def __init__(self, native: _native.Client) -> None:
        self.native = native
        self.calls: list[int] = []

    def publish_many(
        self, subjects: list[str], payloads: list[bytes], futures: Iterable[Any]
    ) -> None:
        self.calls.append(len(subjects))
        self.native.publish_many(subjects, payloads, list(futures))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.native, name)


async def test_publish_async_coalesces_and_reports_each_error(
    client: stan_client.Client, channel: str
) -> None:
    counting = CountingClient(client._native)
    client._native = counting  # type: ignore[assignment]
    futures = [
        client.publish_async(channel if i != 50 else "bad..channel", b"%d" % i) for i in range(100)
    ]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert counting.calls == [100]  # one native call for the whole loop turn
    assert isinstance(results[50], stan_client.InvalidArgumentError)
    good = [r for i, r in enumerate(results) if i != 50]
    assert all(isinstance(g, str) for g in good) and len(set(good)) == 99
    sub = await client.subscribe(channel, deliver_all_available=True)
    got = [m.data for m in await take(sub, 99)]
    assert got == [b"%d" % i for i in range(100) if i != 50]
    await sub.close()


async def test_publish_flushes_pending_publish_async_first(
    client: stan_client.Client, channel: str
) -> None:
    counting = CountingClient(client._native)
    client._native = counting  # type: ignore[assignment]
    first = [client.publish_async(channel, b"%d" % i) for i in range(3)]
    await client.publish(channel, b"3")  # goes out after the three queued before it
    more = client.publish_async(channel, b"4")
    await asyncio.gather(*first, more)
    assert counting.calls == [3, 1]
    sub = await client.subscribe(channel, deliver_all_available=True)
    assert [m.data for m in await take(sub, 5)] == [b"0", b"1", b"2", b"3", b"4"]
    await sub.close()


async def test_publish_async_needs_a_running_loop_on_its_own_thread(
    client: stan_client.Client, channel: str
) -> None:
    first = client.publish_async(channel, b"0")  # queued for this loop turn
    errors: list[BaseException] = []

    def elsewhere() -> None:
        try:
            client.publish_async(channel, b"1")
        except BaseException as err:
            errors.append(err)

    # Another thread, no loop running there: the calls queued on this one do not count.
    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    more = client.publish_async(channel, b"2")
    await asyncio.gather(first, more)
    sub = await client.subscribe(channel, deliver_all_available=True)
    assert [m.data for m in await take(sub, 2)] == [b"0", b"2"]
    await sub.close()


async def test_publish_async_after_close_fails_each(client: stan_client.Client) -> None:
    await client.close()
    results = await asyncio.gather(
        *[client.publish_async("ch", b"x") for _ in range(3)], return_exceptions=True
    )
    assert all(isinstance(r, stan_client.ConnectionClosedError) for r in results)


async def test_callback_consumer_reads_batches(client: stan_client.Client, channel: str) -> None:
    n = 200
    await fill(client, channel, n)
    got: list[int] = []
    done = asyncio.Event()

    def handler(msg: stan_client.Message) -> None:
        got.append(msg.sequence)
        if len(got) == n:
            done.set()

    sub = await client.subscribe(channel, cb=handler, start_at=StartPosition.FIRST)
    await asyncio.wait_for(done.wait(), WAIT)
    await sub.close()
    assert got == list(range(1, n + 1))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_waiting_receives_share_the_loops_wakeup_socket(
    client: stan_client.Client, channel: str
) -> None:
    # Every subscription that waits resolves through the event loop's one resolver: many
    # subscriptions, opened and closed, leave no file descriptors behind.
    async def one_round(i: int) -> None:
        sub = await client.subscribe(channel)
        waiting = asyncio.ensure_future(sub.__anext__())
        await asyncio.sleep(0)  # the receive now waits (the resolver path)
        await client.publish(channel, b"%d" % i)
        assert (await asyncio.wait_for(waiting, WAIT)).data == b"%d" % i
        await sub.close()

    await one_round(0)
    before = open_fds()
    for i in range(1, 30):
        await one_round(i)
    assert open_fds() - before < 10
