//! Authentication (docs/operations.md, "Authentication"): `--user`/`--pass` and `--auth` on
//! the embedded NATS server, seen from the wire and from `stan-client`; credentials of the
//! connection to an external NATS server (URL user info, or `--user`/`--pass`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{start_broker, within};
use stan_broker::config::{BrokerConfig, ExternalNats, NatsMode};
use stan_broker::Broker;
use stan_client::ConnectOptions;
use stan_test_support::{nats_server_binary, unique, within_for, WAIT as TEST_SUPPORT_WAIT};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn embedded(cfg: &mut BrokerConfig) -> &mut stan_broker::config::EmbeddedNats {
    match &mut cfg.nats {
        NatsMode::Embedded(e) => e,
        NatsMode::External(_) => unreachable!("tests start embedded brokers"),
    }
}

async fn user_pass_broker() -> Broker {
    start_broker(|cfg| {
        let e = embedded(cfg);
        e.user = Some("alice".into());
        e.pass = Some("s3cret".into());
    })
    .await
}

/// Sends `connect` (a CONNECT JSON object) then PING on a raw TCP connection; returns the
/// first line the server answers after its INFO.
async fn raw_connect(url: &str, connect: &str) -> String {
    let addr = url.trim_start_matches("nats://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let info = within("INFO", lines.next_line()).await.unwrap().unwrap();
    assert!(info.starts_with("INFO "), "{info}");
    w.write_all(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())
        .await
        .unwrap();
    within("answer to CONNECT", lines.next_line())
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_user_or_password_gets_authorization_violation() {
    let b = user_pass_broker().await;
    let url = b.client_url();
    for bad in [
        r#"{"verbose":false,"user":"alice","pass":"wrong"}"#,
        r#"{"verbose":false,"user":"bob","pass":"s3cret"}"#,
        r#"{"verbose":false}"#,
        r#"{"verbose":false,"auth_token":"s3cret"}"#,
    ] {
        assert_eq!(
            raw_connect(&url, bad).await,
            "-ERR 'Authorization Violation'",
            "{bad}"
        );
    }
    assert_eq!(
        raw_connect(&url, r#"{"verbose":false,"user":"alice","pass":"s3cret"}"#).await,
        "PONG"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stan_client_with_user_and_password() {
    let b = user_pass_broker().await;
    let Err(err) = ConnectOptions::new(b.cluster_id(), "c1")
        .nats_url(b.client_url())
        .user_and_password("alice", "wrong")
        .connect()
        .await
    else {
        panic!("wrong password accepted");
    };
    assert!(
        err.to_string().to_lowercase().contains("authorization"),
        "{err}"
    );
    let c = ConnectOptions::new(b.cluster_id(), "c1")
        .nats_url(b.client_url())
        .user_and_password("alice", "s3cret")
        .connect()
        .await
        .expect("right credentials accepted");
    c.publish("auth", "m").await.expect("publish");
    c.close().await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stan_client_with_token() {
    let b = start_broker(|cfg| embedded(cfg).auth_token = Some("t0ken".into())).await;
    assert_eq!(
        raw_connect(&b.client_url(), r#"{"verbose":false,"auth_token":"nope"}"#).await,
        "-ERR 'Authorization Violation'"
    );
    assert!(ConnectOptions::new(b.cluster_id(), "c1")
        .nats_url(b.client_url())
        .token("nope")
        .connect()
        .await
        .is_err());
    let c = ConnectOptions::new(b.cluster_id(), "c1")
        .nats_url(b.client_url())
        .token("t0ken")
        .connect()
        .await
        .expect("right token accepted");
    c.publish("auth", "m").await.expect("publish");
    c.close().await.unwrap();
    b.shutdown().await;
}

/// A `nats-server` requiring user `u` / password `p`; killed when dropped.
struct AuthNats {
    child: Child,
    port: u16,
    /// Where it writes the port it listens on (removed when dropped).
    ports_dir: PathBuf,
}

impl Drop for AuthNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.ports_dir);
    }
}

/// Starts it on a port it picks itself (`-p -1`) and takes that port from the ports file it
/// writes once it listens. A port picked here and handed to it could be taken meanwhile (by
/// another test's server or connection): it would then exit, and the test would wait for it
/// in vain or talk to whatever listens there instead.
async fn auth_nats() -> Option<AuthNats> {
    let Some(bin) = nats_server_binary() else {
        eprintln!("SKIPPED: nats-server is not installed");
        return None;
    };
    let ports_dir = std::env::temp_dir().join(unique("auth-nats"));
    std::fs::create_dir_all(&ports_dir).expect("create the ports file directory");
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", "-1"])
        .args(["--user", "u", "--pass", "p"])
        .arg("--ports_file_dir")
        .arg(&ports_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nats-server");
    let mut server = AuthNats {
        child,
        port: 0,
        ports_dir,
    };
    // A bound on a process start-up, not a speed check: the shared (longer) wait.
    let port = within_for(TEST_SUPPORT_WAIT, "nats-server's ports file", async {
        loop {
            if let Some(port) = listening_port(&server.ports_dir) {
                return port;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("nats-server exited at start-up: {status}");
            }
            // Polling the file: nats-server gives no other readiness signal we can read here.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    server.port = port;
    Some(server)
}

/// The client port in the ports file of the only server writing to `dir`, once the file is
/// complete (`{"nats":["nats://127.0.0.1:<port>"]...}`).
fn listening_port(dir: &Path) -> Option<u16> {
    let file = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "ports"))?;
    let text = std::fs::read_to_string(file.path()).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = ports.get("nats")?.get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

async fn external(nats: ExternalNats) -> Result<Broker, stan_broker::BrokerError> {
    let mut cfg = BrokerConfig::for_tests();
    cfg.nats = NatsMode::External(nats);
    Broker::start(cfg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_nats_credentials_from_url_or_settings() {
    let Some(n) = auth_nats().await else {
        return;
    };
    let plain = format!("nats://127.0.0.1:{}", n.port);
    let Err(err) = external(ExternalNats {
        url: format!("nats://u:wrong@127.0.0.1:{}", n.port),
        ..Default::default()
    })
    .await
    else {
        panic!("wrong URL credentials accepted");
    };
    assert!(
        err.to_string().to_lowercase().contains("authorization"),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong"), "password shown: {err}");
    assert!(external(ExternalNats {
        url: plain.clone(),
        ..Default::default()
    })
    .await
    .is_err());

    for nats in [
        ExternalNats {
            url: format!("nats://u:p@127.0.0.1:{}", n.port),
            ..Default::default()
        },
        ExternalNats {
            url: plain.clone(),
            user: Some("u".into()),
            pass: Some("p".into()),
            ..Default::default()
        },
    ] {
        let b = external(nats)
            .await
            .expect("broker with credentials starts");
        assert!(!b.client_url().contains("u:p@"), "{}", b.client_url());
        let c = ConnectOptions::new(b.cluster_id(), "c1")
            .nats_url(plain.clone())
            .user_and_password("u", "p")
            .connect()
            .await
            .expect("client connects through the external server");
        c.publish("auth", "m").await.expect("publish");
        c.close().await.unwrap();
        b.shutdown().await;
    }
}
