from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import unique

import stan_client
from stan_client import sync
from stan_client.testing import (
    READY_PREFIX,
    BrokerProcess,
    find_broker_binary,
    free_port,
    run_broker,
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_refuses_inherited_client_and_can_connect(
    stan_broker: BrokerProcess, channel: str
) -> None:
    parent = sync.connect(stan_broker.cluster_id, unique("p"), url=stan_broker.url)
    parent.publish(channel, b"before fork")
    pid = os.fork()
    if pid == 0:  # child: report through the exit code only
        code = 0
        try:
            try:
                parent.publish(channel, b"from child")
                code = 10
            except stan_client.InvalidStateError:
                pass
            child = sync.connect(stan_broker.cluster_id, unique("k"), url=stan_broker.url)
            child.publish(channel, b"child's own client")
            child.close()
        except BaseException as e:
            print(f"child failed: {e!r}", file=sys.stderr)
            code = 20
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent's client is unaffected
    assert parent.publish(channel, b"after fork")
    with parent.subscribe(channel, deliver_all_available=True) as sub:
        data = [m.data for _, m in zip(range(3), sub, strict=False)]
    assert data == [b"before fork", b"child's own client", b"after fork"]
    parent.close()


def test_run_broker_context_manager_and_restart() -> None:
    assert find_broker_binary().is_file()
    with run_broker(cluster_id="other-cluster") as broker:
        assert broker.running
        assert broker.url.startswith("nats://127.0.0.1:")
        port = broker.port
        with sync.connect("other-cluster", unique("x"), url=broker.url) as sc:
            sc.publish("ping", b"x")
        broker.restart()
        assert broker.port == port and broker.running
        assert broker.url == f"nats://127.0.0.1:{port}"
        assert broker.monitoring_url is None
        # The ready line is not mixed into the logs.
        assert READY_PREFIX not in broker.output()
    assert not broker.running


def test_monitoring_url_comes_from_the_ready_line_and_survives_restart() -> None:
    with run_broker(cluster_id="mon-cluster", monitoring=True) as broker:
        url = broker.monitoring_url
        assert url is not None and url.startswith("http://127.0.0.1:")

        def serverz() -> dict[str, object]:
            assert broker.monitoring_url is not None
            with urllib.request.urlopen(broker.monitoring_url + "/streaming/serverz") as r:
                body: dict[str, object] = json.load(r)
            return body

        assert serverz()["cluster_id"] == "mon-cluster"
        broker.restart()
        assert broker.monitoring_url == url
        assert serverz()["cluster_id"] == "mon-cluster"


def test_brokers_listen_below_the_ephemeral_port_range() -> None:
    # Ports of the ephemeral range can be held by any outgoing connection when a restarted
    # broker binds them again; free_port() stays below that range.
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    if low <= 11024:
        pytest.skip(f"no room below the ephemeral range (starts at {low})")
    assert all(free_port() < low for _ in range(20))
    with run_broker(monitoring=True) as broker:
        assert broker.port < low
        assert broker.monitoring_url is not None
        assert int(broker.monitoring_url.rsplit(":", 1)[1]) < low


def test_missing_broker_binary_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAN_BROKER_BIN", "/nonexistent/stan-broker")
    with pytest.raises(FileNotFoundError):
        find_broker_binary()


EXIT_WITH_WORK_IN_FLIGHT = """
import asyncio, sys
import stan_client

async def main(url: str) -> None:
    sc = await stan_client.connect("test-cluster", sys.argv[2], url=url)
    sub = await sc.subscribe("exit-" + sys.argv[2])
    pending = asyncio.ensure_future(sub.__anext__())  # never resolved
    acks = [sc.publish_async("exit-" + sys.argv[2], b"x") for _ in range(200)]
    await acks[0]
    # leave without closing anything, with publishes and a receive in flight

asyncio.run(main(sys.argv[1]))
"""


def test_interpreter_exit_with_work_in_flight_is_clean(
    stan_broker: BrokerProcess, tmp_path: Path
) -> None:
    import subprocess

    for i in range(5):
        # Run outside the source tree so the installed package is imported, not ./stan_client.
        r = subprocess.run(
            [sys.executable, "-c", EXIT_WITH_WORK_IN_FLIGHT, stan_broker.url, unique(f"e{i}")],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
        assert "Fatal Python error" not in r.stderr
