//! Names of the JETSTREAM store's streams, subjects, buckets and keys.
//!
//! Stream, bucket and key names allow fewer characters than channel names and cluster IDs, so
//! those are escaped: letters and digits stay, every other byte becomes `_` and two hex
//! digits. The escape is reversible and never produces `-`, which separates the parts of a
//! name.

use std::fmt::Write;

/// Escapes `s` for stream, bucket and key names.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "_{b:02x}");
        }
    }
    out
}

/// Reverses [`escape`] (`None` for a string that no escape produced).
pub(crate) fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// The names of one cluster's streams and buckets.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    /// `{prefix}-{escaped cluster ID}`: the first part of every stream and bucket name.
    base: String,
    /// `$SJS.{prefix}.{escaped cluster ID}`: the first part of every channel's subject.
    subject_base: String,
}

impl Names {
    pub(crate) fn new(prefix: &str, cluster_id: &str) -> Names {
        let cluster = escape(cluster_id);
        Names {
            base: format!("{prefix}-{cluster}"),
            subject_base: format!("$SJS.{prefix}.{cluster}"),
        }
    }

    /// The stream of a channel.
    pub(crate) fn stream(&self, channel: &str) -> String {
        format!("{}-{}", self.base, escape(channel))
    }

    /// The channel of a stream name of this cluster (`None`: another cluster's or not ours).
    pub(crate) fn channel_of_stream(&self, stream: &str) -> Option<String> {
        let rest = stream.strip_prefix(&self.base)?.strip_prefix('-')?;
        if rest.contains('-') {
            // A bucket of this cluster (`...-clients`) or another cluster's stream.
            return None;
        }
        unescape(rest)
    }

    /// The subject a channel's messages are stored under.
    pub(crate) fn subject(&self, channel: &str) -> String {
        format!("{}.{}", self.subject_base, channel)
    }

    /// A bucket of this cluster: `clients`, `subs`, `server` or `lease`.
    pub(crate) fn bucket(&self, what: &str) -> String {
        format!("{}-{}", self.base, what)
    }

    /// The key of a subscription record in the `subs` bucket.
    pub(crate) fn sub_key(channel: &str, id: u64) -> String {
        format!("{}.{id}", escape(channel))
    }

    /// The channel and subscription ID of a key of the `subs` bucket.
    pub(crate) fn parse_sub_key(key: &str) -> Option<(String, u64)> {
        let (channel, id) = key.rsplit_once('.')?;
        Some((unescape(channel)?, id.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips_and_keeps_names_apart() {
        for s in ["foo", "a.b", "a_b", "a-b", "a._b", "a_.b", "é", "x y", ""] {
            let e = escape(s);
            assert!(
                e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{e}"
            );
            assert_eq!(unescape(&e).as_deref(), Some(s));
        }
        assert_ne!(escape("a._b"), escape("a_.b"));
        assert_eq!(escape("orders.eu-1"), "orders_2eeu_2d1");
        assert_eq!(unescape("a_zz"), None);
        assert_eq!(unescape("a-b"), None);
    }

    #[test]
    fn stream_names_map_back_to_their_channel_only_for_their_cluster() {
        let n = Names::new("STAN", "test-cluster");
        assert_eq!(n.stream("foo.bar"), "STAN-test_2dcluster-foo_2ebar");
        assert_eq!(n.subject("foo.bar"), "$SJS.STAN.test_2dcluster.foo.bar");
        assert_eq!(
            n.channel_of_stream(&n.stream("foo.bar")).as_deref(),
            Some("foo.bar")
        );
        // Buckets live in `KV_` streams: never taken for a channel.
        assert_eq!(
            n.channel_of_stream(&format!("KV_{}", n.bucket("clients"))),
            None
        );
        let other = Names::new("STAN", "test");
        assert_eq!(other.channel_of_stream(&n.stream("foo")), None);
        assert_eq!(n.channel_of_stream("KV_x"), None);
        let key = Names::sub_key("a.b", 42);
        assert_eq!(key, "a_2eb.42");
        assert_eq!(Names::parse_sub_key(&key), Some(("a.b".to_string(), 42)));
    }
}
