//! TLS on the client port: INFO in plaintext, then the client's handshake; client
//! certificates when verification is on.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::{opts, Raw, WAIT};
use futures::StreamExt;
use stan_embedded_nats::{proto_err, Server, ServerOptions, TlsConfig};
use stan_test_support::server_synced;
use tokio::time::timeout;

fn cert(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../test-certs")
        .join(name)
}

fn tls(verify: bool) -> TlsConfig {
    TlsConfig::from_pem_files(
        &cert("server.pem"),
        &cert("server-key.pem"),
        verify.then(|| cert("ca.pem")).as_deref(),
        verify,
    )
    .expect("test certificates load")
}

async fn start_tls(verify: bool) -> Server {
    Server::start(ServerOptions {
        tls: Some(tls(verify)),
        ..opts()
    })
    .await
    .expect("server starts")
}

/// async-nats options trusting `ca` (a file of test-certs).
fn trusting(ca: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new().add_root_certificates(cert(ca))
}

async fn connect(
    server: &Server,
    options: async_nats::ConnectOptions,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    timeout(WAIT, options.connect(server.client_url()))
        .await
        .expect("connect ends within the timeout")
}

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    timeout(WAIT, sub.next())
        .await
        .expect("message within timeout")
        .expect("subscription open")
}

/// A publish from one TLS connection reaches a subscriber on another.
async fn assert_round_trip(a: &async_nats::Client, b: &async_nats::Client) {
    let subject = stan_test_support::unique("tls");
    let mut sub = a.subscribe(subject.clone()).await.unwrap();
    server_synced(a).await;
    b.publish(subject, "over tls".into()).await.unwrap();
    b.flush().await.unwrap();
    assert_eq!(next(&mut sub).await.payload, "over tls");
}

#[tokio::test]
async fn info_is_plaintext_and_advertises_tls() {
    let server = start_tls(false).await;
    assert!(server.client_url().starts_with("tls://127.0.0.1:"));
    let raw = Raw::open(&server).await;
    assert_eq!(raw.info["tls_required"], true);
    assert!(raw.info.get("tls_verify").is_none(), "{}", raw.info);
    drop(raw);

    let verifying = start_tls(true).await;
    let raw = Raw::open(&verifying).await;
    assert_eq!(raw.info["tls_required"], true);
    assert_eq!(raw.info["tls_verify"], true);

    let plain = common::start().await;
    assert!(plain.client_url().starts_with("nats://"));
    let raw = Raw::open(&plain).await;
    assert!(raw.info.get("tls_required").is_none(), "{}", raw.info);
    server.shutdown().await;
    verifying.shutdown().await;
    plain.shutdown().await;
}

#[tokio::test]
async fn clients_trusting_the_ca_publish_and_subscribe() {
    let server = start_tls(false).await;
    let a = connect(&server, trusting("ca.pem")).await.unwrap();
    let b = connect(&server, trusting("ca.pem").require_tls(true))
        .await
        .unwrap();
    assert_round_trip(&a, &b).await;
    assert_eq!(server.num_connections(), 2);

    // In-process connections are not affected by TLS.
    let local = server.connect_local("engine");
    let mut local_sub = local.subscribe("to.local", None).unwrap();
    b.publish("to.local", "hi".into()).await.unwrap();
    b.flush().await.unwrap();
    let m = timeout(WAIT, local_sub.next())
        .await
        .expect("local message")
        .expect("open");
    assert_eq!(m.payload, "hi");
    server.shutdown().await;
}

#[tokio::test]
async fn large_bursts_arrive_whole_over_tls() {
    let server = start_tls(false).await;
    let a = connect(&server, trusting("ca.pem")).await.unwrap();
    let b = connect(&server, trusting("ca.pem")).await.unwrap();
    let mut sub = a.subscribe("bulk").await.unwrap();
    server_synced(&a).await;
    let payload: Bytes = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    for i in 0..20u8 {
        let mut p = payload.to_vec();
        p[0] = i;
        b.publish("bulk", p.into()).await.unwrap();
    }
    b.flush().await.unwrap();
    for i in 0..20u8 {
        let m = next(&mut sub).await;
        assert_eq!(m.payload.len(), payload.len());
        assert_eq!(m.payload[0], i);
        assert_eq!(m.payload[1..], payload[1..]);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn clients_that_do_not_trust_the_server_are_refused_and_the_server_goes_on() {
    let server = start_tls(false).await;
    // Trusting another CA only: the client rejects the server's certificate.
    let e = connect(&server, trusting("other-ca.pem"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    // No TLS settings: the client upgrades as INFO asks, and the system roots (if the
    // machine has any) do not know the test CA.
    assert!(connect(&server, async_nats::ConnectOptions::new())
        .await
        .is_err());
    // The server is still up for a client that trusts it.
    let a = connect(&server, trusting("ca.pem")).await.unwrap();
    let b = connect(&server, trusting("ca.pem")).await.unwrap();
    assert_round_trip(&a, &b).await;
    common::wait_for(|| server.num_connections() == 2).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_plaintext_client_is_told_tls_is_required_and_closed() {
    let server = start_tls(false).await;
    let mut raw = Raw::open(&server).await;
    raw.send("CONNECT {}\r\nPING\r\n").await;
    raw.expect(&format!("-ERR '{}'", proto_err::TLS_REQUIRED))
        .await;
    raw.expect_closed().await;
    common::wait_for(|| server.num_connections() == 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn verification_requires_a_client_certificate_signed_by_the_ca() {
    let server = start_tls(true).await;
    let with_cert = |c: &str, k: &str| trusting("ca.pem").add_client_certificate(cert(c), cert(k));

    let a = connect(&server, with_cert("client.pem", "client-key.pem"))
        .await
        .unwrap();
    let b = connect(&server, with_cert("client.pem", "client-key.pem"))
        .await
        .unwrap();
    assert_round_trip(&a, &b).await;

    // No certificate, or one signed by another CA: the server ends the handshake. With TLS
    // 1.3 the client learns it on its first read (the answer to CONNECT), so the kind of
    // error depends on timing; it is an error either way.
    assert!(connect(&server, trusting("ca.pem")).await.is_err());
    assert!(connect(
        &server,
        with_cert("other-client.pem", "other-client-key.pem")
    )
    .await
    .is_err());
    // The refused connections are gone; the accepted ones still work.
    common::wait_for(|| server.num_connections() == 2).await;
    assert_round_trip(&b, &a).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_starts_tls_is_closed_after_the_handshake_timeout() {
    let server = Server::start(ServerOptions {
        tls: Some(tls(false).with_handshake_timeout(std::time::Duration::from_millis(200))),
        ..opts()
    })
    .await
    .unwrap();
    // INFO read, then silence.
    let mut raw = Raw::open(&server).await;
    raw.expect_closed().await;
    common::wait_for(|| server.num_connections() == 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_pending_handshake() {
    let server = Server::start(ServerOptions {
        tls: Some(tls(false).with_handshake_timeout(std::time::Duration::from_secs(3600))),
        ..opts()
    })
    .await
    .unwrap();
    let _raw = Raw::open(&server).await;
    timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown completes while a client has not started TLS");
}
