"""TLS towards a broker started with ``--tlscert``/``--tlskey`` (and ``--tlsverify``).

The certificates are the repository's test certificates (``test-certs/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import next_msg, unique

import stan_client
from stan_client import TlsOptions
from stan_client.testing import BrokerProcess

CERTS = Path(__file__).resolve().parents[2] / "test-certs"


def cert(name: str) -> str:
    return str(CERTS / name)


SERVER_TLS = ["--tlscert", cert("server.pem"), "--tlskey", cert("server-key.pem")]


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[BrokerProcess]:
    broker = BrokerProcess(extra_args=SERVER_TLS).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def verifying_broker() -> Iterator[BrokerProcess]:
    args = [*SERVER_TLS, "--tlsverify", "--tlscacert", cert("ca.pem")]
    broker = BrokerProcess(extra_args=args).start()
    yield broker
    broker.stop()


async def round_trip(broker: BrokerProcess, tls: TlsOptions) -> None:
    sc = await stan_client.connect(broker.cluster_id, unique("tls"), url=broker.url, tls=tls)
    try:
        channel = unique("ch")
        sub = await sc.subscribe(channel)
        await sc.publish(channel, b"over tls")
        msg = await next_msg(sub)
        assert msg.data == b"over tls"
    finally:
        await sc.close()


async def test_publish_and_consume_over_tls(tls_broker: BrokerProcess) -> None:
    await round_trip(tls_broker, TlsOptions(root_certificates=[cert("ca.pem")]))


async def test_require_tls_with_a_trusted_root(tls_broker: BrokerProcess) -> None:
    await round_trip(tls_broker, TlsOptions(require_tls=True, root_certificates=[cert("ca.pem")]))


async def test_a_server_signed_by_another_ca_is_refused(tls_broker: BrokerProcess) -> None:
    with pytest.raises(stan_client.TransportError):
        await stan_client.connect(
            tls_broker.cluster_id,
            unique("tls"),
            url=tls_broker.url,
            tls=TlsOptions(root_certificates=[cert("other-ca.pem")]),
        )


async def test_without_tls_options_the_test_ca_is_not_trusted(tls_broker: BrokerProcess) -> None:
    with pytest.raises(stan_client.TransportError):
        await stan_client.connect(tls_broker.cluster_id, unique("tls"), url=tls_broker.url)


async def test_client_certificate_accepted_by_a_verifying_broker(
    verifying_broker: BrokerProcess,
) -> None:
    tls = TlsOptions(
        root_certificates=[cert("ca.pem")],
        client_certificate=(cert("client.pem"), cert("client-key.pem")),
    )
    await round_trip(verifying_broker, tls)


@pytest.mark.parametrize(
    "client_certificate",
    [None, (cert("other-client.pem"), cert("other-client-key.pem"))],
    ids=["no-certificate", "certificate-of-another-ca"],
)
async def test_verifying_broker_refuses_unknown_clients(
    verifying_broker: BrokerProcess, client_certificate: tuple[str, str] | None
) -> None:
    tls = TlsOptions(root_certificates=[cert("ca.pem")], client_certificate=client_certificate)
    with pytest.raises(stan_client.TransportError):
        await stan_client.connect(
            verifying_broker.cluster_id, unique("tls"), url=verifying_broker.url, tls=tls
        )


async def test_missing_certificate_file_is_a_clear_error(tls_broker: BrokerProcess) -> None:
    missing = str(CERTS / "no-such-ca.pem")
    with pytest.raises(stan_client.StanError, match=r"no-such-ca\.pem"):
        await stan_client.connect(
            tls_broker.cluster_id,
            unique("tls"),
            url=tls_broker.url,
            tls=TlsOptions(root_certificates=[missing]),
        )
