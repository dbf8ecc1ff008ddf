//! Subject names used by the protocol.
//!
//! Clients must take every server subject from the `ConnectResponse`; the helpers here are for
//! servers, which choose those subjects, and for clients, which choose their own inboxes.

/// Default discover prefix; the server listens on `<prefix>.<clusterID>`.
pub const DEFAULT_DISCOVER_PREFIX: &str = "_STAN.discover";
/// Default publish prefix (the server appends `.<clusterID>`).
pub const DEFAULT_PUB_PREFIX: &str = "_STAN.pub";
/// Default subscription-request prefix.
pub const DEFAULT_SUB_PREFIX: &str = "_STAN.sub";
/// Default unsubscribe-request prefix.
pub const DEFAULT_UNSUB_PREFIX: &str = "_STAN.unsub";
/// Default subscription-close-request prefix.
pub const DEFAULT_SUB_CLOSE_PREFIX: &str = "_STAN.subclose";
/// Default close-request prefix.
pub const DEFAULT_CLOSE_PREFIX: &str = "_STAN.close";
/// Prefix of client pub-ack inboxes.
pub const ACK_INBOX_PREFIX: &str = "_STAN.acks";
/// Prefix of inboxes.
pub const INBOX_PREFIX: &str = "_INBOX";

/// The subjects a server announces in its `ConnectResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSubjects {
    /// `<discover>.<cluster>`: connect requests.
    pub discover: String,
    /// `<discover>.<cluster>.pings`: client pings.
    pub pings: String,
    /// `_STAN.pub.<cluster>`: publish prefix (clients append `.<channel>`).
    pub publish: String,
    /// `_STAN.sub.<cluster>`: subscription requests.
    pub subscribe: String,
    /// `_STAN.unsub.<cluster>`: unsubscribe requests.
    pub unsubscribe: String,
    /// `_STAN.subclose.<cluster>`: subscription close requests.
    pub sub_close: String,
    /// `_STAN.close.<cluster>`: connection close requests.
    pub close: String,
}

impl ServerSubjects {
    /// The default subjects for a cluster ID and discover prefix.
    ///
    /// ```
    /// let s = stan_protocol::subjects::ServerSubjects::new("test-cluster", "_STAN.discover");
    /// assert_eq!(s.discover, "_STAN.discover.test-cluster");
    /// assert_eq!(s.pings, "_STAN.discover.test-cluster.pings");
    /// assert_eq!(s.publish, "_STAN.pub.test-cluster");
    /// ```
    pub fn new(cluster_id: &str, discover_prefix: &str) -> Self {
        let discover = format!("{discover_prefix}.{cluster_id}");
        ServerSubjects {
            pings: format!("{discover}.pings"),
            discover,
            publish: format!("{DEFAULT_PUB_PREFIX}.{cluster_id}"),
            subscribe: format!("{DEFAULT_SUB_PREFIX}.{cluster_id}"),
            unsubscribe: format!("{DEFAULT_UNSUB_PREFIX}.{cluster_id}"),
            sub_close: format!("{DEFAULT_SUB_CLOSE_PREFIX}.{cluster_id}"),
            close: format!("{DEFAULT_CLOSE_PREFIX}.{cluster_id}"),
        }
    }

    /// The subject a client publishes a message for `channel` on.
    pub fn publish_subject(&self, channel: &str) -> String {
        format!("{}.{channel}", self.publish)
    }
}

/// A new unique inbox subject, `_INBOX.<nuid>`.
pub fn new_inbox() -> String {
    format!("{INBOX_PREFIX}.{}", new_nuid())
}

/// A new pub-ack inbox subject, `_STAN.acks.<nuid>`.
pub fn new_ack_inbox() -> String {
    format!("{ACK_INBOX_PREFIX}.{}", new_nuid())
}

/// A new 22-character random base-62 identifier.
pub fn new_nuid() -> String {
    nuid::next().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn nuids_are_22_base62_chars_and_unique() {
        let a = super::new_nuid();
        let b = super::new_nuid();
        assert_eq!(a.len(), 22);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert!(super::new_inbox().starts_with("_INBOX."));
        assert!(super::new_ack_inbox().starts_with("_STAN.acks."));
    }
}
