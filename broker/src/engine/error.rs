//! Errors of the engine: why it cannot start ([`StartError`]) and why it refuses a client
//! request ([`RequestError`]).

use stan_protocol::errors;

use crate::store::StoreError;
use crate::transport::TransportError;

/// Why the engine refused to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not hand back its recovered state.
    #[error("store recovery failed: {0}")]
    Recover(#[source] StoreError),
    /// The recovered state belongs to another cluster.
    #[error("cluster ID \"{configured}\" does not match recovered value of \"{recovered}\"")]
    ClusterIdMismatch {
        /// The configured cluster ID.
        configured: String,
        /// The cluster ID found in the store.
        recovered: String,
    },
    /// Another streaming server with the same cluster ID answers on this NATS.
    #[error("discovered another streaming server with cluster ID \"{0}\"")]
    DuplicateServer(String),
    /// The store could not record the server info.
    #[error("store initialisation failed: {0}")]
    Init(#[source] StoreError),
    /// A server subject could not be subscribed.
    #[error("unable to subscribe to {subject}: {source}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// The transport's reason.
        #[source]
        source: TransportError,
    },
}

/// Why the engine refused a client request (connect, publish, subscribe, unsubscribe, close,
/// ping). `Display` is exactly the error text the response carries on the wire
/// ([`stan_protocol::errors`]), which clients surface verbatim.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Connect: undecodable, or no heartbeat inbox.
    #[error("{}", errors::INVALID_CONN_REQ)]
    InvalidConnRequest,
    /// Connect: the client ID breaks the naming rule.
    #[error("{}", errors::INVALID_CLIENT_ID)]
    InvalidClientId,
    /// Connect: another live client holds the client ID.
    #[error("{}", errors::CLIENT_ID_REGISTERED)]
    ClientIdRegistered,
    /// Publish: bad payload, guid or subject, or unknown client or connection.
    #[error("{}", errors::INVALID_PUB_REQ)]
    InvalidPubRequest,
    /// Subscribe: undecodable request.
    #[error("{}", errors::INVALID_SUB_REQ)]
    InvalidSubRequest,
    /// Subscribe: empty client ID.
    #[error("{}", errors::MISSING_CLIENT_ID)]
    MissingClientId,
    /// Subscribe: ack wait below one second.
    #[error("{}", errors::INVALID_ACK_WAIT)]
    InvalidAckWait,
    /// Subscribe: max in flight below one.
    #[error("{}", errors::INVALID_MAX_INFLIGHT)]
    InvalidMaxInflight,
    /// Subscribe: unknown start position.
    #[error("{}", errors::INVALID_START_POSITION)]
    InvalidStartPosition,
    /// Subscribe: invalid channel name.
    #[error("{}", errors::INVALID_SUBJECT)]
    InvalidSubject,
    /// Subscribe: a durable queue name containing `:`.
    #[error("{}", errors::INVALID_DURABLE_QUEUE_NAME)]
    InvalidDurableQueueName,
    /// Subscribe: the durable subscription is already active.
    #[error("{}", errors::DUPLICATE_DURABLE)]
    DuplicateDurable,
    /// Subscribe, unsubscribe, close: the client is not registered (or does not own the
    /// subscription).
    #[error("{}", errors::UNKNOWN_CLIENT)]
    UnknownClient,
    /// Unsubscribe: undecodable request.
    #[error("{}", errors::INVALID_UNSUB_REQ)]
    InvalidUnsubRequest,
    /// Unsubscribe: unknown channel.
    #[error("{}", errors::UNKNOWN_CHANNEL)]
    UnknownChannel,
    /// Unsubscribe, subscribe: no such subscription.
    #[error("{}", errors::INVALID_SUB)]
    InvalidSub,
    /// Close: undecodable request.
    #[error("{}", errors::INVALID_CLOSE_REQ)]
    InvalidCloseRequest,
    /// Publish, subscribe: the channel limit is reached.
    #[error("{}", errors::TOO_MANY_CHANNELS)]
    TooManyChannels,
    /// Subscribe: the subscription limit of the channel is reached.
    #[error("{}", errors::TOO_MANY_SUBS)]
    TooManySubs,
    /// Ping: the connection ID is not registered.
    #[error("{}", errors::CLIENT_REPLACED)]
    ClientReplaced,
    /// Publish, subscribe: the channel name differs only in case from an existing one.
    #[error("{}", errors::channel_case_conflict(.name, .existing))]
    ChannelCaseConflict {
        /// The requested channel.
        name: String,
        /// The existing channel.
        existing: String,
    },
    /// Subscribe: the ack inbox could not be subscribed.
    #[error("stan: unable to subscribe ack inbox: {0}")]
    AckInbox(#[source] TransportError),
    /// The store refused the operation; its message is sent as is.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RequestError {
    /// The error text of a response: empty for success, else the protocol string.
    pub(crate) fn wire_text(result: &Result<(), RequestError>) -> String {
        match result {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_protocol_string() {
        let cases: &[(RequestError, &str)] = &[
            (RequestError::InvalidConnRequest, errors::INVALID_CONN_REQ),
            (RequestError::InvalidClientId, errors::INVALID_CLIENT_ID),
            (
                RequestError::ClientIdRegistered,
                errors::CLIENT_ID_REGISTERED,
            ),
            (RequestError::InvalidPubRequest, errors::INVALID_PUB_REQ),
            (RequestError::InvalidSubRequest, errors::INVALID_SUB_REQ),
            (RequestError::MissingClientId, errors::MISSING_CLIENT_ID),
            (RequestError::InvalidAckWait, errors::INVALID_ACK_WAIT),
            (
                RequestError::InvalidMaxInflight,
                errors::INVALID_MAX_INFLIGHT,
            ),
            (
                RequestError::InvalidStartPosition,
                errors::INVALID_START_POSITION,
            ),
            (RequestError::InvalidSubject, errors::INVALID_SUBJECT),
            (
                RequestError::InvalidDurableQueueName,
                errors::INVALID_DURABLE_QUEUE_NAME,
            ),
            (RequestError::DuplicateDurable, errors::DUPLICATE_DURABLE),
            (RequestError::UnknownClient, errors::UNKNOWN_CLIENT),
            (RequestError::InvalidUnsubRequest, errors::INVALID_UNSUB_REQ),
            (RequestError::UnknownChannel, errors::UNKNOWN_CHANNEL),
            (RequestError::InvalidSub, errors::INVALID_SUB),
            (RequestError::InvalidCloseRequest, errors::INVALID_CLOSE_REQ),
            (RequestError::TooManyChannels, errors::TOO_MANY_CHANNELS),
            (RequestError::TooManySubs, errors::TOO_MANY_SUBS),
            (RequestError::ClientReplaced, errors::CLIENT_REPLACED),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), *text);
        }
        let conflict = RequestError::ChannelCaseConflict {
            name: "Foo".into(),
            existing: "foo".into(),
        };
        assert_eq!(
            conflict.to_string(),
            errors::channel_case_conflict("Foo", "foo")
        );
        assert_eq!(
            RequestError::AckInbox(TransportError::Closed).to_string(),
            "stan: unable to subscribe ack inbox: transport closed"
        );
        assert_eq!(
            RequestError::Store(StoreError::Other("disk full".into())).to_string(),
            "disk full"
        );
        assert_eq!(RequestError::wire_text(&Ok(())), "");
    }
}
