//! The HTTP side of monitoring: an axum router over any [`Source`] of engine data.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::core::{self as core_json, BadRequest, ConnzQuery, CoreView, SubszQuery};
use super::json::{self, ListQuery, ProcessInfo};
use crate::config::{ChannelLimits, StoreLimits};
use crate::snapshot::Snapshot;

/// Core-NATS facts for `/varz`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreInfo {
    /// URL clients connect to.
    pub client_url: String,
    /// Max payload of the core server.
    pub max_payload: usize,
    /// Whether clients must authenticate.
    pub auth_required: bool,
}

/// Where the monitoring endpoints get their data (the broker, or a fixture in tests).
pub trait Source: Clone + Send + Sync + 'static {
    /// A consistent snapshot of the engine state.
    fn snapshot(&self) -> impl Future<Output = Snapshot> + Send;
    /// Configured store limits.
    fn limits(&self) -> StoreLimits;
    /// The per-channel limit entries after inheritance (for `/streaming/storez`).
    fn per_channel_limits(&self) -> BTreeMap<String, ChannelLimits>;
    /// Core-NATS facts.
    fn core_info(&self) -> CoreInfo;
    /// The embedded core-NATS server, whose statistics `/varz`, `/connz` and `/subsz`
    /// report; `None` (the default) when the broker is attached to an external server, whose
    /// own monitoring port has the core figures.
    fn embedded_server(&self) -> Option<stan_embedded_nats::Server> {
        None
    }
    /// What answers the console's message browser and admin actions; `None` (the default):
    /// they answer 503.
    fn console(&self) -> Option<Arc<dyn super::console::ConsoleBackend>> {
        None
    }
    /// Resolves when the server shuts down; the HTTP server then stops.
    fn closed(&self) -> impl Future<Output = ()> + Send;
}

#[derive(Clone)]
struct App<S> {
    source: S,
    bound: SocketAddr,
    /// Requests per core endpoint (`http_req_stats` of `/varz`).
    req_stats: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl<S> App<S> {
    fn count(&self, path: &str) {
        let mut m = self.req_stats.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(path.to_string()).or_default() += 1;
    }
}

/// Serves the monitoring endpoints from `source` on a spawned task until [`Source::closed`]
/// resolves, and returns the bound address. Must be called within a Tokio runtime.
pub fn serve_listener<S: Source>(
    source: S,
    listener: tokio::net::TcpListener,
) -> io::Result<SocketAddr> {
    let bound = listener.local_addr()?;
    let app = router(source.clone(), bound);
    tokio::spawn(async move {
        let shutdown = async move { source.closed().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!("monitoring server stopped: {e}");
        }
    });
    Ok(bound)
}

/// The router of every monitoring endpoint.
pub fn router<S: Source>(source: S, bound: SocketAddr) -> Router {
    Router::new()
        .route("/", get(root::<S>))
        .route("/varz", get(varz::<S>))
        .route("/connz", get(connz::<S>))
        .route("/subsz", get(subsz::<S>))
        .route("/subscriptionsz", get(subsz::<S>))
        .route("/healthz", get(healthz::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/streaming", get(streaming_root))
        .route("/streaming/serverz", get(serverz::<S>))
        .route("/streaming/storez", get(storez::<S>))
        .route("/streaming/clientsz", get(clientsz::<S>))
        .route("/streaming/channelsz", get(channelsz::<S>))
        .route("/streaming/isFTActive", get(is_ft_active))
        .merge(super::console::router(source.console()))
        .fallback(fallback)
        .with_state(App {
            source,
            bound,
            req_stats: Arc::default(),
        })
}

type Params = Query<HashMap<String, String>>;

fn param(p: &HashMap<String, String>, k: &str) -> Option<String> {
    p.get(k).cloned()
}

/// A JSON answer: pretty body, `application/json`, `Access-Control-Allow-Origin: *`; with
/// `callback=<fn>` a JSONP answer.
fn json_response<T: Serialize>(value: &T, params: &HashMap<String, String>) -> Response {
    let body = json::to_pretty(value);
    let (content_type, body) = match params.get("callback").filter(|c| !c.is_empty()) {
        Some(cb) => ("application/javascript", format!("{cb}({body})")),
        None => ("application/json", body),
    };
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// A plain-text error, as Go's `http.Error` writes it.
fn text_error(status: StatusCode, message: &str) -> Response {
    let mut r = Response::new(Body::from(format!("{message}\n")));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn html(body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

async fn fallback(_uri: Uri) -> Response {
    text_error(StatusCode::NOT_FOUND, "404 page not found")
}

async fn root<S: Source>(State(app): State<App<S>>) -> Response {
    app.count("/");
    html(page(
        "stan-broker",
        &[
            ("varz", "./varz"),
            ("connz", "./connz"),
            ("subsz", "./subsz"),
            ("healthz", "./healthz"),
            ("streaming", "./streaming"),
            ("console", "./console/"),
        ],
    ))
}

async fn streaming_root() -> Response {
    html(page(
        "stan-broker streaming",
        &[
            ("server", "./streaming/serverz"),
            ("store", "./streaming/storez"),
            ("clients", "./streaming/clientsz"),
            ("channels", "./streaming/channelsz"),
            ("messages", "./streaming/msgsz"),
        ],
    ))
}

fn page(title: &str, links: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<html lang=\"en\">\n  <head>\n    <title>{title}</title>\n  </head>\n  <body>\n    <h1>{title}</h1>\n"
    );
    for (name, href) in links {
        s.push_str(&format!("    <a href={href}>{name}</a><br/>\n"));
    }
    s.push_str("  </body>\n</html>\n");
    s
}

async fn healthz<S: Source>(State(app): State<App<S>>, Query(p): Params) -> Response {
    app.count("/healthz");
    let mut r = json_response(&serde_json::json!({"status": "ok"}), &p);
    if !p.contains_key("callback") {
        *r.body_mut() = Body::from("{\"status\":\"ok\"}");
    }
    r
}

async fn metrics<S: Source>(State(app): State<App<S>>) -> Response {
    let snap = app.source.snapshot().await;
    let mut r = Response::new(Body::from(super::metrics::render(&snap)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    r
}

async fn is_ft_active() -> Response {
    // A standalone server is never the active member of a fault-tolerance group.
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// Open and maximum file descriptors of this process (Linux `/proc`; 0 elsewhere).
pub fn process_info() -> ProcessInfo {
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    ProcessInfo { open_fds, max_fds }
}

async fn serverz<S: Source>(State(app): State<App<S>>, Query(p): Params) -> Response {
    let snap = app.source.snapshot().await;
    json_response(
        &json::serverz(&snap, SystemTime::now(), &process_info()),
        &p,
    )
}

async fn storez<S: Source>(State(app): State<App<S>>, Query(p): Params) -> Response {
    let snap = app.source.snapshot().await;
    let body = json::storez(
        &snap,
        &app.source.limits(),
        &app.source.per_channel_limits(),
        SystemTime::now(),
    );
    json_response(&body, &p)
}

async fn clientsz<S: Source>(State(app): State<App<S>>, Query(p): Params) -> Response {
    let snap = app.source.snapshot().await;
    let q = ListQuery::from_params(|k| param(&p, k));
    match param(&p, "client").filter(|c| !c.is_empty()) {
        Some(id) => match json::one_client(&snap, &id, q.subs) {
            Some(c) => json_response(&c, &p),
            None => text_error(StatusCode::NOT_FOUND, &format!("Client {id} not found")),
        },
        None => json_response(&json::clientsz(&snap, &q, SystemTime::now()), &p),
    }
}

async fn channelsz<S: Source>(State(app): State<App<S>>, Query(p): Params) -> Response {
    let snap = app.source.snapshot().await;
    let q = ListQuery::from_params(|k| param(&p, k));
    match param(&p, "channel").filter(|c| !c.is_empty()) {
        Some(name) => match json::one_channel(&snap, &name, q.subs) {
            Some(c) => json_response(&c, &p),
            None => text_error(StatusCode::NOT_FOUND, &format!("Channel {name} not found")),
        },
        None => json_response(&json::channelsz(&snap, &q, SystemTime::now()), &p),
    }
}

/// Host and port of a `nats://host:port` URL.
fn url_host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(',').next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    match rest.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_matches(|c| c == '[' || c == ']').to_string(),
            p.trim_end_matches('/').parse().unwrap_or(0),
        ),
        None => (rest.to_string(), 0),
    }
}

/// What the core endpoints report: the embedded server's figures, or (external mode) the
/// broker's own view with nothing counted. `connections` skips gathering the connection
/// list when the endpoint does not need it.
async fn core_view<S: Source>(source: &S, connections: bool) -> CoreView {
    if let Some(server) = source.embedded_server() {
        let o = server.options();
        return CoreView {
            server_id: server.server_id().to_string(),
            server_name: o.server_name.clone(),
            version: stan_embedded_nats::SERVER_VERSION.to_string(),
            host: o.host.clone(),
            port: server.local_addr().port(),
            auth_required: o.auth.is_some(),
            tls_required: o.tls.is_some(),
            ping_interval: o.ping_interval,
            ping_max: o.max_pings_out,
            auth_timeout: o.auth_timeout,
            max_control_line: o.max_control_line,
            max_payload: o.max_payload,
            max_pending: o.max_pending,
            stats: server.varz_stats(),
            connections: if connections {
                server.connections()
            } else {
                Vec::new()
            },
            sublist: server.sublist_stats(),
        };
    }
    let snap = source.snapshot().await;
    let core = source.core_info();
    let (host, port) = url_host_port(&core.client_url);
    let mut view = CoreView::empty(snap.start_time);
    view.server_id = snap.server_id.clone();
    view.server_name = snap.server_id;
    view.version = env!("CARGO_PKG_VERSION").to_string();
    view.host = host;
    view.port = port;
    view.auth_required = core.auth_required;
    view.max_payload = core.max_payload;
    view
}

/// A `400 Bad Request` with nats-server's text (no trailing newline, as it writes it).
fn bad_request(e: BadRequest) -> Response {
    let mut r = text_error(StatusCode::BAD_REQUEST, &e.0);
    *r.body_mut() = Body::from(e.0);
    r
}

async fn varz<S: Source>(State(app): State<App<S>>, Query(p): Params) -> Response {
    app.count("/varz");
    let view = core_view(&app.source, false).await;
    let stats = app
        .req_stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let body = core_json::varz(
        &view,
        (app.bound.ip().to_string(), app.bound.port()),
        &core_json::process_usage(view.stats.start),
        stats,
        SystemTime::now(),
    );
    json_response(&body, &p)
}

async fn connz<S: Source>(State(app): State<App<S>>, Query(p): Params) -> Response {
    app.count("/connz");
    let q = match ConnzQuery::parse(|k| param(&p, k)) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let view = core_view(&app.source, true).await;
    json_response(&core_json::connz(&view, &q, SystemTime::now()), &p)
}

async fn subsz<S: Source>(State(app): State<App<S>>, Query(p): Params) -> Response {
    app.count("/subsz");
    let q = match SubszQuery::parse(|k| param(&p, k)) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let view = core_view(&app.source, false).await;
    let server = app.source.embedded_server();
    let subs = move || server.map(|s| s.subscriptions()).unwrap_or_default();
    json_response(&core_json::subsz(&view, subs, &q, SystemTime::now()), &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts() {
        assert_eq!(
            url_host_port("nats://127.0.0.1:4222"),
            ("127.0.0.1".into(), 4222)
        );
        assert_eq!(url_host_port("nats://u:p@h:5"), ("h".into(), 5));
        assert_eq!(
            url_host_port("nats://[::1]:7,nats://x:8"),
            ("::1".into(), 7)
        );
        assert_eq!(url_host_port("h"), ("h".into(), 0));
    }

    #[test]
    fn fds_are_known_on_linux() {
        let p = process_info();
        if cfg!(target_os = "linux") {
            assert!(p.open_fds > 0 && p.max_fds > 0, "{p:?}");
        }
    }
}
