//! Validation rules for client IDs, channel names and durable names.

/// True when `id` is a valid client ID: one or more of `[a-zA-Z0-9_-]`.
///
/// ```
/// use stan_protocol::validate::is_valid_client_id;
/// assert!(is_valid_client_id("client-1_a"));
/// assert!(!is_valid_client_id(""));
/// assert!(!is_valid_client_id("a.b"));
/// ```
pub fn is_valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// True when `name` is a valid channel name for publish and subscribe: non-empty, no leading
/// or trailing `.`, no empty token, no `/`, no wildcard (`*`, `>`), no whitespace.
///
/// ```
/// use stan_protocol::validate::is_valid_channel;
/// assert!(is_valid_channel("orders.eu"));
/// assert!(!is_valid_channel("orders.*"));
/// assert!(!is_valid_channel(".orders"));
/// assert!(!is_valid_channel("a..b"));
/// ```
pub fn is_valid_channel(name: &str) -> bool {
    if name.is_empty() || name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return false;
    }
    !name
        .chars()
        .any(|c| matches!(c, '/' | '*' | '>') || c.is_whitespace())
}

/// True when `name` is a valid per-channel limits key: like a channel name, but `*` and `>`
/// are allowed as whole tokens, with `>` only as the last token.
pub fn is_valid_channel_limits_key(name: &str) -> bool {
    if name.is_empty() || name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return false;
    }
    let tokens: Vec<&str> = name.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.chars().any(|c| c == '/' || c.is_whitespace()) {
            return false;
        }
        if t.contains('*') && *t != "*" {
            return false;
        }
        if t.contains('>') && (*t != ">" || i != tokens.len() - 1) {
            return false;
        }
    }
    true
}

/// True when `name` may be used as the durable name of a durable queue subscription
/// (it must not contain `:`).
pub fn is_valid_durable_queue_name(name: &str) -> bool {
    !name.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        for ok in ["a", "A-b_9", "-", "_"] {
            assert!(is_valid_client_id(ok), "{ok}");
        }
        for bad in ["", "a b", "a.b", "é", "a*", "a/b"] {
            assert!(!is_valid_client_id(bad), "{bad}");
        }
    }

    #[test]
    fn channels() {
        for ok in ["a", "a.b.c", "Foo-Bar_1", "x:y", "ü"] {
            assert!(is_valid_channel(ok), "{ok}");
        }
        for bad in [
            "", ".", "a.", ".a", "a..b", "a/b", "a.*", "a.>", "*", ">", "a b", "a\tb", "fo*o",
        ] {
            assert!(!is_valid_channel(bad), "{bad}");
        }
    }

    #[test]
    fn limits_keys() {
        for ok in ["foo", "foo.*", "foo.>", "*.bar", ">", "*.*"] {
            assert!(is_valid_channel_limits_key(ok), "{ok}");
        }
        for bad in ["", "foo.>.bar", "fo*", "f>", "a..b", "a/b"] {
            assert!(!is_valid_channel_limits_key(bad), "{bad}");
        }
    }

    #[test]
    fn durable_queue_names() {
        assert!(is_valid_durable_queue_name("dur"));
        assert!(!is_valid_durable_queue_name("dur:x"));
    }
}
