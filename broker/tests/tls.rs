//! TLS: clients of the embedded server's TLS port (`--tls*`, `ServerTls`), and the broker's own
//! TLS connection to an external `nats-server` (`-ns` with `--tls_client_*`). Certificates are
//! the repository's test certificates (`test-certs/`). The external-mode tests skip with a
//! printed reason when `nats-server` is not installed.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use futures::StreamExt;
use stan_broker::config::{BrokerConfig, NatsMode, ServerTls};
use stan_broker::Broker;
use stan_client::{ConnectOptions, SubscribeOptions, TlsOptions};
use stan_test_support::{
    free_port, nats_server_binary, start_broker, unique, within, BrokerProcess, ProcessOptions,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_stan-broker");

fn cert(name: &str) -> String {
    format!("{}/../test-certs/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn server_tls(verify: bool) -> ServerTls {
    ServerTls {
        cert_file: cert("server.pem").into(),
        key_file: cert("server-key.pem").into(),
        ca_file: verify.then(|| cert("ca.pem").into()),
        verify,
        timeout: None,
    }
}

async fn tls_broker(verify: bool) -> Broker {
    start_broker(|cfg: &mut BrokerConfig| {
        if let NatsMode::Embedded(e) = &mut cfg.nats {
            e.tls = Some(server_tls(verify));
        }
    })
    .await
}

fn trusting(ca: &str) -> TlsOptions {
    TlsOptions::default().root_certificate(cert(ca))
}

async fn stan_connect(
    url: &str,
    cluster_id: &str,
    tls: Option<TlsOptions>,
) -> stan_client::Result<stan_client::Client> {
    let mut opts = ConnectOptions::new(cluster_id, unique("tls")).nats_url(url);
    if let Some(tls) = tls {
        opts = opts.tls(tls);
    }
    within("connect", opts.connect()).await
}

/// Publishes on a fresh channel and receives the message back on a subscription.
async fn round_trip(client: &stan_client::Client) {
    let channel = unique("tls");
    let mut sub = client
        .subscribe(&channel, SubscribeOptions::new())
        .await
        .expect("subscribe");
    client.publish(&channel, "over tls").await.expect("publish");
    let m = within("a message", sub.next())
        .await
        .expect("subscription open")
        .expect("message");
    assert_eq!(m.data().as_ref(), b"over tls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stan_client_publishes_and_consumes_over_tls() {
    let b = tls_broker(false).await;
    let url = b.client_url();
    assert!(url.starts_with("tls://127.0.0.1:"), "{url}");
    let c = stan_connect(&url, b.cluster_id(), Some(trusting("ca.pem")))
        .await
        .expect("TLS client connects");
    round_trip(&c).await;
    c.close().await.unwrap();
    // A nats:// URL works too: the client upgrades because INFO requires TLS.
    let plain_scheme = url.replacen("tls://", "nats://", 1);
    let c = stan_connect(
        &plain_scheme,
        b.cluster_id(),
        Some(trusting("ca.pem").require_tls(true)),
    )
    .await
    .expect("TLS client connects through a nats:// URL");
    round_trip(&c).await;
    c.close().await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_tls_or_trusting_another_ca_are_refused() {
    let b = tls_broker(false).await;
    let url = b.client_url();
    // async-nats trusting the test CA.
    let nc = within(
        "connect",
        async_nats::ConnectOptions::new()
            .add_root_certificates(cert("ca.pem").into())
            .connect(&url),
    )
    .await
    .expect("async-nats over TLS");
    assert!(nc.server_info().tls_required);
    nc.publish("plain.core", "x".into()).await.unwrap();
    nc.flush().await.unwrap();

    // A client that does not speak TLS gets INFO with tls_required, then an error.
    let addr = url.trim_start_matches("tls://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    within("INFO", rd.read_line(&mut line)).await.unwrap();
    let info: serde_json::Value =
        serde_json::from_str(line.trim_end().strip_prefix("INFO ").unwrap()).unwrap();
    assert_eq!(info["tls_required"], true, "{line}");
    wr.write_all(b"CONNECT {}\r\nPING\r\n").await.unwrap();
    line.clear();
    within("an error", rd.read_line(&mut line)).await.unwrap();
    assert_eq!(line, "-ERR 'Secure Connection - TLS Required'\r\n");
    line.clear();
    assert_eq!(within("close", rd.read_line(&mut line)).await.unwrap(), 0);

    // No TLS options: the system roots do not trust the test CA.
    assert!(stan_connect(&url, b.cluster_id(), None).await.is_err());
    // Trusting only another CA.
    let err = stan_connect(&url, b.cluster_id(), Some(trusting("other-ca.pem")))
        .await
        .expect_err("another CA does not trust the server");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // The broker still serves.
    let c = stan_connect(&url, b.cluster_id(), Some(trusting("ca.pem")))
        .await
        .expect("connects after the refusals");
    round_trip(&c).await;
    c.close().await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_accepts_only_certificates_of_the_ca() {
    let b = tls_broker(true).await;
    let url = b.client_url();
    let with = |c: &str, k: &str| trusting("ca.pem").client_certificate(cert(c), cert(k));
    let c = stan_connect(
        &url,
        b.cluster_id(),
        Some(with("client.pem", "client-key.pem")),
    )
    .await
    .expect("a client certificate signed by the CA is accepted");
    round_trip(&c).await;
    assert!(
        stan_connect(&url, b.cluster_id(), Some(trusting("ca.pem")))
            .await
            .is_err(),
        "a client without a certificate is refused"
    );
    assert!(
        stan_connect(
            &url,
            b.cluster_id(),
            Some(with("other-client.pem", "other-client-key.pem"))
        )
        .await
        .is_err(),
        "a certificate of another CA is refused"
    );
    round_trip(&c).await;
    c.close().await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_tls_with_the_official_flags() {
    let broker = BrokerProcess::start_with(ProcessOptions {
        binary: Some(BIN.into()),
        args: [
            "--tlscert",
            &cert("server.pem"),
            "--tlskey",
            &cert("server-key.pem"),
            "--tlsverify",
            "--tlscacert",
            &cert("ca.pem"),
        ]
        .map(String::from)
        .to_vec(),
        ..ProcessOptions::default()
    })
    .expect("broker with TLS starts");
    let url = broker.url().to_string();
    assert!(url.starts_with("tls://127.0.0.1:"), "{url}");
    let tls = trusting("ca.pem").client_certificate(cert("client.pem"), cert("client-key.pem"));
    let c = stan_connect(&url, broker.cluster_id(), Some(tls))
        .await
        .expect("connects");
    round_trip(&c).await;
    c.close().await.unwrap();
    assert!(
        stan_connect(&url, broker.cluster_id(), Some(trusting("ca.pem")))
            .await
            .is_err()
    );
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["-p", "0"])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run stan-broker")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_tls_flags_stop_the_start_with_a_clear_error() {
    let cases: [(Vec<String>, &[&str]); 6] = [
        (
            vec![
                "--tlscert".into(),
                cert("missing.pem"),
                "--tlskey".into(),
                cert("server-key.pem"),
            ],
            &["--tlscert", "missing.pem", "No such file"],
        ),
        (
            vec![
                "--tlscert".into(),
                cert("server.pem"),
                "--tlskey".into(),
                cert("server.pem"),
            ],
            &["--tlskey", "server.pem", "no PEM private key"],
        ),
        (
            vec![
                "--tlscert".into(),
                cert("server.pem"),
                "--tlskey".into(),
                cert("client-key.pem"),
            ],
            &["--tlscert and --tlskey"],
        ),
        (vec!["--tls".into()], &["--tlscert", "--tlskey"]),
        (
            vec![
                "--tlsverify".into(),
                "--tlscert".into(),
                cert("server.pem"),
                "--tlskey".into(),
                cert("server-key.pem"),
            ],
            &["--tlscacert"],
        ),
        (
            vec![
                "-ns".into(),
                "tls://127.0.0.1:1".into(),
                "--tls_client_cacert".into(),
                cert("nope-ca.pem"),
            ],
            &["--tls_client_cacert", "nope-ca.pem"],
        ),
    ];
    for (args, needles) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: no {needle:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A `nats-server` with TLS on a free loopback port; killed when dropped.
struct TlsNats {
    child: Child,
    url: String,
}

impl Drop for TlsNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `nats-server --tls ...` (`verify`: with `--tlsverify --tlscacert ca.pem`), or
/// `None` (printing `SKIPPED: ...`) when it is not installed.
async fn tls_nats(verify: bool) -> Option<TlsNats> {
    let Some(bin) = nats_server_binary() else {
        eprintln!("SKIPPED: nats-server is not installed (apt-get install -y nats-server)");
        return None;
    };
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "--tls"])
            .args([
                "--tlscert",
                &cert("server.pem"),
                "--tlskey",
                &cert("server-key.pem"),
            ]);
        if verify {
            cmd.args(["--tlsverify", "--tlscacert", &cert("ca.pem")]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        let mut server = TlsNats {
            child,
            url: format!("tls://127.0.0.1:{port}"),
        };
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(server);
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                break; // the port was taken: try another
            }
            // nats-server has no readiness signal we can read here.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("nats-server with TLS did not start");
}

fn external_broker(nats: &TlsNats, tls_args: &[String]) -> std::io::Result<BrokerProcess> {
    let mut args = vec!["-ns".to_string(), nats.url.clone()];
    args.extend_from_slice(tls_args);
    BrokerProcess::start_with(ProcessOptions {
        binary: Some(BIN.into()),
        args,
        startup_timeout: Duration::from_secs(20),
        ..ProcessOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_mode_connects_to_a_tls_nats_server() {
    let Some(nats) = tls_nats(false).await else {
        return;
    };
    let broker = external_broker(&nats, &["--tls_client_cacert".into(), cert("ca.pem")])
        .expect("broker attached over TLS starts");
    assert_eq!(broker.url(), nats.url);
    let c = stan_connect(&nats.url, broker.cluster_id(), Some(trusting("ca.pem")))
        .await
        .expect("client connects to the TLS nats-server");
    round_trip(&c).await;
    c.close().await.unwrap();

    // Trusting the wrong CA, the broker cannot connect and does not start.
    let o = run(&[
        "-ns",
        &nats.url,
        "--tls_client_cacert",
        &cert("other-ca.pem"),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("unable to connect to NATS") && err.contains("UnknownIssuer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_mode_presents_a_client_certificate() {
    let Some(nats) = tls_nats(true).await else {
        return;
    };
    let client_args = [
        "--tls_client_cacert".to_string(),
        cert("ca.pem"),
        "--tls_client_cert".into(),
        cert("client.pem"),
        "--tls_client_key".into(),
        cert("client-key.pem"),
    ];
    let broker = external_broker(&nats, &client_args).expect("broker with a client certificate");
    let tls = trusting("ca.pem").client_certificate(cert("client.pem"), cert("client-key.pem"));
    let c = stan_connect(&nats.url, broker.cluster_id(), Some(tls))
        .await
        .expect("client connects");
    round_trip(&c).await;
    c.close().await.unwrap();

    // Without a client certificate the server refuses the broker.
    let o = run(&["-ns", &nats.url, "--tls_client_cacert", &cert("ca.pem")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unable to connect to NATS"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_client_certificate_needs_its_key() {
    let o = run(&[
        "-ns",
        "tls://127.0.0.1:1",
        "--tls_client_cert",
        &cert("client.pem"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--tls_client_cert needs --tls_client_key"),
        "{}",
        stderr(&o)
    );
}
