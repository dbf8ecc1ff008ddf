//! [`NativeBuffer`]: bytes that cross the boundary in bulk.
//!
//! UniFFI moves a `Vec<u8>` one byte at a time on the Rust side (it serialises every element of
//! a sequence), which costs tens of microseconds for a 16 KiB payload. Payloads therefore cross
//! in a `NativeBuffer` instead: the Kotlin side reads or writes its memory in place through JNA,
//! at its [`address`](NativeBuffer::address), with one `memcpy` per block, and the handle keeps
//! the memory alive while the Kotlin side holds it.
//!
//! Layouts (all numbers in the machine's byte order, as JNA reads and writes them):
//! - a batch of deliveries ([`NativeSubscription`](crate::NativeSubscription)): for each of the
//!   `count` messages four 64-bit words (sequence, timestamp in nanoseconds, redelivery count
//!   with the `redelivered` flag in bit 32, payload length), then the payloads back to back;
//! - a batch of publishes ([`NativeClient`](crate::NativeClient)): for each message one 64-bit
//!   word (the index of its channel in the channel list in the high 32 bits, the payload length
//!   in the low ones), then the payloads back to back.

use std::sync::Mutex;

use stan_client::{Error, ErrorKind, Message};

use crate::error::StanError;

/// 64-bit words of header per delivered message.
pub(crate) const DELIVERY_WORDS: usize = 4;

/// A block of bytes owned by the native library that the Kotlin side reads or fills in place.
#[derive(uniffi::Object)]
pub struct NativeBuffer {
    bytes: Mutex<Vec<u8>>,
}

impl NativeBuffer {
    pub(crate) fn from_vec(bytes: Vec<u8>) -> Self {
        NativeBuffer {
            bytes: Mutex::new(bytes),
        }
    }

    /// The bytes, leaving the buffer empty (its address then points at nothing).
    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.bytes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The delivery layout (see the module docs) of `messages`.
pub(crate) fn pack_deliveries(messages: &[Message]) -> Vec<u8> {
    let payload: usize = messages.iter().map(|m| m.data().len()).sum();
    let mut out = Vec::with_capacity(messages.len() * DELIVERY_WORDS * 8 + payload);
    for m in messages {
        let flags = u64::from(m.redelivery_count()) | (u64::from(m.redelivered()) << 32);
        for word in [
            m.sequence(),
            m.timestamp_nanos() as u64,
            flags,
            m.data().len() as u64,
        ] {
            out.extend_from_slice(&word.to_ne_bytes());
        }
    }
    for m in messages {
        out.extend_from_slice(m.data());
    }
    out
}

/// Split a publish layout (see the module docs) of `count` messages into (channel, payload)
/// pairs (one copy of each payload, with `memcpy`).
pub(crate) fn unpack_publishes<'a>(
    bytes: &[u8],
    count: u32,
    channels: &'a [String],
) -> Result<Vec<(&'a str, Vec<u8>)>, StanError> {
    let bad = |what: String| -> StanError { Error::new(ErrorKind::InvalidArgument, what).into() };
    let count = count as usize;
    let header = count
        .checked_mul(8)
        .filter(|&h| h <= bytes.len())
        .ok_or_else(|| {
            bad(format!(
                "a publish buffer of {} bytes has no room for {count} headers",
                bytes.len()
            ))
        })?;
    let mut entries = Vec::with_capacity(count);
    let mut offset = header;
    for chunk in bytes[..header].chunks_exact(8) {
        let word = u64::from_ne_bytes(chunk.try_into().unwrap_or_default());
        let (channel, len) = ((word >> 32) as usize, (word & 0xffff_ffff) as usize);
        let channel = channels
            .get(channel)
            .ok_or_else(|| bad(format!("no channel {channel} among {}", channels.len())))?;
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                bad(format!(
                    "a publish buffer of {} bytes ends before its payloads",
                    bytes.len()
                ))
            })?;
        entries.push((channel.as_str(), bytes[offset..end].to_vec()));
        offset = end;
    }
    Ok(entries)
}

export! {
    impl NativeBuffer {
        /// A zero-filled buffer of `len` bytes for the Kotlin side to fill.
        #[uniffi::constructor]
        pub fn new(len: u64) -> Result<std::sync::Arc<Self>, StanError> {
            let len = usize::try_from(len).map_err(|_| {
                StanError::from(Error::new(ErrorKind::InvalidArgument, format!("buffer of {len} bytes")))
            })?;
            Ok(std::sync::Arc::new(Self::from_vec(vec![0; len])))
        }

        /// Where the bytes are in memory (valid while this handle is open and the buffer was not
        /// handed to a call that takes it).
        pub fn address(&self) -> u64 {
            self.bytes.lock().unwrap_or_else(|e| e.into_inner()).as_ptr() as u64
        }

        /// How many bytes the buffer holds (async only because `runtime.rs` needs one async
        /// function per exported block).
        pub async fn size(&self) -> u64 {
            self.bytes.lock().unwrap_or_else(|e| e.into_inner()).len() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(entries: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (channel, payload) in entries {
            out.extend_from_slice(&((channel << 32) | payload.len() as u64).to_ne_bytes());
        }
        for (_, payload) in entries {
            out.extend_from_slice(payload);
        }
        out
    }

    #[test]
    fn publish_layout_splits_into_channels_and_payloads() {
        let channels = vec!["a".to_string(), "b".to_string()];
        let bytes = layout(&[(0, b"one"), (1, b""), (0, b"three")]);
        let got = unpack_publishes(&bytes, 3, &channels).expect("a valid layout");
        let got: Vec<(&str, &[u8])> = got.iter().map(|(c, p)| (*c, p.as_slice())).collect();
        assert_eq!(
            got,
            vec![("a", &b"one"[..]), ("b", &b""[..]), ("a", &b"three"[..])]
        );
    }

    #[test]
    fn publish_layout_that_does_not_fit_is_an_error() {
        let channels = vec!["a".to_string()];
        let bytes = layout(&[(0, b"one")]);
        let short = &bytes[..bytes.len() - 1];
        let err = unpack_publishes(short, 1, &channels).unwrap_err();
        assert!(
            err.to_string().contains("ends before its payloads"),
            "{err}"
        );
        let err = unpack_publishes(&bytes, 2, &channels).unwrap_err();
        assert!(err.to_string().contains("no room for 2 headers"), "{err}");
        let err = unpack_publishes(&layout(&[(1, b"x")]), 1, &channels).unwrap_err();
        assert!(err.to_string().contains("no channel 1 among 1"), "{err}");
    }
}
