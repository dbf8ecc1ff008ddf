//! Protobuf messages of the NATS Streaming client protocol (`package pb`, proto3).
//!
//! Field numbers and types follow the official `protocol.proto` exactly; decoding skips
//! unknown fields, and default values are not written (an all-default message encodes to
//! zero bytes).

use bytes::Bytes;

/// A message published by a client on `<pubPrefix>.<channel>`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PubMsg {
    /// Client ID; may be omitted when `conn_id` is set.
    #[prost(string, tag = "1")]
    pub client_id: String,
    /// Unique ID of this publish, echoed in the [`PubAck`].
    #[prost(string, tag = "2")]
    pub guid: String,
    /// Channel name.
    #[prost(string, tag = "3")]
    pub subject: String,
    /// Optional reply subject, copied into [`MsgProto::reply`].
    #[prost(string, tag = "4")]
    pub reply: String,
    /// Payload.
    #[prost(bytes = "bytes", tag = "5")]
    pub data: Bytes,
    /// Connection ID from the [`ConnectRequest`].
    #[prost(bytes = "bytes", tag = "6")]
    pub conn_id: Bytes,
    /// Optional SHA-256 of the payload; ignored by servers.
    #[prost(bytes = "bytes", tag = "10")]
    pub sha256: Bytes,
}

/// The server's acknowledgement of a [`PubMsg`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PubAck {
    /// The guid of the acknowledged publish.
    #[prost(string, tag = "1")]
    pub guid: String,
    /// Empty on success, otherwise the reason the publish was refused.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// A message delivered to a subscription (also the stored form of a message).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MsgProto {
    /// Per-channel sequence, starting at 1.
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    /// Channel name.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// Reply subject from the publish.
    #[prost(string, tag = "3")]
    pub reply: String,
    /// Payload.
    #[prost(bytes = "bytes", tag = "4")]
    pub data: Bytes,
    /// Server receive time, Unix nanoseconds.
    #[prost(int64, tag = "5")]
    pub timestamp: i64,
    /// True when this delivery is a redelivery.
    #[prost(bool, tag = "6")]
    pub redelivered: bool,
    /// Number of redeliveries so far (1 on the first redelivery).
    #[prost(uint32, tag = "7")]
    pub redelivery_count: u32,
    /// Optional IEEE CRC-32 of the payload.
    #[prost(uint32, tag = "10")]
    pub crc32: u32,
}

/// Acknowledgement of a delivered message, sent to the subscription's ack inbox.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Ack {
    /// Channel name of the acknowledged message.
    #[prost(string, tag = "1")]
    pub subject: String,
    /// Sequence of the acknowledged message.
    #[prost(uint64, tag = "2")]
    pub sequence: u64,
}

/// Sent by a client to `<discoverPrefix>.<clusterID>` to register.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ConnectRequest {
    /// Client ID.
    #[prost(string, tag = "1")]
    pub client_id: String,
    /// Inbox the server sends heartbeats to.
    #[prost(string, tag = "2")]
    pub heartbeat_inbox: String,
    /// Client protocol level (1 for current clients).
    #[prost(int32, tag = "3")]
    pub protocol: i32,
    /// Unique ID of this connection attempt.
    #[prost(bytes = "bytes", tag = "4")]
    pub conn_id: Bytes,
    /// Desired ping interval in seconds (negative: milliseconds, test only).
    #[prost(int32, tag = "5")]
    pub ping_interval: i32,
    /// Pings without answer before the client declares the connection lost.
    #[prost(int32, tag = "6")]
    pub ping_max_out: i32,
    /// stan-rs extension: the client re-sends its in-flight publishes (with their guids)
    /// when its registration is lost. A restarted server does not restore such a
    /// registration, so the client registers anew and its re-sent publishes reach their
    /// channels before any publish it made later. Absent (official clients): false.
    #[prost(bool, tag = "1000")]
    pub resends_publishes: bool,
}

/// The server's answer to a [`ConnectRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ConnectResponse {
    /// Prefix for publish subjects.
    #[prost(string, tag = "1")]
    pub pub_prefix: String,
    /// Subject for subscription requests.
    #[prost(string, tag = "2")]
    pub sub_requests: String,
    /// Subject for unsubscribe requests.
    #[prost(string, tag = "3")]
    pub unsub_requests: String,
    /// Subject for close requests.
    #[prost(string, tag = "4")]
    pub close_requests: String,
    /// Non-empty when the connection was refused.
    #[prost(string, tag = "5")]
    pub error: String,
    /// Subject for subscription close requests (empty: not supported).
    #[prost(string, tag = "6")]
    pub sub_close_requests: String,
    /// Subject for pings.
    #[prost(string, tag = "7")]
    pub ping_requests: String,
    /// Ping interval the client must use (0: do not ping).
    #[prost(int32, tag = "8")]
    pub ping_interval: i32,
    /// Maximum outstanding pings.
    #[prost(int32, tag = "9")]
    pub ping_max_out: i32,
    /// Server protocol level.
    #[prost(int32, tag = "10")]
    pub protocol: i32,
    /// Reserved.
    #[prost(string, tag = "100")]
    pub public_key: String,
    /// stan-rs extension (field numbers from 1000 on are stan-rs's own): how long, in
    /// milliseconds, the server remembers the guids of the publishes it stored, answering a
    /// publish re-sent with such a guid with the original PubAck and storing nothing. 0 (or
    /// absent, as from the official servers): no de-duplication. Official clients skip the
    /// field as unknown.
    #[prost(uint64, tag = "1000")]
    pub dedup_window_ms: u64,
}

/// A client ping.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Ping {
    /// Connection ID of the pinging client.
    #[prost(bytes = "bytes", tag = "1")]
    pub conn_id: Bytes,
}

/// The server's answer to a [`Ping`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PingResponse {
    /// Non-empty when the connection is no longer valid.
    #[prost(string, tag = "1")]
    pub error: String,
}

/// Where a new subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum StartPosition {
    /// Only messages published after the subscription.
    NewOnly = 0,
    /// Starting with the last stored message.
    LastReceived = 1,
    /// Starting with messages not older than a time delta.
    TimeDeltaStart = 2,
    /// Starting at a given sequence.
    SequenceStart = 3,
    /// Everything still stored.
    First = 4,
}

/// Sent by a client to create (or resume) a subscription.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SubscriptionRequest {
    /// Client ID.
    #[prost(string, tag = "1")]
    pub client_id: String,
    /// Channel name.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// Queue group name.
    #[prost(string, tag = "3")]
    pub q_group: String,
    /// Delivery inbox.
    #[prost(string, tag = "4")]
    pub inbox: String,
    /// Maximum unacknowledged messages outstanding.
    #[prost(int32, tag = "5")]
    pub max_in_flight: i32,
    /// Ack wait in seconds.
    #[prost(int32, tag = "6")]
    pub ack_wait_in_secs: i32,
    /// Durable name.
    #[prost(string, tag = "7")]
    pub durable_name: String,
    /// Start position (raw value of [`StartPosition`]).
    #[prost(enumeration = "StartPosition", tag = "10")]
    pub start_position: i32,
    /// Start sequence for [`StartPosition::SequenceStart`].
    #[prost(uint64, tag = "11")]
    pub start_sequence: u64,
    /// Nanoseconds before "now" for [`StartPosition::TimeDeltaStart`].
    #[prost(int64, tag = "12")]
    pub start_time_delta: i64,
}

/// The server's answer to subscription, unsubscribe and subscription-close requests.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SubscriptionResponse {
    /// Inbox the client sends [`Ack`]s to.
    #[prost(string, tag = "2")]
    pub ack_inbox: String,
    /// Non-empty when the request was refused.
    #[prost(string, tag = "3")]
    pub error: String,
}

/// Sent to unsubscribe or to close a subscription.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct UnsubscribeRequest {
    /// Client ID.
    #[prost(string, tag = "1")]
    pub client_id: String,
    /// Channel name.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// Ack inbox of the subscription (the delivery inbox is accepted as a fallback).
    #[prost(string, tag = "3")]
    pub inbox: String,
    /// Durable name (informational; ignored by servers).
    #[prost(string, tag = "4")]
    pub durable_name: String,
}

/// Sent by a client to close its connection.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CloseRequest {
    /// Client ID.
    #[prost(string, tag = "1")]
    pub client_id: String,
}

/// The server's answer to a [`CloseRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CloseResponse {
    /// Non-empty when the close was refused.
    #[prost(string, tag = "1")]
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    // Golden bytes derived by hand from the protobuf wire format:
    // key = (field_number << 3) | wire_type; wire types: 0 varint, 2 length-delimited.

    #[test]
    fn pubmsg_golden_bytes() {
        let m = PubMsg {
            client_id: "me".into(),
            guid: "g".into(),
            subject: "foo".into(),
            data: Bytes::from_static(b"hi"),
            conn_id: Bytes::from_static(b"c"),
            ..Default::default()
        };
        let expected: &[u8] = &[
            0x0a, 2, b'm', b'e', // 1: clientID
            0x12, 1, b'g', // 2: guid
            0x1a, 3, b'f', b'o', b'o', // 3: subject
            0x2a, 2, b'h', b'i', // 5: data
            0x32, 1, b'c', // 6: connID
        ];
        assert_eq!(m.encode_to_vec(), expected);
        assert_eq!(PubMsg::decode(expected).unwrap(), m);
    }

    #[test]
    fn pubmsg_sha256_is_field_10() {
        let m = PubMsg {
            sha256: Bytes::from_static(b"x"),
            ..Default::default()
        };
        // (10 << 3) | 2 = 82 = 0x52
        assert_eq!(m.encode_to_vec(), vec![0x52, 1, b'x']);
    }

    #[test]
    fn msgproto_golden_bytes() {
        let m = MsgProto {
            sequence: 300,
            subject: "a".into(),
            reply: "r".into(),
            data: Bytes::from_static(b"\x00\x01"),
            timestamp: 1,
            redelivered: true,
            redelivery_count: 2,
            crc32: 5,
        };
        let expected: &[u8] = &[
            0x08, 0xac, 0x02, // 1: sequence 300 as varint
            0x12, 1, b'a', // 2: subject
            0x1a, 1, b'r', // 3: reply
            0x22, 2, 0x00, 0x01, // 4: data
            0x28, 0x01, // 5: timestamp
            0x30, 0x01, // 6: redelivered
            0x38, 0x02, // 7: redeliveryCount
            0x50, 0x05, // 10: CRC32
        ];
        assert_eq!(m.encode_to_vec(), expected);
        assert_eq!(MsgProto::decode(expected).unwrap(), m);
    }

    #[test]
    fn negative_int64_is_ten_byte_varint() {
        let m = MsgProto {
            timestamp: -1,
            ..Default::default()
        };
        let mut expected = vec![0x28];
        expected.extend_from_slice(&[0xff; 9]);
        expected.push(0x01);
        assert_eq!(m.encode_to_vec(), expected);
    }

    #[test]
    fn connect_request_and_response_golden_bytes() {
        let req = ConnectRequest {
            client_id: "c".into(),
            heartbeat_inbox: "h".into(),
            protocol: 1,
            conn_id: Bytes::from_static(b"n"),
            ping_interval: 5,
            ping_max_out: 88,
            resends_publishes: false,
        };
        let expected: &[u8] = &[
            0x0a, 1, b'c', 0x12, 1, b'h', 0x18, 1, 0x22, 1, b'n', 0x28, 5, 0x30, 88,
        ];
        assert_eq!(req.encode_to_vec(), expected);
        assert_eq!(ConnectRequest::decode(expected).unwrap(), req);

        let resp = ConnectResponse {
            pub_prefix: "p".into(),
            sub_close_requests: "s".into(),
            ping_interval: -100,
            protocol: 1,
            public_key: "k".into(),
            ..Default::default()
        };
        let mut expected = vec![0x0a, 1, b'p', 0x32, 1, b's', 0x40];
        // -100 as int32 is sign-extended to a 10-byte varint
        expected.extend_from_slice(&[0x9c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        expected.extend_from_slice(&[0x50, 1]);
        // field 100, wire type 2: (100 << 3) | 2 = 802 = varint 0xa2 0x06
        expected.extend_from_slice(&[0xa2, 0x06, 1, b'k']);
        assert_eq!(resp.encode_to_vec(), expected);
        assert_eq!(ConnectResponse::decode(expected.as_slice()).unwrap(), resp);
    }

    /// The ConnectResponse as the official clients know it: fields 1-10 and 100, without the
    /// stan-rs extension.
    #[derive(Clone, PartialEq, ::prost::Message)]
    struct OfficialConnectResponse {
        #[prost(string, tag = "1")]
        pub_prefix: String,
        #[prost(string, tag = "2")]
        sub_requests: String,
        #[prost(string, tag = "3")]
        unsub_requests: String,
        #[prost(string, tag = "4")]
        close_requests: String,
        #[prost(string, tag = "5")]
        error: String,
        #[prost(string, tag = "6")]
        sub_close_requests: String,
        #[prost(string, tag = "7")]
        ping_requests: String,
        #[prost(int32, tag = "8")]
        ping_interval: i32,
        #[prost(int32, tag = "9")]
        ping_max_out: i32,
        #[prost(int32, tag = "10")]
        protocol: i32,
        #[prost(string, tag = "100")]
        public_key: String,
    }

    #[test]
    fn dedup_window_field_golden_bytes_and_skipped_by_a_decoder_without_it() {
        let resp = ConnectResponse {
            pub_prefix: "p".into(),
            ping_requests: "q".into(),
            protocol: 1,
            dedup_window_ms: 120_000,
            ..Default::default()
        };
        // field 1000, wire type 0: (1000 << 3) = 8000 = varint 0xc0 0x3e; 120000 = 0xc0 0xa9 0x07
        let expected: &[u8] = &[
            0x0a, 1, b'p', 0x3a, 1, b'q', 0x50, 1, 0xc0, 0x3e, 0xc0, 0xa9, 0x07,
        ];
        assert_eq!(resp.encode_to_vec(), expected);
        assert_eq!(ConnectResponse::decode(expected).unwrap(), resp);
        let official = OfficialConnectResponse::decode(expected).unwrap();
        assert_eq!(
            official,
            OfficialConnectResponse {
                pub_prefix: "p".into(),
                ping_requests: "q".into(),
                protocol: 1,
                ..Default::default()
            }
        );
        // Absent (an official server): 0, de-duplication off.
        let from_official = ConnectResponse::decode(official.encode_to_vec().as_slice()).unwrap();
        assert_eq!(from_official.dedup_window_ms, 0);
        // 0 is not encoded at all: a response without the window is byte-identical to the
        // official server's.
        let off = ConnectResponse {
            dedup_window_ms: 0,
            ..resp
        };
        assert_eq!(off.encode_to_vec(), &expected[..8]);
    }

    #[test]
    fn subscription_request_golden_bytes() {
        let req = SubscriptionRequest {
            client_id: "c".into(),
            subject: "s".into(),
            q_group: "q".into(),
            inbox: "i".into(),
            max_in_flight: 1024,
            ack_wait_in_secs: 30,
            durable_name: "d".into(),
            start_position: StartPosition::SequenceStart as i32,
            start_sequence: 7,
            start_time_delta: 9,
        };
        let expected: &[u8] = &[
            0x0a, 1, b'c', 0x12, 1, b's', 0x1a, 1, b'q', 0x22, 1, b'i', 0x28, 0x80, 0x08, 0x30, 30,
            0x3a, 1, b'd', 0x50, 3, 0x58, 7, 0x60, 9,
        ];
        assert_eq!(req.encode_to_vec(), expected);
        assert_eq!(SubscriptionRequest::decode(expected).unwrap(), req);
    }

    #[test]
    fn subscription_response_has_no_field_1() {
        let r = SubscriptionResponse {
            ack_inbox: "a".into(),
            error: "e".into(),
        };
        assert_eq!(r.encode_to_vec(), vec![0x12, 1, b'a', 0x1a, 1, b'e']);
    }

    #[test]
    fn small_messages_golden_bytes() {
        assert_eq!(
            Ack {
                subject: "x".into(),
                sequence: 2
            }
            .encode_to_vec(),
            vec![0x0a, 1, b'x', 0x10, 2]
        );
        assert_eq!(
            PubAck {
                guid: "g".into(),
                error: "e".into()
            }
            .encode_to_vec(),
            vec![0x0a, 1, b'g', 0x12, 1, b'e']
        );
        assert_eq!(
            Ping {
                conn_id: Bytes::from_static(b"z")
            }
            .encode_to_vec(),
            vec![0x0a, 1, b'z']
        );
        assert_eq!(
            PingResponse { error: "e".into() }.encode_to_vec(),
            vec![0x0a, 1, b'e']
        );
        assert_eq!(
            CloseRequest {
                client_id: "c".into()
            }
            .encode_to_vec(),
            vec![0x0a, 1, b'c']
        );
        assert_eq!(
            CloseResponse { error: "e".into() }.encode_to_vec(),
            vec![0x0a, 1, b'e']
        );
        let u = UnsubscribeRequest {
            client_id: "c".into(),
            subject: "s".into(),
            inbox: "i".into(),
            durable_name: "d".into(),
        };
        assert_eq!(
            u.encode_to_vec(),
            vec![0x0a, 1, b'c', 0x12, 1, b's', 0x1a, 1, b'i', 0x22, 1, b'd']
        );
    }

    #[test]
    fn defaults_encode_to_nothing() {
        assert!(PingResponse::default().encode_to_vec().is_empty());
        assert!(CloseResponse::default().encode_to_vec().is_empty());
        assert!(SubscriptionResponse::default().encode_to_vec().is_empty());
        assert_eq!(
            PingResponse::decode(&b""[..]).unwrap(),
            PingResponse::default()
        );
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // PubAck with an extra varint field 15 and an extra length-delimited field 20.
        let bytes: &[u8] = &[
            0x0a, 1, b'g', 0x78, 0x05, 0xa2, 0x01, 2, b'z', b'z', 0x12, 1, b'e',
        ];
        let ack = PubAck::decode(bytes).unwrap();
        assert_eq!(ack.guid, "g");
        assert_eq!(ack.error, "e");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(PubMsg::decode(&[0x0a, 50, b'x'][..]).is_err());
        assert!(ConnectRequest::decode(&[0xff][..]).is_err());
        assert!(SubscriptionRequest::decode(&[0x28, 0xff, 0xff][..]).is_err());
    }

    #[test]
    fn start_position_values() {
        assert_eq!(StartPosition::NewOnly as i32, 0);
        assert_eq!(StartPosition::LastReceived as i32, 1);
        assert_eq!(StartPosition::TimeDeltaStart as i32, 2);
        assert_eq!(StartPosition::SequenceStart as i32, 3);
        assert_eq!(StartPosition::First as i32, 4);
        assert!(StartPosition::try_from(5).is_err());
    }
}
