"""``PublishFuture``, the future of ``publish_async``: asyncio's future protocol, natively."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref
from collections.abc import Callable

import pytest
from conftest import take

import stan_client
from stan_client import PublishFuture, StartPosition


async def test_is_an_asyncio_future_like_object(client: stan_client.Client, channel: str) -> None:
    fut = client.publish_async(channel, b"x")
    assert isinstance(fut, PublishFuture)
    assert asyncio.isfuture(fut)
    assert fut.get_loop() is asyncio.get_running_loop()
    assert not fut.done() and not fut.cancelled()
    assert "pending" in repr(fut)
    with pytest.raises(asyncio.InvalidStateError):
        fut.result()
    with pytest.raises(asyncio.InvalidStateError):
        fut.exception()
    guid = await fut
    assert guid and fut.done() and fut.result() == guid
    assert fut.exception() is None
    assert guid in repr(fut)
    # Awaiting a done future again gives the same result.
    assert await fut == guid


async def test_is_not_tracked_by_the_garbage_collector(
    client: stan_client.Client, channel: str
) -> None:
    fut = client.publish_async(channel, b"x")
    assert not gc.is_tracked(fut)
    assert gc.is_tracked(asyncio.get_running_loop().create_future())
    await fut
    assert not gc.is_tracked(fut)


async def test_works_with_asyncio_helpers(client: stan_client.Client, channel: str) -> None:
    guids = await asyncio.gather(*[client.publish_async(channel, b"%d" % i) for i in range(5)])
    assert len(set(guids)) == 5
    assert await asyncio.wait_for(client.publish_async(channel, b"5"), timeout=10)
    assert await asyncio.shield(client.publish_async(channel, b"6"))
    pending = {client.publish_async(channel, b"7"), client.publish_async(channel, b"8")}
    done, still = await asyncio.wait(pending)
    assert len(done) == 2 and not still
    for first in asyncio.as_completed([client.publish_async(channel, b"9")]):
        assert await first
    task = asyncio.ensure_future(client.publish_async(channel, b"10"))
    assert await task
    sub = await client.subscribe(channel, start_at=StartPosition.FIRST)
    assert [m.data for m in await take(sub, 11)] == [b"%d" % i for i in range(11)]
    await sub.close()


async def test_done_callbacks_run_from_the_loop_in_their_context(
    client: stan_client.Client, channel: str
) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[tuple[str, str]] = []

    def record(name: str) -> Callable[[PublishFuture], None]:
        return lambda f: seen.append((name, var.get()))

    fut = client.publish_async(channel, b"x")
    context = contextvars.copy_context()
    context.run(var.set, "given")
    fut.add_done_callback(record("first"), context=context)
    removed = record("removed")
    fut.add_done_callback(removed)
    fut.add_done_callback(removed)
    assert fut.remove_done_callback(removed) == 2
    assert fut.remove_done_callback(removed) == 0
    fut.add_done_callback(record("second"))
    assert seen == []
    await fut
    # Run in the order added, before the awaiting task resumed (it was added last).
    assert seen == [("first", "given"), ("second", "unset")]
    # Added after completion: scheduled at once, runs at the next loop turn.
    fut.add_done_callback(record("late"))
    assert len(seen) == 2
    await asyncio.sleep(0)
    assert seen[-1] == ("late", "unset")


async def test_cancelling_does_not_cancel_the_publish(
    client: stan_client.Client, channel: str
) -> None:
    fut = client.publish_async(channel, b"1")
    assert fut.cancel("not interested")
    assert fut.cancelled() and fut.done()
    assert not fut.cancel()
    with pytest.raises(asyncio.CancelledError):
        fut.result()
    with pytest.raises(asyncio.CancelledError):
        fut.exception()
    with pytest.raises(asyncio.CancelledError):
        await fut
    # A task waiting for one is cancelled through it, and the publish still happens.
    second = client.publish_async(channel, b"2")

    async def wait_for_ack() -> str:
        return await second

    waiter = asyncio.create_task(wait_for_ack())
    await asyncio.sleep(0)
    assert not waiter.done()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert second.cancelled()
    # wait_for's timeout cancels the future, not the publish.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.publish_async(channel, b"3"), timeout=0)
    await client.publish_async(channel, b"4")
    sub = await client.subscribe(channel, start_at=StartPosition.FIRST)
    assert [m.data for m in await take(sub, 4)] == [b"1", b"2", b"3", b"4"]
    await sub.close()


async def test_failure_raises_a_new_exception_each_time(client: stan_client.Client) -> None:
    fut = client.publish_async("bad..channel", b"x")
    with pytest.raises(stan_client.InvalidArgumentError) as first:
        await fut
    assert first.value.code == "INVALID_ARGUMENT"
    again = fut.exception()
    assert isinstance(again, stan_client.InvalidArgumentError)
    assert again is not first.value and str(again) == str(first.value)
    assert again.__traceback__ is None
    with pytest.raises(stan_client.InvalidArgumentError):
        fut.result()


async def test_set_result_and_set_exception() -> None:
    loop = asyncio.get_running_loop()
    fut = PublishFuture(loop)
    fut.set_result("guid")
    assert await fut == "guid"
    with pytest.raises(asyncio.InvalidStateError):
        fut.set_result("again")
    with pytest.raises(TypeError):
        PublishFuture(loop).set_result(42)  # type: ignore[arg-type]
    failed = PublishFuture(loop)
    failed.set_exception(KeyError("k"))
    with pytest.raises(KeyError):
        await failed
    assert isinstance(failed.exception(), KeyError)
    by_class = PublishFuture(loop)
    by_class.set_exception(RuntimeError)
    with pytest.raises(RuntimeError):
        by_class.result()


def test_run_until_complete() -> None:
    loop = asyncio.new_event_loop()
    try:
        fut = PublishFuture(loop)
        loop.call_soon(fut.set_result, "done")
        assert loop.run_until_complete(fut) == "done"
    finally:
        loop.close()


async def test_a_failing_done_callback_goes_to_the_exception_handler(
    client: stan_client.Client, channel: str
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        ran: list[str] = []
        fut = client.publish_async(channel, b"x")
        fut.add_done_callback(lambda f: 1 / 0)
        fut.add_done_callback(lambda f: ran.append(f.result()))
        guid = await fut
        assert ran == [guid]
        assert len(reported) == 1
        assert isinstance(reported[0]["exception"], ZeroDivisionError)
        assert reported[0]["future"] is fut
        assert "Exception in callback" in str(reported[0]["message"])
    finally:
        loop.set_exception_handler(None)


async def test_a_done_future_keeps_no_cycle_alive(client: stan_client.Client, channel: str) -> None:
    # The collector does not see inside a PublishFuture, so nothing may keep one alive in a
    # cycle through it once it is done: not the task that awaited it, not a raised error.
    async def fail() -> weakref.ref[PublishFuture]:
        fut = client.publish_async("bad..channel", b"x")
        with pytest.raises(stan_client.InvalidArgumentError):
            await fut
        return weakref.ref(fut)

    async def succeed() -> weakref.ref[PublishFuture]:
        fut = client.publish_async(channel, b"x")
        fut.add_done_callback(lambda f: None)
        await fut
        return weakref.ref(fut)

    async def set_failed() -> weakref.ref[PublishFuture]:
        fut = PublishFuture(asyncio.get_running_loop())
        try:
            raise RuntimeError("failed")
        except RuntimeError as err:
            fut.set_exception(err)  # err's traceback holds this frame, which holds fut
        with pytest.raises(RuntimeError, match="failed"):
            await fut
        return weakref.ref(fut)

    refs = [
        await asyncio.create_task(fail()),
        await asyncio.create_task(succeed()),
        await asyncio.create_task(set_failed()),
    ]
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
