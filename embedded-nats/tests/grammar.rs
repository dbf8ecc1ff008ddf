//! Core NATS grammar over raw TCP.

mod common;

use common::{start, Raw};

#[tokio::test]
async fn info_first_line_is_json() {
    let server = start().await;
    let raw = Raw::open(&server).await;
    let info = &raw.info;
    assert_eq!(info["max_payload"], 1024 * 1024);
    assert_eq!(info["proto"], 1);
    assert_eq!(info["headers"], true);
    assert_eq!(info["version"], "2.10.0");
    assert_eq!(info["port"], server.local_addr().port());
    assert!(info["server_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(info["server_name"], "stan-broker");
    assert!(info["client_id"].as_u64().is_some());
    assert_eq!(info["client_ip"], "127.0.0.1");
    assert!(info.get("auth_required").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn connect_ping_pong_and_verbose() {
    let server = start().await;
    let mut quiet = Raw::open(&server).await;
    quiet.send("CONNECT {}\r\nPING\r\n").await;
    quiet.expect("PONG").await;

    let mut verbose = Raw::open(&server).await;
    verbose.send("CONNECT {\"verbose\":true}\r\nPING\r\n").await;
    verbose.expect("+OK").await;
    verbose.expect("PONG").await;
    verbose
        .send("SUB foo 1\r\nPUB bar 2\r\nhi\r\nUNSUB 1\r\n")
        .await;
    verbose.expect("+OK").await;
    verbose.expect("+OK").await;
    verbose.expect("+OK").await;
    verbose.send("HPUB bar 12 12\r\nNATS/1.0\r\n\r\n\r\n").await;
    verbose.expect("+OK").await;
    verbose.sync().await;
    server.shutdown().await;
}

#[tokio::test]
async fn verbs_are_case_insensitive_and_args_split_on_tabs() {
    let server = start().await;
    let mut c = Raw::open(&server).await;
    c.send("connect {}\r\nsub\tfoo  \t 7\r\nPuB foo\t3\r\nabc\r\npInG\r\n")
        .await;
    let (line, _, payload) = c.msg().await;
    assert_eq!(line, "MSG foo 7 3");
    assert_eq!(payload, b"abc");
    c.expect("PONG").await;
    c.send("UnSuB 7\r\npub foo 1\r\nx\r\n").await;
    c.expect_nothing().await;
    server.shutdown().await;
}

#[tokio::test]
async fn pub_sub_msg_with_reply_and_empty_payload() {
    let server = start().await;
    let mut sub = Raw::connect(&server).await;
    let mut publ = Raw::connect(&server).await;
    sub.send("SUB orders.new 42\r\n").await;
    sub.sync().await;
    publ.send("PUB orders.new _INBOX.r 5\r\nhello\r\nPUB orders.new 0\r\n\r\n")
        .await;
    let (line, _, payload) = sub.msg().await;
    assert_eq!(line, "MSG orders.new 42 _INBOX.r 5");
    assert_eq!(payload, b"hello");
    let (line, _, payload) = sub.msg().await;
    assert_eq!(line, "MSG orders.new 42 0");
    assert!(payload.is_empty());
    // A payload containing CRLF and binary bytes passes through untouched.
    let body = b"a\r\nb\x00\xff";
    publ.send(&format!("PUB orders.new {}\r\n", body.len()))
        .await;
    publ.send_bytes(body).await;
    publ.send("\r\n").await;
    let (_, _, payload) = sub.msg().await;
    assert_eq!(payload, body);
    server.shutdown().await;
}

#[tokio::test]
async fn hpub_hmsg_headers() {
    let server = start().await;
    let mut sub = Raw::connect(&server).await;
    let mut publ = Raw::connect(&server).await;
    // A client without headers support gets the payload only.
    let mut plain = Raw::connect_with(&server, "{}").await;
    sub.send("SUB h 1\r\n").await;
    sub.sync().await;
    plain.send("SUB h 9\r\n").await;
    plain.sync().await;
    let hdr = "NATS/1.0\r\nX-Key: v1\r\n\r\n";
    let total = hdr.len() + 4;
    publ.send(&format!(
        "HPUB h rep {} {}\r\n{}body\r\n",
        hdr.len(),
        total,
        hdr
    ))
    .await;
    let (line, h, p) = sub.msg().await;
    assert_eq!(line, format!("HMSG h 1 rep {} {}", hdr.len(), total));
    assert_eq!(h, hdr.as_bytes());
    assert_eq!(p, b"body");
    let (line, h, p) = plain.msg().await;
    assert_eq!(line, "MSG h 9 rep 4");
    assert!(h.is_empty());
    assert_eq!(p, b"body");
    server.shutdown().await;
}

#[tokio::test]
async fn unsub_and_unsub_with_max() {
    let server = start().await;
    let mut sub = Raw::connect(&server).await;
    let mut publ = Raw::connect(&server).await;
    sub.send("SUB a 1\r\nSUB a 2\r\nUNSUB 1\r\nUNSUB 2 2\r\n")
        .await;
    sub.sync().await;
    publ.send("PUB a 1\r\n1\r\nPUB a 1\r\n2\r\nPUB a 1\r\n3\r\n")
        .await;
    publ.sync().await;
    let (line, _, p) = sub.msg().await;
    assert_eq!((line.as_str(), p.as_slice()), ("MSG a 2 1", &b"1"[..]));
    let (line, _, p) = sub.msg().await;
    assert_eq!((line.as_str(), p.as_slice()), ("MSG a 2 1", &b"2"[..]));
    sub.expect_nothing().await;
    assert_eq!(server.num_subscriptions(), 0);

    // UNSUB with a max already reached removes at once; unknown sids are ignored.
    sub.send("SUB b 3\r\n").await;
    sub.sync().await;
    publ.send("PUB b 1\r\nx\r\n").await;
    publ.sync().await;
    sub.msg().await;
    sub.send("UNSUB 3 1\r\nUNSUB nope\r\n").await;
    sub.sync().await;
    publ.send("PUB b 1\r\ny\r\n").await;
    publ.sync().await;
    sub.expect_nothing().await;
    server.shutdown().await;
}

#[tokio::test]
async fn wildcards_match_and_do_not_match() {
    let server = start().await;
    let mut sub = Raw::connect(&server).await;
    let mut publ = Raw::connect(&server).await;
    sub.send("SUB foo.* 1\r\nSUB foo.> 2\r\nSUB > 3\r\nSUB *.bar.* 4\r\n")
        .await;
    sub.sync().await;
    let cases: &[(&str, &[&str])] = &[
        ("foo.bar", &["1", "2", "3"]),
        ("foo.bar.baz", &["2", "3", "4"]),
        ("foo", &["3"]),
        ("x.bar.y", &["3", "4"]),
        ("x.bar", &["3"]),
    ];
    for (subject, sids) in cases {
        publ.send(&format!("PUB {subject} 1\r\nm\r\n")).await;
        publ.sync().await;
        let mut got = Vec::new();
        for _ in 0..sids.len() {
            let (line, _, _) = sub.msg().await;
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts[1], *subject);
            got.push(parts[2].to_string());
        }
        got.sort();
        assert_eq!(got, *sids, "subject {subject}");
        sub.expect_nothing().await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn queue_groups_deliver_to_exactly_one_member() {
    let server = start().await;
    let mut members = Vec::new();
    for i in 0..3 {
        let mut c = Raw::connect(&server).await;
        c.send(&format!("SUB work q1 {i}\r\nSUB work.* q1 x{i}\r\n"))
            .await;
        c.sync().await;
        members.push(c);
    }
    let mut other_group = Raw::connect(&server).await;
    other_group.send("SUB work q2 1\r\n").await;
    other_group.sync().await;
    let mut plain1 = Raw::connect(&server).await;
    plain1.send("SUB work 1\r\n").await;
    plain1.sync().await;
    let mut plain2 = Raw::connect(&server).await;
    plain2.send("SUB > 1\r\n").await;
    plain2.sync().await;

    let mut publ = Raw::connect(&server).await;
    const N: usize = 60;
    for i in 0..N {
        publ.send(&format!("PUB work 2\r\n{:02}\r\n", i)).await;
    }
    publ.sync().await;
    // Each plain subscription and the second group see every message in order.
    for c in [&mut plain1, &mut plain2, &mut other_group] {
        for i in 0..N {
            let (_, _, p) = c.msg().await;
            assert_eq!(p, format!("{:02}", i).as_bytes());
        }
        c.expect_nothing().await;
    }
    // Members of q1 got each message exactly once between them.
    let mut seen = Vec::new();
    let mut per_member = Vec::new();
    for c in &mut members {
        let mut count = 0;
        c.send("PING\r\n").await;
        loop {
            let line = c.line().await;
            if line == "PONG" {
                break;
            }
            assert!(line.starts_with("MSG work "), "{line}");
            let p = c.payload(2).await;
            seen.push(String::from_utf8(p).unwrap());
            count += 1;
        }
        per_member.push(count);
    }
    seen.sort();
    let want: Vec<String> = (0..N).map(|i| format!("{:02}", i)).collect();
    assert_eq!(seen, want);
    assert!(
        per_member.iter().filter(|&&c| c > 0).count() >= 2,
        "random distribution spreads over members: {per_member:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn echo_false_is_honoured() {
    let server = start().await;
    let mut noecho = Raw::connect_with(&server, r#"{"echo":false,"protocol":1}"#).await;
    let mut echo = Raw::connect(&server).await;
    noecho.send("SUB e 1\r\nPUB e 1\r\na\r\n").await;
    noecho.expect_nothing().await;
    echo.send("SUB e 1\r\nPUB e 1\r\nb\r\n").await;
    let (line, _, p) = echo.msg().await;
    assert_eq!((line.as_str(), p.as_slice()), ("MSG e 1 1", &b"b"[..]));
    let (_, _, p) = noecho.msg().await;
    assert_eq!(p, b"b", "messages from others still arrive");
    server.shutdown().await;
}

#[tokio::test]
async fn no_responders_status_message() {
    let server = start().await;
    let mut c = Raw::connect(&server).await;
    c.send("SUB _INBOX.abc.* 0\r\nPUB service.none _INBOX.abc.1 2\r\nhi\r\n")
        .await;
    let (line, h, p) = c.msg().await;
    let hdr = "NATS/1.0 503\r\nNats-Subject: service.none\r\n\r\n";
    assert_eq!(
        line,
        format!("HMSG _INBOX.abc.1 0 {} {}", hdr.len(), hdr.len())
    );
    assert_eq!(h, hdr.as_bytes());
    assert!(p.is_empty());

    // Without no_responders nothing is sent; with a responder the request goes through.
    let mut old = Raw::connect_with(&server, r#"{"headers":true}"#).await;
    old.send("SUB _INBOX.x 5\r\nUNSUB 5 1\r\nPUB service.none _INBOX.x 0\r\n\r\n")
        .await;
    old.expect_nothing().await;
    let mut responder = Raw::connect(&server).await;
    responder.send("SUB service.one 1\r\n").await;
    responder.sync().await;
    c.send("PUB service.one _INBOX.abc.2 1\r\nq\r\n").await;
    let (line, _, _) = responder.msg().await;
    assert_eq!(line, "MSG service.one 1 _INBOX.abc.2 1");
    c.expect_nothing().await;
    server.shutdown().await;
}

#[tokio::test]
async fn duplicate_sid_keeps_the_first_subscription() {
    let server = start().await;
    let mut c = Raw::connect(&server).await;
    c.send("SUB first 1\r\nSUB second 1\r\n").await;
    c.sync().await;
    assert_eq!(server.num_subscriptions(), 1);
    c.send("PUB second 1\r\nx\r\nPUB first 1\r\ny\r\n").await;
    let (line, _, p) = c.msg().await;
    assert_eq!((line.as_str(), p.as_slice()), ("MSG first 1 1", &b"y"[..]));
    c.expect_nothing().await;
    // After an auto-unsubscribe the sid can be reused.
    c.send("UNSUB 1 1\r\nSUB second 1\r\nPUB second 1\r\nz\r\n")
        .await;
    let (line, _, _) = c.msg().await;
    assert_eq!(line, "MSG second 1 1");
    assert_eq!(server.num_subscriptions(), 1);
    server.shutdown().await;
}
