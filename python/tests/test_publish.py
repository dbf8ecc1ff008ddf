from __future__ import annotations

import asyncio

import pytest
from conftest import take, unique

import stan_client
from stan_client import StartPosition, sync
from stan_client.testing import BrokerProcess


async def test_publish_returns_guid_once_stored(client: stan_client.Client, channel: str) -> None:
    guids = [await client.publish(channel, b"m%d" % i) for i in range(3)]
    assert all(guids) and len(set(guids)) == 3
    sub = await client.subscribe(channel, start_at=StartPosition.FIRST)
    msgs = await take(sub, 3)
    assert [m.data for m in msgs] == [b"m0", b"m1", b"m2"]
    assert [m.sequence for m in msgs] == [1, 2, 3]
    await sub.close()


async def test_publish_accepts_bytearray(client: stan_client.Client, channel: str) -> None:
    await client.publish(channel, bytearray(b"abc"))  # type: ignore[arg-type]
    sub = await client.subscribe(channel, start_at=StartPosition.FIRST)
    assert (await take(sub, 1))[0].data == b"abc"
    await sub.close()


async def test_publish_async_returns_future_at_once_and_keeps_order(
    client: stan_client.Client, channel: str
) -> None:
    acks = [client.publish_async(channel, b"%d" % i) for i in range(200)]
    assert all(asyncio.isfuture(a) and not a.done() for a in acks)
    guids = await asyncio.gather(*acks)
    assert len(set(guids)) == 200
    sub = await client.subscribe(channel, start_at=StartPosition.FIRST)
    msgs = await take(sub, 200)
    assert [m.data for m in msgs] == [b"%d" % i for i in range(200)]
    await sub.close()


async def test_publish_and_publish_async_interleave_in_call_order(
    client: stan_client.Client, channel: str
) -> None:
    first = client.publish_async(channel, b"a")
    await client.publish(channel, b"b")
    third = client.publish_async(channel, b"c")
    await asyncio.gather(first, third)
    sub = await client.subscribe(channel, deliver_all_available=True)
    assert [m.data for m in await take(sub, 3)] == [b"a", b"b", b"c"]
    await sub.close()


async def test_publish_invalid_channel(client: stan_client.Client) -> None:
    with pytest.raises(stan_client.InvalidArgumentError) as info:
        await client.publish("foo.*", b"x")
    assert info.value.code == "INVALID_ARGUMENT"
    assert isinstance(info.value, ValueError)
    with pytest.raises(stan_client.InvalidArgumentError):
        await client.publish_async("", b"x")


async def test_publish_after_close(client: stan_client.Client, channel: str) -> None:
    await client.close()
    assert client.is_closed
    with pytest.raises(stan_client.ConnectionClosedError):
        await client.publish(channel, b"x")
    await client.close()  # idempotent


async def test_cancelled_publish_future_still_publishes(
    client: stan_client.Client, channel: str
) -> None:
    first = client.publish_async(channel, b"1")
    first.cancel()  # cancels waiting for the ack, not the publish
    await client.publish_async(channel, b"2")
    assert first.cancelled()
    sub = await client.subscribe(channel, start_at=StartPosition.FIRST)
    assert [m.data for m in await take(sub, 2)] == [b"1", b"2"]
    await sub.close()


def test_publish_async_from_successive_event_loops(stan_broker: BrokerProcess) -> None:
    # One client used from two event loops in turn (each asyncio.run makes a new loop).
    sc = sync.connect(stan_broker.cluster_id, unique("loops"), url=stan_broker.url)
    native = stan_client.Client(sc._native)

    async def burst() -> list[str]:
        return await asyncio.gather(*[native.publish_async("loops", b"x") for _ in range(50)])

    first = asyncio.run(burst())
    second = asyncio.run(burst())
    assert len(set(first + second)) == 100
    sc.close()
