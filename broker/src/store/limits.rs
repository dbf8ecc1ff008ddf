//! Effective channel limits: per-channel (possibly wildcard) entries over the global limits.

use std::cmp::Ordering;
use std::time::Duration;

use crate::config::{ChannelLimits, StoreLimits};
use crate::store::{StoreError, StoreResult};

/// Whether channel `name` may be created in a store holding `count` channels (`exists`: one of
/// that name is among them), and its effective limits if so.
pub(crate) fn admit_channel(
    limits: &StoreLimits,
    name: &str,
    exists: bool,
    count: usize,
) -> StoreResult<ChannelLimits> {
    if exists {
        return Err(StoreError::ChannelExists(name.to_string()));
    }
    if limits.max_channels > 0 && count >= limits.max_channels {
        return Err(StoreError::TooManyChannels);
    }
    Ok(effective_limits(limits, name))
}

/// Rank of one pattern token: literal > `*` > `>`.
fn token_rank(t: &str) -> u8 {
    match t {
        ">" => 0,
        "*" => 1,
        _ => 2,
    }
}

/// True when the limits key `pattern` (literal tokens, `*`, trailing `>`) matches `channel`.
pub fn pattern_matches(pattern: &str, channel: &str) -> bool {
    let mut ct = channel.split('.');
    for p in pattern.split('.') {
        if p == ">" {
            return ct.next().is_some();
        }
        match ct.next() {
            Some(c) if p == "*" || p == c => {}
            _ => return false,
        }
    }
    ct.next().is_none()
}

/// Orders two matching patterns by specificity (greater = more specific): token by token,
/// literal beats `*` beats `>`.
fn specificity(a: &str, b: &str) -> Ordering {
    let ra: Vec<u8> = a.split('.').map(token_rank).collect();
    let rb: Vec<u8> = b.split('.').map(token_rank).collect();
    ra.cmp(&rb)
}

/// The limits in force for `channel`: the most specific matching entry, unset fields
/// inherited from less specific matches, then from the global limits. Every field of the
/// result is set (`Some(0)` / `Some(Duration::ZERO)` = unlimited).
///
/// ```
/// use stan_broker::config::{ChannelLimits, StoreLimits};
/// use stan_broker::store::limits::effective_limits;
/// let mut l = StoreLimits::default();
/// l.channels.insert("foo.>".into(), ChannelLimits { max_msgs: Some(10), ..Default::default() });
/// l.channels.insert("foo.bar".into(), ChannelLimits { max_bytes: Some(99), ..Default::default() });
/// let e = effective_limits(&l, "foo.bar");
/// assert_eq!((e.max_msgs, e.max_bytes), (Some(10), Some(99)));
/// ```
pub fn effective_limits(limits: &StoreLimits, channel: &str) -> ChannelLimits {
    let mut matching: Vec<(&String, &ChannelLimits)> = limits
        .channels
        .iter()
        .filter(|(k, _)| pattern_matches(k, channel))
        .collect();
    matching.sort_by(|a, b| specificity(b.0, a.0));
    let mut out = ChannelLimits::default();
    for l in matching
        .iter()
        .map(|(_, l)| *l)
        .chain(std::iter::once(&limits.global))
    {
        out.max_subs = out.max_subs.or(l.max_subs);
        out.max_msgs = out.max_msgs.or(l.max_msgs);
        out.max_bytes = out.max_bytes.or(l.max_bytes);
        out.max_age = out.max_age.or(l.max_age);
        out.max_inactivity = out.max_inactivity.or(l.max_inactivity);
    }
    ChannelLimits {
        max_subs: Some(out.max_subs.unwrap_or(0)),
        max_msgs: Some(out.max_msgs.unwrap_or(0)),
        max_bytes: Some(out.max_bytes.unwrap_or(0)),
        max_age: Some(out.max_age.unwrap_or(Duration::ZERO)),
        max_inactivity: Some(out.max_inactivity.unwrap_or(Duration::ZERO)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cl(msgs: Option<usize>, subs: Option<usize>) -> ChannelLimits {
        ChannelLimits {
            max_msgs: msgs,
            max_subs: subs,
            ..Default::default()
        }
    }

    #[test]
    fn matching() {
        assert!(pattern_matches("foo.*", "foo.bar"));
        assert!(!pattern_matches("foo.*", "foo.bar.baz"));
        assert!(pattern_matches("foo.>", "foo.bar.baz"));
        assert!(!pattern_matches("foo.>", "foo"));
        assert!(pattern_matches(">", "foo"));
        assert!(pattern_matches("*.bar", "foo.bar"));
        assert!(!pattern_matches("foo", "foo.bar"));
        assert!(pattern_matches("foo", "foo"));
    }

    #[test]
    fn most_specific_wins_and_inherits() {
        let mut l = StoreLimits::default();
        l.global.max_msgs = Some(1000);
        l.global.max_subs = Some(7);
        l.channels.insert("*.bar".into(), cl(Some(1), Some(1)));
        l.channels.insert("foo.>".into(), cl(Some(2), None));
        l.channels.insert("foo.*".into(), cl(Some(3), None));
        l.channels.insert("foo.bar".into(), cl(None, None));
        let e = effective_limits(&l, "foo.bar");
        assert_eq!(e.max_msgs, Some(3));
        // foo.> beats *.bar, but neither foo.bar, foo.* nor foo.> sets max_subs → *.bar's 1
        assert_eq!(e.max_subs, Some(1));
        let e = effective_limits(&l, "foo.baz.x");
        assert_eq!(e.max_msgs, Some(2));
        assert_eq!(e.max_subs, Some(7));
        let e = effective_limits(&l, "other");
        assert_eq!(e.max_msgs, Some(1000));
        // explicit 0 = unlimited, not inherited
        l.channels.insert("zero".into(), cl(Some(0), None));
        assert_eq!(effective_limits(&l, "zero").max_msgs, Some(0));
    }
}
