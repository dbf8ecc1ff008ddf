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
//!   `count` messages five 64-bit words (sequence, timestamp in nanoseconds, redelivery count
//!   with the `redelivered` flag in bit 32, payload length, payload address), then the payloads
//!   whose address is 0 back to back, in order. Payloads of [`BY_ADDRESS`] bytes or more are not
//!   copied: their address is where the received message holds them (the subscription keeps
//!   those messages until its next batch), so the reader copies each of them once, straight
//!   into its own memory. Deliveries do not use a `NativeBuffer` handle: each subscription owns
//!   one buffer that it refills for every batch (see [`DeliveryBatch`](crate::DeliveryBatch));
//! - a batch of publishes ([`NativeClient`](crate::NativeClient)): for each message one 64-bit
//!   word (the index of its channel in the channel list in the high 32 bits, the payload length
//!   in the low ones), then the payloads back to back.

use std::sync::Mutex;

use stan_client::{Error, ErrorKind, Message};

use crate::error::StanError;

/// 64-bit words of header per delivered message.
pub(crate) const DELIVERY_WORDS: usize = 5;

/// Payloads of this many bytes or more cross by address instead of being copied into the
/// delivery buffer (one copy less; the reader pays one native read per such payload).
pub(crate) const BY_ADDRESS: usize = 4096;

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

/// Write the delivery layout (see the module docs) of `messages` into `out`, replacing what it
/// held and keeping its allocation: a subscription reuses one buffer for all its batches, so a
/// batch costs no fresh allocation (page faults included) once the buffer has grown to the
/// batches' size. A buffer more than four times (and 1 MiB) larger than needed is shrunk, so
/// one burst of messages does not pin its memory. The payloads that cross by address stay valid
/// while `messages` (or clones of them) are kept.
pub(crate) fn pack_deliveries_into(messages: &[Message], out: &mut Vec<u8>) {
    let inline = |m: &Message| m.data().len() < BY_ADDRESS;
    let payload: usize = messages
        .iter()
        .filter(|m| inline(m))
        .map(|m| m.data().len())
        .sum();
    let needed = messages.len() * DELIVERY_WORDS * 8 + payload;
    out.clear();
    if out.capacity() > SHRINK_ABOVE && out.capacity() / 4 > needed {
        out.shrink_to(needed);
    }
    out.reserve(needed);
    for m in messages {
        let flags = u64::from(m.redelivery_count()) | (u64::from(m.redelivered()) << 32);
        for word in [
            m.sequence(),
            m.timestamp_nanos() as u64,
            flags,
            m.data().len() as u64,
            if inline(m) {
                0
            } else {
                m.data().as_ptr() as u64
            },
        ] {
            out.extend_from_slice(&word.to_ne_bytes());
        }
    }
    for m in messages.iter().filter(|m| inline(m)) {
        out.extend_from_slice(m.data());
    }
}

/// Reused delivery buffers below this capacity are never shrunk.
const SHRINK_ABOVE: usize = 1 << 20;

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
