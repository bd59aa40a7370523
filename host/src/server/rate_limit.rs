//! Per-client request rate limiting: a token bucket per client IP address.
//!
//! A client may send `burst` requests at once and `requests_per_second`
//! sustained; beyond that it is answered 429 with `Retry-After` (whole
//! seconds until a request would be accepted). The table of clients is
//! bounded: idle clients (full buckets) are forgotten when it grows large, so
//! many addresses cannot exhaust memory. Nothing here blocks or waits: the
//! Python original deadlocked after ~100 requests from one address; this
//! answers every request at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clients remembered before idle ones are dropped.
const MAX_CLIENTS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per client address.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// `rate` requests per second sustained, `burst` at once.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate: rate.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `client`'s bucket, or says how long to wait.
    ///
    /// # Errors
    /// The time until a request would be accepted.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut clients) = self.clients.lock() else {
            return Ok(());
        };
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let (rate, burst) = (self.rate, self.burst);
            clients.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
            if clients.len() >= MAX_CLIENTS {
                // Every client is busy: forget the longest idle half.
                let mut ats: Vec<Instant> = clients.values().map(|b| b.at).collect();
                ats.sort_unstable();
                if let Some(cut) = ats.get(ats.len() / 2).copied() {
                    clients.retain(|_, b| b.at > cut);
                }
            }
        }
        let bucket = clients.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(10.0, 5);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            rl.check(ip, t0).unwrap();
        }
        let wait = rl.check(ip, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert_eq!(retry_after_secs(wait), 1);
        assert!(rl.check(other, t0).is_ok(), "per client");
        assert!(
            rl.check(ip, t0 + Duration::from_millis(150)).is_ok(),
            "refilled"
        );
    }
}
