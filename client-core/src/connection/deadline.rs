//! Deadlines from options that may be "forever".

use std::time::Duration;

use tokio::time::Instant;

/// `wait` from now, saturating far in the future (an option like `Duration::MAX` means "wait
/// forever" and must not overflow the clock).
pub(crate) fn deadline_after(wait: Duration) -> Instant {
    deadline_from(Instant::now(), wait)
}

/// [`deadline_after`] from a clock reading taken before.
pub(crate) fn deadline_from(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_after_saturates() {
        let before = Instant::now();
        let far = deadline_after(Duration::MAX);
        assert!(far > before + Duration::from_secs(365 * 86_400));
        let soon = deadline_after(Duration::from_secs(1));
        assert!(soon >= before + Duration::from_secs(1) && soon < far);
    }
}
