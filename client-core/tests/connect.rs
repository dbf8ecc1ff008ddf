//! Connect, options, close, duplicate client IDs.

mod common;

use std::time::Duration;

use common::{unique, within, TestServer};
use futures::StreamExt;
use stan_client::{ConnectOptions, ErrorKind, Event, SubscribeOptions};
use stan_protocol::errors;

#[tokio::test]
async fn connect_publish_and_close() {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    assert!(!client.is_closed());
    let guid = client.publish(&unique("ch"), "hello").await.unwrap();
    assert_eq!(guid.len(), 22);
    client.close().await.unwrap();
    assert!(client.is_closed());
    // Closing again is a no-op.
    client.close().await.unwrap();
}

#[tokio::test]
async fn wrong_cluster_id_is_connect_timeout() {
    let srv = TestServer::start().await;
    let err = ConnectOptions::new("no-such-cluster", unique("c"))
        .nats_url(srv.url())
        .connect_wait(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectTimeout);
    assert_eq!(err.code(), "CONNECT_TIMEOUT");
    assert_eq!(err.message(), errors::CONNECT_REQ_TIMEOUT);
}

#[tokio::test]
async fn unreachable_nats_is_transport_error() {
    // A port nobody listens on: bind, read the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = ConnectOptions::new("test-cluster", unique("c"))
        .nats_url(format!("nats://127.0.0.1:{port}"))
        .connect_wait(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
}

#[tokio::test]
async fn a_comma_separated_url_list_is_several_servers() {
    let srv = TestServer::start().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // Whichever the connection tries first, it ends on the live server.
    let client = ConnectOptions::new(srv.cluster_id(), unique("c"))
        .nats_url(format!("nats://127.0.0.1:{dead}, {}", srv.url()))
        .connect()
        .await
        .unwrap();
    client.publish("list", b"x".to_vec()).await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn invalid_options_are_invalid_argument() {
    let srv = TestServer::start().await;
    let cases = [
        srv.options("bad.client.id"),
        srv.options("ok").pings(Duration::from_millis(200), 10),
        srv.options("ok").pings(Duration::from_secs(1), 1),
        srv.options("ok").max_pub_acks_in_flight(0),
        ConnectOptions::new("", "ok").nats_url(srv.url()),
        srv.options("ok").nats_url("::not a url::"),
    ];
    for opts in cases {
        let err = opts.clone().connect().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{opts:?}");
    }
}

#[tokio::test]
async fn missing_tls_files_are_invalid_argument_naming_the_file() {
    let dir = std::env::temp_dir().join(unique("no-certs"));
    let missing = |name: &str| dir.join(name);
    let cases = [
        stan_client::TlsOptions::default().root_certificate(missing("ca.pem")),
        stan_client::TlsOptions::default()
            .client_certificate(missing("client.pem"), missing("client-key.pem")),
    ];
    for (tls, file) in cases.into_iter().zip(["ca.pem", "client.pem"]) {
        let err = ConnectOptions::new("test-cluster", unique("c"))
            .nats_url("nats://127.0.0.1:1")
            .tls(tls)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains(file), "{err}");
    }
}

#[tokio::test]
async fn connect_with_existing_nats_client() {
    let srv = TestServer::start().await;
    let nats = async_nats::connect(srv.url()).await.unwrap();
    let client = srv
        .options(&unique("c"))
        .nats_client(nats.clone())
        .connect()
        .await
        .unwrap();
    let ch = unique("ch");
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    client.publish(&ch, "via shared nats").await.unwrap();
    let m = common::next_msg(&mut sub).await;
    assert_eq!(&m.data()[..], b"via shared nats");
    client.close().await.unwrap();
    // The borrowed NATS connection stays usable.
    nats.publish("plain.subject", "still open".into())
        .await
        .unwrap();
    nats.flush().await.unwrap();
    assert_eq!(
        nats.connection_state(),
        async_nats::connection::State::Connected
    );
}

#[tokio::test]
async fn nats_user_password_and_token_are_passed_through() {
    let srv = TestServer::start_with(|cfg| {
        if let stan_broker::config::NatsMode::Embedded(e) = &mut cfg.nats {
            e.user = Some("app".into());
            e.pass = Some("s3cret".into());
        }
    })
    .await;
    let _broker = broker_or_skip!(srv, "configures NATS authentication");
    let err = srv
        .options(&unique("c"))
        .connect_wait(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    let wrong = srv
        .options(&unique("c"))
        .user_and_password("app", "wrong")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Transport);
    let client = srv
        .options(&unique("c"))
        .user_and_password("app", "s3cret")
        .connect()
        .await
        .unwrap();
    client.publish(&unique("ch"), "x").await.unwrap();
    client.close().await.unwrap();

    let srv = TestServer::start_with(|cfg| {
        if let stan_broker::config::NatsMode::Embedded(e) = &mut cfg.nats {
            e.auth_token = Some("tok".into());
        }
    })
    .await;
    let client = srv
        .options(&unique("c"))
        .token("tok")
        .connect()
        .await
        .unwrap();
    client.publish(&unique("ch"), "x").await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn second_client_with_same_id_is_rejected() {
    let srv = TestServer::start().await;
    let id = unique("dup");
    let first = srv.options(&id).connect().await.unwrap();
    let err = srv.options(&id).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServerRejected);
    assert_eq!(err.message(), errors::CLIENT_ID_REGISTERED);
    // The first one is unaffected.
    first.publish(&unique("ch"), "still mine").await.unwrap();
    first.close().await.unwrap();
    // After a clean close the ID is free again.
    let again = srv.options(&id).connect().await.unwrap();
    again.close().await.unwrap();
}

#[tokio::test]
async fn operations_after_close_fail_with_connection_closed() {
    let srv = TestServer::start().await;
    let client = srv.options(&unique("c")).connect().await.unwrap();
    let mut events = client.events();
    let ch = unique("ch");
    let mut sub = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap();
    client.close().await.unwrap();
    common::wait_event(&mut events, |e| *e == Event::Closed).await;
    let err = client.publish(&ch, "late").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
    let err = client
        .subscribe(&ch, SubscribeOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
    // The subscription stream ends without an error.
    assert!(within("end of stream", sub.next()).await.is_none());
    // So does an event stream, even one created after the close.
    assert!(within("end of events", events.next()).await.is_none());
    assert!(within("end of late events", client.events().next())
        .await
        .is_none());
}

#[test]
fn a_client_whose_runtime_stopped_is_closed_and_its_events_end() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let srv = TestServer::start().await;
        let opts = srv.options(&unique("c"));
        // The client's background tasks run on a runtime that stops (and drops them) when
        // the thread ends; the client handle lives on.
        let (client, mut early_events) = std::thread::spawn(move || {
            let own = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let client = own.block_on(opts.connect()).unwrap();
            let events = client.events();
            (client, events)
        })
        .join()
        .unwrap();
        assert!(client.is_closed());
        // A listener from before gets `Closed`, then its stream ends.
        assert_eq!(
            within("closed event", early_events.next()).await,
            Some(Event::Closed)
        );
        assert!(within("end of events", early_events.next()).await.is_none());
        assert!(within("end of events", client.events().next())
            .await
            .is_none());
        let err = within("publish", client.publish(&unique("ch"), "x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
        let err = client.start_publish(&unique("ch"), "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionClosed);
        client.close().await.unwrap();
    });
}

#[tokio::test]
async fn dropping_every_handle_unregisters_the_client() {
    let srv = TestServer::start().await;
    let id = unique("c");
    let client = srv.options(&id).connect().await.unwrap();
    let mut events = client.events();
    drop(client);
    common::wait_event(&mut events, |e| *e == Event::Closed).await;
    // The best-effort close freed the client ID.
    let again = srv.options(&id).connect().await.unwrap();
    again.close().await.unwrap();
}

#[tokio::test]
async fn custom_discover_prefix() {
    let srv = TestServer::start_with(|cfg| cfg.discover_prefix = "_ACME.discover".into()).await;
    let _broker = broker_or_skip!(srv, "configures the discover prefix");
    let err = srv
        .options(&unique("c"))
        .connect_wait(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectTimeout);
    let client = srv
        .options(&unique("c"))
        .discover_prefix("_ACME.discover")
        .connect()
        .await
        .unwrap();
    client.publish(&unique("ch"), "x").await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn tls_options_are_passed_through() {
    let srv = TestServer::start().await;
    // The test servers speak plain TCP: requiring TLS must fail the NATS connection…
    let err = srv
        .options(&unique("c"))
        .tls(stan_client::TlsOptions::default().require_tls(true))
        .connect_wait(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    // …and so must a `tls://` URL.
    let err = ConnectOptions::new(srv.cluster_id(), unique("c"))
        .nats_url(format!("tls://{}", srv.addr()))
        .connect_wait(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
}
