//! Reading a channel's stored messages for the monitoring console (`/streaming/msgsz`).
//!
//! The engine answers from the channel's own [`MsgStore`](crate::store::MsgStore), between
//! batches, like a snapshot: no second view of the store exists.

use crate::monitor::console::{BrowseError, MsgPage, MsgQuery, MsgStart, StoredMsg};

use super::Engine;

impl Engine {
    /// One page of channel `q.channel`'s stored messages, oldest first: at most `q.limit`
    /// messages, payloads cut at `q.max_payload` bytes, and the page ends early once the
    /// payloads shown reach `q.max_page_bytes` (at least one message is always given).
    pub(crate) fn browse(&self, q: &MsgQuery) -> Result<MsgPage, BrowseError> {
        let ch = self
            .channels
            .get(&q.channel)
            .ok_or_else(|| BrowseError::UnknownChannel(q.channel.clone()))?;
        let msgs = &ch.store.msgs;
        let first = msgs.first_sequence();
        let last = msgs.last_sequence();
        let start = match q.start {
            MsgStart::First => first,
            MsgStart::Sequence(s) => s,
            MsgStart::Time(ts) => msgs.sequence_for_timestamp(ts),
        };
        // Only the oldest messages are ever removed, so the stored ones are contiguous.
        let from = start.max(first).max(1);
        let mut page = MsgPage {
            channel: ch.name.clone(),
            first_seq: first,
            last_seq: last,
            start_seq: start,
            next_seq: from,
            msgs: Vec::new(),
        };
        let mut shown = 0usize;
        let mut seq = from;
        while seq <= last && page.msgs.len() < q.limit {
            if !page.msgs.is_empty() && shown >= q.max_page_bytes {
                break;
            }
            if let Some(m) = msgs.lookup(seq) {
                let size = m.data.len();
                let cut = size.min(q.max_payload);
                shown += cut;
                page.msgs.push(StoredMsg {
                    sequence: seq,
                    timestamp: m.timestamp,
                    size,
                    data: m.data.slice(..cut),
                    truncated: cut < size,
                    redelivery_count: self.redelivery_count(&ch.name, seq),
                });
            }
            seq += 1;
        }
        page.next_seq = seq;
        Ok(page)
    }

    /// The highest redelivery count any subscription of `channel` holds for `seq` (0: none
    /// of them has redelivered it and not yet received its ack).
    fn redelivery_count(&self, channel: &str, seq: u64) -> u32 {
        let Some(ch) = self.channels.get(channel) else {
            return 0;
        };
        let plain = ch
            .subs
            .iter()
            .filter_map(|id| self.subs.get(id))
            .filter_map(|s| s.redeliveries.get(&seq).copied());
        let queues = ch
            .queues
            .values()
            .filter_map(|g| g.redeliveries.get(&seq).copied());
        plain.chain(queues).max().unwrap_or(0)
    }
}
