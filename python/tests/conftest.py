from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

import stan_client
from stan_client.testing import BrokerProcess


def pytest_report_header() -> str:
    return f"stan_client {stan_client.__version__} from {stan_client.__file__}"


WAIT = 10.0
"""Upper bound for awaiting something that must happen (not a speed assertion)."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def channel() -> str:
    return unique("ch")


@pytest.fixture
async def client(stan_broker: BrokerProcess) -> AsyncIterator[stan_client.Client]:
    sc = await stan_client.connect(stan_broker.cluster_id, unique("c"), url=stan_broker.url)
    yield sc
    await sc.close()


async def next_msg(sub: stan_client.Subscription, timeout: float = WAIT) -> stan_client.Message:
    return await asyncio.wait_for(sub.__anext__(), timeout)


async def take(sub: stan_client.Subscription, n: int) -> list[stan_client.Message]:
    return [await next_msg(sub) for _ in range(n)]


async def publish_all(sc: stan_client.Client, channel: str, payloads: list[bytes]) -> list[str]:
    return [await sc.publish(channel, p) for p in payloads]
