from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import WAIT, next_msg, unique

import stan_client
from stan_client import events
from stan_client.testing import BrokerProcess

FAST_PINGS: dict[str, Any] = {"ping_interval_millis_for_tests": 50, "ping_max_out": 3}


async def collect_until(evs: events.Events, kind: type) -> list[events.Event]:
    seen: list[events.Event] = []

    async def run() -> None:
        async for ev in evs:
            seen.append(ev)
            if isinstance(ev, kind):
                return

    await asyncio.wait_for(run(), WAIT)
    return seen


async def test_connect_wrong_cluster_is_connect_timeout(stan_broker: BrokerProcess) -> None:
    with pytest.raises(stan_client.ConnectTimeoutError) as info:
        await stan_client.connect(
            "no-such-cluster",
            unique("c"),
            url=stan_broker.url,
            connect_wait=timedelta(milliseconds=300),
        )
    assert isinstance(info.value, TimeoutError)
    assert info.value.code == "CONNECT_TIMEOUT"


async def test_duplicate_client_id_is_rejected(stan_broker: BrokerProcess) -> None:
    cid = unique("dup")
    sc = await stan_client.connect(stan_broker.cluster_id, cid, url=stan_broker.url)
    with pytest.raises(stan_client.ServerRejectedError, match="clientID already registered"):
        await stan_client.connect(stan_broker.cluster_id, cid, url=stan_broker.url)
    await sc.close()


async def test_invalid_connect_options(stan_broker: BrokerProcess) -> None:
    bad: list[dict[str, Any]] = [
        {"client_id": "a.b"},
        {"client_id": "ok", "ping_interval": timedelta(milliseconds=500)},
        {"client_id": "ok", "ping_max_out": 1},
        {"client_id": "ok", "max_pub_acks_in_flight": 0},
        {"client_id": "ok", "max_pub_acks_in_flight": -5},
        {"client_id": "ok", "pub_ack_wait": timedelta(0)},
        {"client_id": "ok", "connect_wait": timedelta(seconds=-1)},
        {"client_id": "ok", "user": "u"},
        {"client_id": "ok", "nats_urls": "nats://x"},
    ]
    for kwargs in bad:
        client_id = str(kwargs.pop("client_id"))
        with pytest.raises(stan_client.InvalidArgumentError):
            await stan_client.connect(
                stan_broker.cluster_id, client_id, url=stan_broker.url, **kwargs
            )


async def test_connect_refused_is_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nobody listens there
    with pytest.raises(stan_client.TransportError) as info:
        await stan_client.connect("test-cluster", unique("c"), url=f"nats://127.0.0.1:{port}")
    assert info.value.code == "TRANSPORT"


async def test_client_properties_and_close_event(stan_broker: BrokerProcess) -> None:
    cid = unique("props")
    sc = await stan_client.connect(stan_broker.cluster_id, cid, url=stan_broker.url)
    assert sc.client_id == cid
    assert sc.cluster_id == stan_broker.cluster_id
    assert not sc.is_closed
    evs = sc.events()
    await sc.close()
    seen = await collect_until(evs, events.Closed)
    assert isinstance(seen[-1], events.Closed)
    assert [e async for e in evs] == []  # the stream ends after Closed
    assert sc.is_closed


@pytest.fixture
async def fast_client(
    stan_broker_per_test: BrokerProcess,
) -> AsyncIterator[stan_client.Client]:
    sc = await stan_client.connect(
        stan_broker_per_test.cluster_id,
        unique("f"),
        url=stan_broker_per_test.url,
        auto_resume=False,
        **FAST_PINGS,
    )
    yield sc
    await sc.close()


@pytest.fixture
async def impatient_client(
    stan_broker_per_test: BrokerProcess,
) -> AsyncIterator[stan_client.Client]:
    # Short waits, default (slow) pings: a paused broker times requests out, not the session.
    sc = await stan_client.connect(
        stan_broker_per_test.cluster_id,
        unique("i"),
        url=stan_broker_per_test.url,
        pub_ack_wait=timedelta(milliseconds=300),
        connect_wait=timedelta(milliseconds=300),
    )
    yield sc
    await sc.close()


async def test_publish_ack_timeout(
    stan_broker_per_test: BrokerProcess, impatient_client: stan_client.Client
) -> None:
    with stan_broker_per_test.paused(), pytest.raises(stan_client.PublishAckTimeoutError) as i:
        await impatient_client.publish("frozen", b"x")
    assert isinstance(i.value, TimeoutError)
    assert i.value.code == "PUBLISH_ACK_TIMEOUT"


async def test_request_timeout(
    stan_broker_per_test: BrokerProcess, impatient_client: stan_client.Client
) -> None:
    with stan_broker_per_test.paused(), pytest.raises(stan_client.RequestTimeoutError) as i:
        await impatient_client.subscribe("frozen")
    assert isinstance(i.value, TimeoutError)


async def test_connection_lost_ends_subscription_and_closes(
    stan_broker_per_test: BrokerProcess, fast_client: stan_client.Client
) -> None:
    evs = fast_client.events()
    sub = await fast_client.subscribe("lost")
    stan_broker_per_test.kill()
    with pytest.raises(stan_client.ConnectionLostError):
        await next_msg(sub)
    seen = await collect_until(evs, events.Closed)
    lost = [e for e in seen if isinstance(e, events.ConnectionLost)]
    assert lost and not lost[0].resuming
    assert lost[0].reason in set(events.LostReason)
    with pytest.raises((stan_client.ConnectionLostError, stan_client.ConnectionClosedError)):
        await fast_client.publish("lost", b"x")


async def test_auto_resume_after_broker_restart(stan_broker_per_test: BrokerProcess) -> None:
    broker = stan_broker_per_test
    sc = await stan_client.connect(broker.cluster_id, unique("r"), url=broker.url, **FAST_PINGS)
    evs = sc.events()
    sub = await sc.subscribe("resume")
    broker.restart()  # same port, empty memory store: the session is gone
    seen = await collect_until(evs, events.Resumed)
    lost = [e for e in seen if isinstance(e, events.ConnectionLost)]
    assert lost and lost[0].resuming
    resumed = seen[-1]
    assert isinstance(resumed, events.Resumed) and resumed.failed_subscriptions == 0
    await sc.publish("resume", b"after")
    assert (await next_msg(sub)).data == b"after"
    await sub.close()
    await sc.close()
