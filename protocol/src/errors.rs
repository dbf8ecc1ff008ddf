//! Exact error strings of the protocol. Servers send them; clients surface them verbatim.

/// ConnectResponse: the request could not be decoded or lacks a heartbeat inbox.
pub const INVALID_CONN_REQ: &str = "stan: invalid connection request";
/// ConnectResponse: the client ID breaks the naming rule.
pub const INVALID_CLIENT_ID: &str =
    "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed";
/// ConnectResponse: another live client holds the client ID.
pub const CLIENT_ID_REGISTERED: &str = "stan: clientID already registered";
/// PubAck: bad payload, guid, subject, or unknown client/connID.
pub const INVALID_PUB_REQ: &str = "stan: invalid publish request";
/// SubscriptionResponse: undecodable request.
pub const INVALID_SUB_REQ: &str = "stan: invalid subscription request";
/// SubscriptionResponse: empty client ID.
pub const MISSING_CLIENT_ID: &str = "stan: clientID missing";
/// SubscriptionResponse: ack wait below one second.
pub const INVALID_ACK_WAIT: &str = "stan: invalid ack wait time, should be >= 1s";
/// SubscriptionResponse: max in flight below one.
pub const INVALID_MAX_INFLIGHT: &str = "stan: invalid MaxInflight, should be >= 1";
/// SubscriptionResponse: start position outside 0..4.
pub const INVALID_START_POSITION: &str = "stan: invalid start position";
/// SubscriptionResponse: invalid channel name.
pub const INVALID_SUBJECT: &str = "stan: invalid subject";
/// SubscriptionResponse: a durable queue name containing `:`.
pub const INVALID_DURABLE_QUEUE_NAME: &str =
    "stan: durable name of a durable queue subscriber can't contain the character ':'";
/// SubscriptionResponse: the durable subscription is already active.
pub const DUPLICATE_DURABLE: &str = "stan: duplicate durable registration";
/// Subscribe, unsubscribe, subscription close, close: client not registered.
pub const UNKNOWN_CLIENT: &str = "stan: unknown clientID";
/// Unsubscribe / subscription close: undecodable request.
pub const INVALID_UNSUB_REQ: &str = "stan: invalid unsubscribe request";
/// Unsubscribe / subscription close: unknown channel.
pub const UNKNOWN_CHANNEL: &str = "stan: unknown channel";
/// Unsubscribe / subscription close / client: no such subscription.
pub const INVALID_SUB: &str = "stan: invalid subscription";
/// CloseResponse: undecodable request.
pub const INVALID_CLOSE_REQ: &str = "stan: invalid close request";
/// PubAck / SubscriptionResponse: the channel is being deleted.
pub const CHANNEL_BEING_DELETED: &str = "stan: channel is being deleted";
/// PubAck / SubscriptionResponse: channel limit reached.
pub const TOO_MANY_CHANNELS: &str = "too many channels";
/// SubscriptionResponse: subscription limit reached.
pub const TOO_MANY_SUBS: &str = "too many subscriptions per channel";
/// PingResponse: the connection ID is not registered.
pub const CLIENT_REPLACED: &str = "client has been replaced or is no longer registered";

/// The error for a channel whose name differs only in case from an existing one.
///
/// ```
/// assert_eq!(
///     stan_protocol::errors::channel_case_conflict("Foo", "foo"),
///     "rejecting channel \"Foo\" because channel \"foo\" alreay exists (different cases not allowed)"
/// );
/// ```
pub fn channel_case_conflict(new: &str, existing: &str) -> String {
    format!(
        "rejecting channel \"{new}\" because channel \"{existing}\" alreay exists (different cases not allowed)"
    )
}

/// Client side: connect timed out.
pub const CONNECT_REQ_TIMEOUT: &str = "stan: connect request timeout (possibly wrong cluster ID?)";
/// Client side: close request timed out.
pub const CLOSE_REQ_TIMEOUT: &str = "stan: close request timeout";
/// Client side: subscribe request timed out.
pub const SUB_REQ_TIMEOUT: &str = "stan: subscribe request timeout";
/// Client side: unsubscribe request timed out.
pub const UNSUB_REQ_TIMEOUT: &str = "stan: unsubscribe request timeout";
/// Client side: the connection is closed.
pub const CONNECTION_CLOSED: &str = "stan: connection closed";
/// Client side: no PubAck within the ack wait.
pub const PUB_ACK_TIMEOUT: &str = "stan: publish ack timeout";
/// Client side: manual ack on an auto-ack subscription.
pub const MANUAL_ACK_IN_AUTO_MODE: &str = "stan: cannot manually ack in auto-ack mode";
/// Client side: the server lacks subscription close.
pub const NOT_SUPPORTED: &str = "stan: not supported by server";
/// Client side: pings went unanswered.
pub const CONNECTION_LOST_PING: &str = "stan: connection lost due to PING failure";
