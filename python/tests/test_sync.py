from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from conftest import unique

import stan_client
from stan_client import StartPosition, sync
from stan_client.testing import BrokerProcess


def test_sync_publish_subscribe(stan_broker: BrokerProcess, channel: str) -> None:
    with sync.connect(stan_broker.cluster_id, unique("s"), url=stan_broker.url) as sc:
        assert sc.client_id.startswith("s-")
        guids = [sc.publish(channel, b"%d" % i) for i in range(3)]
        assert len(set(guids)) == 3
        with sc.subscribe(channel, start_at=StartPosition.FIRST, manual_acks=True) as sub:
            assert sub.subject == channel
            got = []
            for msg in sub:
                assert isinstance(msg, sync.Message)
                msg.ack()
                got.append((msg.sequence, msg.data, msg.subject, msg.redelivered))
                if len(got) == 3:
                    break
            assert got == [(i + 1, b"%d" % i, channel, False) for i in range(3)]
            assert msg.timestamp.tzinfo is not None
            assert msg.redelivery_count == 0 and msg.timestamp_nanos > 0
            with pytest.raises(TimeoutError):
                sub.next(timeout=timedelta(milliseconds=200))
        assert sub.next() is None  # closed by the with block
    assert sc.is_closed


def test_sync_errors_and_unsubscribe(stan_broker: BrokerProcess, channel: str) -> None:
    with pytest.raises(stan_client.InvalidArgumentError):
        sync.connect(stan_broker.cluster_id, "bad id", url=stan_broker.url)
    with sync.connect(stan_broker.cluster_id, unique("s"), url=stan_broker.url) as sc:
        sub = sc.subscribe(channel, durable_name="d")
        sub.unsubscribe()
        with pytest.raises(stan_client.InvalidStateError):
            sub.close()
        with sub:  # already unsubscribed: exit does nothing
            pass
        with pytest.raises(stan_client.InvalidArgumentError):
            sc.publish("bad..subject", b"x")


def test_blocking_wait_releases_the_gil(stan_broker: BrokerProcess, channel: str) -> None:
    # A thread blocks in next(); the main thread can only publish (Python code, needing the
    # GIL) if that wait released it. Otherwise this test hangs until its timeout.
    with sync.connect(stan_broker.cluster_id, unique("g"), url=stan_broker.url) as sc:
        sub = sc.subscribe(channel)
        received: list[bytes] = []
        waiting = threading.Event()

        def consumer() -> None:
            waiting.set()
            msg = sub.next(timeout=timedelta(seconds=20))
            assert msg is not None
            received.append(msg.data)

        t = threading.Thread(target=consumer)
        t.start()
        assert waiting.wait(10)
        sc.publish(channel, b"through")
        t.join(20)
        assert received == [b"through"]
        sub.close()


def test_close_from_another_thread_ends_blocking_iteration(
    stan_broker: BrokerProcess, channel: str
) -> None:
    with sync.connect(stan_broker.cluster_id, unique("t"), url=stan_broker.url) as sc:
        sub = sc.subscribe(channel)
        got: list[bytes] = []
        first = threading.Event()

        def consumer() -> None:
            for msg in sub:
                got.append(msg.data)
                first.set()

        t = threading.Thread(target=consumer)
        t.start()
        sc.publish(channel, b"one")
        assert first.wait(10)
        sub.close()
        t.join(10)
        assert not t.is_alive()
        assert got == [b"one"]
