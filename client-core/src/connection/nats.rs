//! The core-NATS side: opening the connection, and STAN requests over it.

use std::str::FromStr;
use std::time::Duration;

use async_nats::ServerAddr;
use bytes::Bytes;
use stan_protocol::pb;
use tokio::sync::mpsc;

use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::options::ConnectOptions;

/// How many messages the NATS library queues for each of the client's two NATS subscriptions
/// (PubAcks; deliveries and replies) before it drops what arrives: at least this many, and at
/// least twice the publishes allowed in flight. The server's flow control bounds what can
/// arrive (PubAcks by `max_pub_acks_in_flight`, deliveries by each subscription's max in
/// flight), so while the connection task is busy the backlog waits here instead of being
/// dropped; the library's default (65,536) was below what a large pipelined burst brings.
const MIN_SUBSCRIPTION_CAPACITY: usize = 1 << 20;

/// Opens the NATS connection of a client that does not bring its own; its events arrive on
/// the returned channel.
pub(super) async fn open_nats(
    options: &ConnectOptions,
    connect_wait: Duration,
) -> Result<(
    async_nats::Client,
    mpsc::UnboundedReceiver<async_nats::Event>,
)> {
    let urls: Vec<&str> = if options.nats_urls.is_empty() {
        vec![stan_protocol::defaults::NATS_URL]
    } else {
        // A comma-separated list counts as several URLs, as in the other NATS clients.
        options
            .nats_urls
            .iter()
            .flat_map(|u| u.split(','))
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    };
    let mut addrs = Vec::with_capacity(urls.len());
    for url in urls {
        let addr = ServerAddr::from_str(url).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidArgument,
                format!("invalid NATS URL {url:?}"),
                e,
            )
        })?;
        addrs.push(addr);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let max_pub_acks = options
        .max_pub_acks_in_flight
        .unwrap_or(stan_protocol::defaults::MAX_PUB_ACKS_IN_FLIGHT);
    let mut nats_opts = async_nats::ConnectOptions::new()
        .name(&options.client_id)
        .connection_timeout(connect_wait)
        .subscription_capacity(MIN_SUBSCRIPTION_CAPACITY.max(max_pub_acks.saturating_mul(2)))
        .max_reconnects(None)
        .event_callback(move |ev| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(ev);
            }
        });
    if let (Some(user), Some(pass)) = (&options.user, &options.password) {
        nats_opts = nats_opts.user_and_password(user.clone(), pass.clone());
    }
    if let Some(token) = &options.token {
        nats_opts = nats_opts.token(token.clone());
    }
    if let Some(tls) = &options.tls {
        check_tls_files(tls)?;
        nats_opts = nats_opts.require_tls(tls.require_tls);
        for root in &tls.root_certificates {
            nats_opts = nats_opts.add_root_certificates(root.clone());
        }
        if let Some((cert, key)) = &tls.client_certificate {
            nats_opts = nats_opts.add_client_certificate(cert.clone(), key.clone());
        }
    }
    let client = nats_opts
        .connect(addrs)
        .await
        .map_err(|e| Error::with_source(ErrorKind::Transport, format!("nats: {e}"), e))?;
    Ok((client, rx))
}

/// Every file the TLS options name must be readable: the NATS library's own error would not
/// say which file is missing.
fn check_tls_files(tls: &crate::TlsOptions) -> Result<()> {
    let roots = tls
        .root_certificates
        .iter()
        .map(|p| ("root certificate", p));
    let client = tls
        .client_certificate
        .iter()
        .flat_map(|(c, k)| [("client certificate", c), ("client key", k)]);
    for (what, path) in roots.chain(client) {
        if let Err(e) = std::fs::File::open(path) {
            return Err(Error::with_source(
                ErrorKind::InvalidArgument,
                format!("TLS {what} file {}: {e}", path.display()),
                e,
            ));
        }
    }
    Ok(())
}

/// Failure of a NATS request.
#[derive(Debug)]
pub(crate) enum ReqError {
    Timeout,
    Other(BoxError),
}

/// A NATS request with a timeout; no-responders counts as a timeout (nobody answered).
pub(crate) async fn request(
    nats: &async_nats::Client,
    subject: String,
    payload: Vec<u8>,
    timeout: Duration,
) -> std::result::Result<Bytes, ReqError> {
    use async_nats::RequestErrorKind as K;
    let req = async_nats::Request::new()
        .payload(Bytes::from(payload))
        .timeout(Some(timeout));
    match nats.send_request(subject, req).await {
        Ok(m) => Ok(m.payload),
        Err(e) => match e.kind() {
            K::TimedOut | K::NoResponders => Err(ReqError::Timeout),
            _ => Err(ReqError::Other(Box::new(e))),
        },
    }
}

/// A STAN response: its `error` is empty when the server accepted the request.
pub(super) trait StanResponse: prost::Message + Default {
    fn into_error(self) -> std::result::Result<Self, String>;
}

macro_rules! stan_response {
    ($($t:ty),*) => {$(
        impl StanResponse for $t {
            fn into_error(self) -> std::result::Result<Self, String> {
                if self.error.is_empty() {
                    Ok(self)
                } else {
                    Err(self.error)
                }
            }
        }
    )*};
}
stan_response!(
    pb::ConnectResponse,
    pb::SubscriptionResponse,
    pb::CloseResponse
);

/// Reads the outcome of a STAN request: the response when the server accepted it, else
/// `timeout` (nobody answered), a transport error (`failed`), a protocol error (`malformed`)
/// or the server's own error string.
pub(super) fn read_response<R: StanResponse>(
    result: std::result::Result<Bytes, ReqError>,
    timeout: Error,
    failed: &'static str,
    malformed: &'static str,
) -> Result<R> {
    match result {
        Ok(bytes) => match R::decode(bytes) {
            Ok(r) => r
                .into_error()
                .map_err(|e| Error::new(ErrorKind::ServerRejected, e)),
            Err(e) => Err(Error::with_source(ErrorKind::Protocol, malformed, e)),
        },
        Err(ReqError::Timeout) => Err(timeout),
        Err(ReqError::Other(e)) => Err(Error::with_source(ErrorKind::Transport, failed, e)),
    }
}
