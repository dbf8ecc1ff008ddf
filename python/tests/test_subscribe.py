from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import WAIT, next_msg, publish_all, take, unique

import stan_client
from stan_client import StartPosition
from stan_client.testing import BrokerProcess


async def test_message_fields(client: stan_client.Client, channel: str) -> None:
    before = datetime.now(timezone.utc)
    await client.publish(channel, b"payload")
    sub = await client.subscribe(channel, start_at=StartPosition.FIRST)
    msg = await next_msg(sub)
    assert isinstance(msg, stan_client.Message)
    assert msg.subject == channel
    assert msg.data == b"payload"
    assert msg.sequence == 1
    assert msg.redelivered is False
    assert msg.redelivery_count == 0
    assert msg.timestamp.tzinfo is not None
    assert before - timedelta(seconds=5) <= msg.timestamp <= datetime.now(timezone.utc)
    assert abs(msg.timestamp_nanos / 1e9 - msg.timestamp.timestamp()) < 1e-5
    assert "sequence=1" in repr(msg)
    await sub.close()


async def test_start_new_only_is_default(client: stan_client.Client, channel: str) -> None:
    await client.publish(channel, b"old")
    sub = await client.subscribe(channel)
    await client.publish(channel, b"new")
    assert (await next_msg(sub)).data == b"new"
    await sub.close()
    sub = await client.subscribe(channel, start_at=StartPosition.NEW_ONLY)
    await client.publish(channel, b"newer")
    assert (await next_msg(sub)).data == b"newer"
    await sub.close()


async def test_start_last_received(client: stan_client.Client, channel: str) -> None:
    await publish_all(client, channel, [b"1", b"2", b"3"])
    sub = await client.subscribe(channel, start_at=StartPosition.LAST_RECEIVED)
    assert (await next_msg(sub)).data == b"3"
    await sub.close()


async def test_start_first_and_deliver_all_available(
    client: stan_client.Client, channel: str
) -> None:
    await publish_all(client, channel, [b"1", b"2"])
    for kwargs in ({"start_at": StartPosition.FIRST}, {"deliver_all_available": True}):
        sub = await client.subscribe(channel, **kwargs)
        assert [m.data for m in await take(sub, 2)] == [b"1", b"2"]
        await sub.close()


async def test_start_at_sequence(client: stan_client.Client, channel: str) -> None:
    await publish_all(client, channel, [b"1", b"2", b"3", b"4"])
    sub = await client.subscribe(channel, start_at=3)
    assert [m.sequence for m in await take(sub, 2)] == [3, 4]
    await sub.close()


async def test_start_at_time_and_time_delta(client: stan_client.Client, channel: str) -> None:
    await client.publish(channel, b"old")
    sub = await client.subscribe(channel, start_at=StartPosition.FIRST)
    old = await next_msg(sub)
    await sub.close()
    # A start time just after the first message's timestamp selects only later messages.
    cut = old.timestamp + timedelta(microseconds=1)
    # A start time travels as "this long before now" (the protocol's time delta), so the
    # server's cut lands later by the subscribe request's transit time: keep "new" well after
    # the cut (a gap between the two timestamps, not a wait for an event).
    await asyncio.sleep(0.3)
    await client.publish(channel, b"new")
    sub = await client.subscribe(channel, start_at=cut)
    assert (await next_msg(sub)).data == b"new"
    await sub.close()
    # Naive datetimes are local time.
    naive_local = cut.astimezone().replace(tzinfo=None)
    sub = await client.subscribe(channel, start_at=naive_local)
    assert (await next_msg(sub)).data == b"new"
    await sub.close()
    # A delta covering everything starts with the first message.
    sub = await client.subscribe(channel, start_at=timedelta(hours=1))
    assert [m.data for m in await take(sub, 2)] == [b"old", b"new"]
    await sub.close()


async def test_start_at_rejects_bad_values(client: stan_client.Client, channel: str) -> None:
    with pytest.raises(stan_client.InvalidArgumentError):
        await client.subscribe(channel, start_at=True)
    with pytest.raises(stan_client.InvalidArgumentError):
        await client.subscribe(channel, start_at="sideways")  # type: ignore[arg-type]
    with pytest.raises(stan_client.InvalidArgumentError):
        await client.subscribe(channel, start_at=-1)
    with pytest.raises(stan_client.InvalidArgumentError):
        await client.subscribe(channel, start_at=3, deliver_all_available=True)


async def test_invalid_subscribe_options(client: stan_client.Client, channel: str) -> None:
    bad: list[dict[str, Any]] = [
        {"max_in_flight": 0},
        {"ack_wait": timedelta(milliseconds=500)},
        {"ack_wait": timedelta(seconds=-1)},
        {"durable_name": "a:b", "queue_group": "q"},
    ]
    for kwargs in bad:
        with pytest.raises(stan_client.InvalidArgumentError):
            await client.subscribe(channel, **kwargs)
    with pytest.raises(stan_client.InvalidArgumentError):
        await client.subscribe("bad..channel")


async def test_durable_resume(client: stan_client.Client, channel: str) -> None:
    await publish_all(client, channel, [b"1", b"2", b"3"])
    sub = await client.subscribe(
        channel, durable_name="dur", start_at=StartPosition.FIRST, manual_acks=True
    )
    for m in await take(sub, 2):
        await m.ack()
    await sub.close()  # the durable is kept
    await client.publish(channel, b"4")
    sub = await client.subscribe(channel, durable_name="dur", manual_acks=True)
    got = await take(sub, 2)
    assert [m.data for m in got] == [b"3", b"4"]
    for m in got:
        await m.ack()
    await sub.close()


async def test_unsubscribe_deletes_durable_but_close_keeps_it(
    client: stan_client.Client, channel: str
) -> None:
    await publish_all(client, channel, [b"1", b"2"])
    async with await client.subscribe(
        channel, durable_name="d", start_at=StartPosition.FIRST, manual_acks=True
    ) as sub:
        for m in await take(sub, 2):
            await m.ack()
    # close (via async with) kept the position: resuming sees only new messages
    sub = await client.subscribe(channel, durable_name="d", start_at=StartPosition.FIRST)
    await client.publish(channel, b"3")
    assert (await next_msg(sub)).data == b"3"
    await sub.unsubscribe()
    # unsubscribe deleted it: the same name starts over from start_at
    sub = await client.subscribe(channel, durable_name="d", start_at=StartPosition.FIRST)
    assert [m.data for m in await take(sub, 3)] == [b"1", b"2", b"3"]
    await sub.unsubscribe()


async def test_close_twice_and_iteration_after_close(
    client: stan_client.Client, channel: str
) -> None:
    sub = await client.subscribe(channel)
    await sub.close()
    with pytest.raises(stan_client.InvalidStateError) as info:
        await sub.close()
    assert info.value.code == "INVALID_STATE"
    with pytest.raises(stan_client.InvalidStateError):
        await sub.unsubscribe()
    assert [m async for m in sub] == []
    async with sub:  # exiting an already closed subscription is fine
        pass


async def test_close_ends_a_pending_iteration(client: stan_client.Client, channel: str) -> None:
    sub = await client.subscribe(channel)
    got: list[bytes] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for m in sub:
            got.append(m.data)
            first.set()

    task = asyncio.create_task(consume())
    await client.publish(channel, b"x")
    await asyncio.wait_for(first.wait(), WAIT)
    # The consumer now waits for a message that never comes; close must end that wait.
    await sub.close()
    await asyncio.wait_for(task, WAIT)
    assert got == [b"x"]


async def test_duplicate_durable_is_rejected(client: stan_client.Client, channel: str) -> None:
    sub = await client.subscribe(channel, durable_name="dup")
    with pytest.raises(stan_client.ServerRejectedError) as info:
        await client.subscribe(channel, durable_name="dup")
    assert str(info.value) == "stan: duplicate durable registration"
    assert info.value.code == "SERVER_REJECTED"
    await sub.close()


async def test_queue_group_each_message_to_one_member(
    stan_broker: BrokerProcess, channel: str
) -> None:
    a = await stan_client.connect(stan_broker.cluster_id, unique("qa"), url=stan_broker.url)
    b = await stan_client.connect(stan_broker.cluster_id, unique("qb"), url=stan_broker.url)
    sa = await a.subscribe(channel, queue_group="workers")
    sb = await b.subscribe(channel, queue_group="workers")
    n = 20
    await publish_all(a, channel, [b"%d" % i for i in range(n)])
    seen: list[bytes] = []

    async def drain(sub: stan_client.Subscription) -> None:
        async for m in sub:
            seen.append(m.data)
            if len(seen) == n:
                return

    ta = asyncio.create_task(drain(sa))
    tb = asyncio.create_task(drain(sb))
    done, _ = await asyncio.wait({ta, tb}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    assert done, "queue members did not receive the messages"
    await sa.close()
    await sb.close()
    await asyncio.gather(ta, tb)
    assert sorted(seen) == sorted(b"%d" % i for i in range(n))  # each exactly once
    await a.close()
    await b.close()


async def test_durable_queue_group_resumes(stan_broker: BrokerProcess, channel: str) -> None:
    sc = await stan_client.connect(stan_broker.cluster_id, unique("dq"), url=stan_broker.url)
    await publish_all(sc, channel, [b"1", b"2"])
    sub = await sc.subscribe(
        channel, queue_group="q", durable_name="dq", start_at=StartPosition.FIRST, manual_acks=True
    )
    for m in await take(sub, 2):
        await m.ack()
    await sub.close()  # last member leaves with close: the durable group is kept
    await sc.publish(channel, b"3")
    sub = await sc.subscribe(
        channel, queue_group="q", durable_name="dq", start_at=StartPosition.FIRST, manual_acks=True
    )
    m = await next_msg(sub)
    assert m.data == b"3"
    await m.ack()
    await sub.unsubscribe()
    await sc.close()


async def test_manual_ack_redelivery(client: stan_client.Client, channel: str) -> None:
    sub = await client.subscribe(channel, manual_acks=True, ack_wait=timedelta(seconds=1))
    assert sub.manual_acks
    await client.publish(channel, b"again")
    first = await next_msg(sub)
    assert not first.redelivered
    again = await next_msg(sub)  # not acked: the server redelivers after ack_wait
    assert again.sequence == first.sequence
    assert again.redelivered
    assert again.redelivery_count >= 1
    await again.ack()
    await again.ack()  # acking twice is a no-op
    await sub.close()


async def test_ack_in_auto_mode_is_invalid_state(client: stan_client.Client, channel: str) -> None:
    sub = await client.subscribe(channel)
    await client.publish(channel, b"x")
    m = await next_msg(sub)
    with pytest.raises(stan_client.InvalidStateError):
        await m.ack()
    with pytest.raises(stan_client.InvalidStateError):
        await client.ack(m)
    await sub.close()


async def test_max_in_flight_limits_unacked(client: stan_client.Client, channel: str) -> None:
    sub = await client.subscribe(
        channel, manual_acks=True, max_in_flight=2, start_at=StartPosition.FIRST
    )
    await publish_all(client, channel, [b"1", b"2", b"3", b"4"])
    got = await take(sub, 2)
    assert [m.data for m in got] == [b"1", b"2"]
    # With two unacked messages the server sends nothing more (short, bounded look).
    with pytest.raises(asyncio.TimeoutError):
        await next_msg(sub, timeout=0.5)
    await got[0].ack()
    assert (await next_msg(sub)).data == b"3"
    await sub.close()


async def test_immediate_results_are_ready_awaitables(
    client: stan_client.Client, channel: str
) -> None:
    sub = await client.subscribe(channel, manual_acks=True, start_at=StartPosition.FIRST)
    await client.publish(channel, b"x")
    msg = await next_msg(sub)
    ack = msg.ack()  # queued at once: an already complete awaitable, no task
    await ack
    with pytest.raises(RuntimeError, match="already awaited"):
        await ack
    await sub.close()
