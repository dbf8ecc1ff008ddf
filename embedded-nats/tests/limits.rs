//! Protocol errors, limits, slow consumers, auth and server pings over raw TCP.

mod common;

use std::time::Duration;

use common::{opts, start, wait_for, Raw};
use stan_embedded_nats::{Auth, Server, ServerOptions};

/// Sends `input` on a fresh connection, expects `-ERR '<err>'` and the connection closed,
/// while `witness` (another connection) keeps working.
async fn fatal(server: &Server, witness: &mut Raw, input: &[u8], err: &str) {
    let mut c = Raw::connect(server).await;
    c.send_bytes(input).await;
    let line = c.line().await;
    assert_eq!(
        line,
        format!("-ERR '{err}'"),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    c.expect_closed().await;
    witness.send("PUB w 2\r\nok\r\n").await;
    let (line, _, _) = witness.msg().await;
    assert_eq!(line, "MSG w 1 2");
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    let server = start().await;
    let mut witness = Raw::connect(&server).await;
    witness.send("SUB w 1\r\n").await;
    witness.sync().await;
    let unknown = "Unknown Protocol Operation";
    for bad in [
        &b"FOO bar\r\n"[..],
        b"PUB foo\r\n",
        b"PUB foo x\r\n",
        b"PUB foo -3\r\n",
        b"PUB foo 2\r\nabcd\r\n",
        b"HPUB foo 10 2\r\nab\r\n",
        b"SUB\r\n",
        b"SUB a b c d\r\n",
        b"UNSUB 1 two\r\n",
        b"MSG foo 1 1\r\nx\r\n",
        b"\r\n",
        b"PING PONG\r\n",
        b"CONNECT {not json\r\n",
        b"\x00\x01\x02\r\n",
    ] {
        fatal(&server, &mut witness, bad, unknown).await;
    }
    fatal(
        &server,
        &mut witness,
        b"CONNECT {\"protocol\":2}\r\n",
        "invalid client protocol",
    )
    .await;
    fatal(
        &server,
        &mut witness,
        b"CONNECT {\"no_responders\":true}\r\n",
        "no responders requires headers support",
    )
    .await;
    wait_for(|| server.num_connections() == 1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn max_payload_and_control_line() {
    let server = Server::start(ServerOptions {
        max_payload: 100,
        ..opts()
    })
    .await
    .unwrap();
    let mut witness = Raw::connect(&server).await;
    assert_eq!(witness.info["max_payload"], 100);
    witness.send("SUB w 1\r\n").await;
    witness.sync().await;
    // Exactly max_payload is fine.
    witness
        .send(&format!("PUB w 100\r\n{}\r\n", "x".repeat(100)))
        .await;
    let (line, _, _) = witness.msg().await;
    assert_eq!(line, "MSG w 1 100");
    fatal(
        &server,
        &mut witness,
        b"PUB foo 101\r\n",
        "Maximum Payload Violation",
    )
    .await;
    fatal(
        &server,
        &mut witness,
        b"HPUB foo 12 101\r\n",
        "Maximum Payload Violation",
    )
    .await;
    let long = format!("SUB {} 1\r\n", "a".repeat(5000));
    fatal(
        &server,
        &mut witness,
        long.as_bytes(),
        "maximum control line exceeded",
    )
    .await;
    // Too long even before the line ends.
    let unterminated = format!("PUB {}", "a".repeat(5000));
    fatal(
        &server,
        &mut witness,
        unterminated.as_bytes(),
        "maximum control line exceeded",
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_subjects_keep_connection_open() {
    let server = start().await;
    let mut c = Raw::connect(&server).await;
    for bad in ["foo..bar", "foo.>.bar", ".foo", "foo."] {
        c.send(&format!("SUB {bad} 1\r\n")).await;
        c.expect("-ERR 'Invalid Subject'").await;
    }
    c.sync().await;
    assert_eq!(server.num_subscriptions(), 0);

    let mut pedantic = Raw::connect_with(&server, r#"{"pedantic":true}"#).await;
    pedantic.send("SUB foo.* 1\r\n").await;
    pedantic.sync().await;
    pedantic.send("PUB foo.* 1\r\nx\r\n").await;
    pedantic.expect("-ERR 'Invalid Publish Subject'").await;
    pedantic.send("PUB foo.> 1\r\nx\r\n").await;
    pedantic.expect("-ERR 'Invalid Publish Subject'").await;
    pedantic.send("PUB foo.a 1\r\ny\r\n").await;
    let (line, _, _) = pedantic.msg().await;
    assert_eq!(line, "MSG foo.a 1 1");
    server.shutdown().await;
}

#[tokio::test]
async fn slow_consumer_is_disconnected_others_unaffected() {
    let server = Server::start(ServerOptions {
        max_pending: 64 * 1024,
        ..opts()
    })
    .await
    .unwrap();
    // The slow client subscribes and then never reads.
    let mut slow = Raw::connect(&server).await;
    slow.send("SUB data 1\r\n").await;
    slow.sync().await;
    let mut good = Raw::connect(&server).await;
    good.send("SUB data 1\r\n").await;
    good.sync().await;
    let mut publ = Raw::connect(&server).await;
    let body = "z".repeat(40 * 1024);
    let publish = format!("PUB data {}\r\n{}\r\n", body.len(), body);
    // 10 MB in total: well past what loopback socket buffers plus max_pending can hold. The
    // good client reads each message before the next is sent, so its backlog stays below
    // max_pending.
    for _ in 0..250 {
        publ.send(&publish).await;
        let (line, _, p) = good.msg().await;
        assert_eq!(line, "MSG data 1 40960");
        assert_eq!(p.len(), body.len());
    }
    publ.sync().await;
    good.sync().await;
    // The slow one was cut off: reading it drains what reached it, then hits EOF well before
    // all 10 MB.
    let drained = slow.expect_closed().await;
    assert!(drained < 250 * body.len(), "drained {drained}");
    wait_for(|| server.num_connections() == 2).await;
    server.shutdown().await;
}

#[tokio::test]
async fn auth_user_pass() {
    let server = Server::start(ServerOptions {
        auth: Some(Auth::UserPass {
            user: "alice".into(),
            pass: "s3cret".into(),
        }),
        ..opts()
    })
    .await
    .unwrap();
    let mut ok = Raw::connect_with(&server, r#"{"user":"alice","pass":"s3cret"}"#).await;
    assert_eq!(ok.info["auth_required"], true);
    ok.sync().await;
    for bad in [
        r#"{"user":"alice","pass":"wrong"}"#,
        r#"{"user":"bob","pass":"s3cret"}"#,
        r#"{}"#,
        r#"{"auth_token":"s3cret"}"#,
    ] {
        let mut c = Raw::open(&server).await;
        c.send(&format!("CONNECT {bad}\r\nPING\r\n")).await;
        c.expect("-ERR 'Authorization Violation'").await;
        c.expect_closed().await;
    }
    // Anything but CONNECT first is a violation too.
    let mut c = Raw::open(&server).await;
    c.send("SUB foo 1\r\n").await;
    c.expect("-ERR 'Authorization Violation'").await;
    c.expect_closed().await;
    ok.sync().await;
    server.shutdown().await;
}

#[tokio::test]
async fn auth_token_and_timeout() {
    let server = Server::start(ServerOptions {
        auth: Some(Auth::Token("tok".into())),
        auth_timeout: Duration::from_millis(500),
        ..opts()
    })
    .await
    .unwrap();
    let mut ok = Raw::connect_with(&server, r#"{"auth_token":"tok"}"#).await;
    let mut bad = Raw::open(&server).await;
    bad.send("CONNECT {\"auth_token\":\"nope\"}\r\n").await;
    bad.expect("-ERR 'Authorization Violation'").await;
    bad.expect_closed().await;
    let mut silent = Raw::open(&server).await;
    silent.expect("-ERR 'Authentication Timeout'").await;
    silent.expect_closed().await;
    // The authenticated connection is not subject to the timeout.
    ok.sync().await;
    server.shutdown().await;
}

#[tokio::test]
async fn server_pings_and_stale_connection() {
    let server = Server::start(ServerOptions {
        ping_interval: Duration::from_millis(100),
        max_pings_out: 2,
        ..opts()
    })
    .await
    .unwrap();
    // A client that answers PINGs stays connected across many intervals.
    let mut live = Raw::connect(&server).await;
    for _ in 0..6 {
        live.expect("PING").await;
        live.send("PONG\r\n").await;
    }
    // Keep answering in the background while the stale case runs.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let keeper = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stop_rx => return live,
                line = live.line() => {
                    assert_eq!(line, "PING");
                    live.send("PONG\r\n").await;
                }
            }
        }
    });
    // A client that does not answer gets two PINGs, then the stale error.
    let mut stale = Raw::connect(&server).await;
    stale.expect("PING").await;
    stale.expect("PING").await;
    stale.expect("-ERR 'Stale Connection'").await;
    stale.expect_closed().await;
    stop_tx.send(()).unwrap();
    let mut live = keeper.await.unwrap();
    // The live one is still served.
    live.send("PING\r\n").await;
    loop {
        match live.line().await.as_str() {
            "PING" => live.send("PONG\r\n").await,
            "PONG" => break,
            other => panic!("unexpected {other}"),
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn disconnect_all_and_shutdown_free_the_port() {
    let server = start().await;
    let mut a = Raw::connect(&server).await;
    let mut b = Raw::connect(&server).await;
    assert_eq!(server.num_connections(), 2);
    server.disconnect_all_clients();
    a.expect_closed().await;
    b.expect_closed().await;
    wait_for(|| server.num_connections() == 0).await;
    // The listener is still up.
    let mut c = Raw::connect(&server).await;
    c.sync().await;
    let addr = server.local_addr();
    server.shutdown().await;
    c.expect_closed().await;
    assert_eq!(server.num_connections(), 0);
    server.shutdown().await; // idempotent
                             // The same port can be bound again at once.
    let again = Server::start(ServerOptions {
        port: addr.port(),
        ..opts()
    })
    .await
    .expect("rebind the same port");
    let mut d = Raw::connect(&again).await;
    d.sync().await;
    again.shutdown().await;
}

#[tokio::test]
async fn random_garbage_never_takes_the_server_down() {
    let server = start().await;
    let mut witness = Raw::connect(&server).await;
    witness.send("SUB w 1\r\n").await;
    witness.sync().await;
    let alphabet = b"PUBSHMGINOKCTXpubshx 0123456789\r\n\t.*>+-{}\"\x00\xff";
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..40 {
        let mut c = Raw::open(&server).await;
        let mut junk = b"CONNECT {}\r\n".to_vec();
        for _ in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        c.send_bytes(&junk).await;
        drop(c);
    }
    witness.send("PUB w 2\r\nok\r\n").await;
    let (line, _, _) = witness.msg().await;
    assert_eq!(line, "MSG w 1 2");
    wait_for(|| server.num_connections() == 1).await;
    server.shutdown().await;
}
