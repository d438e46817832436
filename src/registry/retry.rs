//! How long to wait between attempts. What is worth retrying is decided in [`super::error`]; where an
//! upload resumes is decided in [`super::ops`].

use std::time::Duration;

/// Retry policy for one push.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Further attempts after the first.
    pub retries: u32,
    /// First backoff; doubles each attempt, with ±50 % jitter, capped at `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { retries: 4, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(20) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based); `Retry-After` wins when the server sent one.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(Duration::from_secs(60));
        }
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        let jitter: f64 = rand::random_range(0.5..1.5);
        exp.mul_f64(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_and_honour_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 0..6 {
            let d = p.delay(attempt, None);
            let base = p.base_delay.saturating_mul(1 << attempt).min(p.max_delay);
            assert!(d >= base.mul_f64(0.5) && d <= base.mul_f64(1.5), "attempt {attempt}: {d:?}");
        }
        assert_eq!(p.delay(0, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(p.delay(0, Some(Duration::from_secs(600))), Duration::from_secs(60), "Retry-After is capped");
    }
}
