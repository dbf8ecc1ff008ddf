from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from conftest import WAIT

import stan_client
from stan_client import StartPosition


async def test_async_callback_receives_messages(client: stan_client.Client, channel: str) -> None:
    got: list[bytes] = []
    done = asyncio.Event()

    async def handler(msg: stan_client.Message) -> None:
        got.append(msg.data)
        if len(got) == 3:
            done.set()

    sub = await client.subscribe(channel, cb=handler, start_at=StartPosition.FIRST)
    for i in range(3):
        await client.publish(channel, b"%d" % i)
    await asyncio.wait_for(done.wait(), WAIT)
    await sub.close()
    assert got == [b"0", b"1", b"2"]


async def test_plain_callback_and_manual_ack_via_client(
    client: stan_client.Client, channel: str
) -> None:
    msgs: list[stan_client.Message] = []
    done = asyncio.Event()

    def handler(msg: stan_client.Message) -> None:
        msgs.append(msg)
        done.set()

    sub = await client.subscribe(
        channel, cb=handler, manual_acks=True, ack_wait=timedelta(seconds=1)
    )
    await client.publish(channel, b"x")
    await asyncio.wait_for(done.wait(), WAIT)
    await client.ack(msgs[0])  # acked: no redelivery
    with pytest.raises(asyncio.TimeoutError):
        done.clear()
        await asyncio.wait_for(done.wait(), 1.5)
    await sub.close()
    assert len(msgs) == 1


async def test_callback_errors_go_to_error_cb(client: stan_client.Client, channel: str) -> None:
    errors: list[BaseException] = []
    seen: list[bytes] = []
    two = asyncio.Event()

    async def handler(msg: stan_client.Message) -> None:
        seen.append(msg.data)
        if len(seen) == 2:
            two.set()
        if msg.data == b"bad":
            raise RuntimeError("handler failed")

    async def on_error(err: BaseException) -> None:
        errors.append(err)

    sub = await client.subscribe(channel, cb=handler, error_cb=on_error)
    await client.publish(channel, b"bad")
    await client.publish(channel, b"good")  # delivery goes on after a failing handler
    await asyncio.wait_for(two.wait(), WAIT)
    await sub.close()
    assert seen == [b"bad", b"good"]
    assert len(errors) == 1 and str(errors[0]) == "handler failed"


async def test_callback_subscription_cannot_be_iterated(
    client: stan_client.Client, channel: str
) -> None:
    async def handler(msg: stan_client.Message) -> None:
        return None

    async with await client.subscribe(channel, cb=handler) as sub:
        with pytest.raises(stan_client.InvalidStateError):
            sub.__aiter__()


async def test_callback_may_close_its_own_subscription(
    client: stan_client.Client, channel: str
) -> None:
    closed = asyncio.Event()
    holder: list[stan_client.Subscription] = []

    async def handler(msg: stan_client.Message) -> None:
        await holder[0].close()
        closed.set()

    holder.append(await client.subscribe(channel, cb=handler))
    await client.publish(channel, b"x")
    await asyncio.wait_for(closed.wait(), WAIT)
    async with holder[0]:
        pass
