//! Prometheus metrics with the guide's names, counted as requests are
//! answered (decisions once their ledger entries are durable, whether or not
//! the client still waits), rendered in the text exposition format (0.0.4).
//!
//! | name | type | what |
//! |---|---|---|
//! | `lexecon_decision_requests_total` | counter | decision requests received (each item of a batch counts; a batch body that cannot be read, as one) |
//! | `lexecon_decision_requests_allowed` | counter | decisions that allowed |
//! | `lexecon_decision_requests_denied` | counter | decisions that did not allow (deny and escalate) |
//! | `lexecon_decision_requests_escalated` | counter | of those, escalations (human confirmation required) |
//! | `lexecon_decision_requests_invalid` | counter | requests refused as invalid (400/413/422) |
//! | `lexecon_decision_requests_failed` | counter | requests answered 503 (storage, signer: fail closed) |
//! | `lexecon_decision_latency_seconds` | histogram | one observation per decision asked of the engine: the time to answer its `/decide` or `/decide/batch` call (from the request's start: receiving, queueing and fsync included; each decision of a batch observes the batch's time); a request refused before the engine (malformed, invalid, a body that never arrived) is no decision and is not counted |
//! | `lexecon_ledger_entries_total` | counter | entries in the ledger |
//! | `lexecon_ledger_verification_failures` | counter | chain verifications (startup, periodic, `GET /ledger/verify`) that found a broken chain |
//! | `lexecon_active_tokens` | gauge | capability tokens issued by this process and not yet expired |
//! | `lexecon_http_requests_rate_limited_total` | counter | requests answered 429 |
//! | `lexecon_http_requests_unauthorized_total` | counter | requests answered 401 |
//! | `lexecon_uptime_seconds` | gauge | seconds since the server started |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lexecon_core::{Decision, Verdict};

/// Upper bounds of the latency histogram's buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; LATENCY_BUCKETS.len()],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        self.observe_n(d, 1);
    }

    /// Records `n` observations of `d` (the decisions of one batch, each of
    /// which waited `d`).
    pub fn observe_n(&self, d: Duration, n: u64) {
        let secs = d.as_secs_f64();
        if let Some(c) = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .and_then(|i| self.counts.get(i))
        {
            c.fetch_add(n, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos())
                .unwrap_or(u64::MAX)
                .saturating_mul(n),
            Ordering::Relaxed,
        );
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Capability tokens issued and not yet expired, counted per expiry second.
#[derive(Debug, Default)]
pub struct ActiveTokens {
    by_expiry: Mutex<BTreeMap<u64, u64>>,
}

impl ActiveTokens {
    /// A token expiring at `expires_at` (Unix seconds) was issued.
    pub fn issued(&self, expires_at: u64) {
        if let Ok(mut m) = self.by_expiry.lock() {
            *m.entry(expires_at).or_insert(0) += 1;
        }
    }

    /// Tokens still valid at `now_s`.
    pub fn active(&self, now_s: u64) -> u64 {
        let Ok(mut m) = self.by_expiry.lock() else {
            return 0;
        };
        let live = m.split_off(&(now_s + 1));
        *m = live;
        m.values().sum()
    }
}

/// Every metric the server exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `lexecon_decision_requests_total`.
    pub requests_total: AtomicU64,
    /// `lexecon_decision_requests_allowed`.
    pub allowed: AtomicU64,
    /// `lexecon_decision_requests_denied`.
    pub denied: AtomicU64,
    /// `lexecon_decision_requests_escalated`.
    pub escalated: AtomicU64,
    /// `lexecon_decision_requests_invalid`.
    pub invalid: AtomicU64,
    /// `lexecon_decision_requests_failed`.
    pub failed: AtomicU64,
    /// `lexecon_decision_latency_seconds`.
    pub latency: Histogram,
    /// `lexecon_ledger_verification_failures`.
    pub verification_failures: AtomicU64,
    /// `lexecon_active_tokens`.
    pub tokens: ActiveTokens,
    /// `lexecon_http_requests_rate_limited_total`.
    pub rate_limited: AtomicU64,
    /// `lexecon_http_requests_unauthorized_total`.
    pub unauthorized: AtomicU64,
}

impl Metrics {
    /// Counts one durable decision: allowed or denied (and escalated), and
    /// its token. The engine worker calls it for every decision whose ledger
    /// entry is durable, before answering its caller, so a decision whose
    /// client went away before the answer is counted too.
    pub fn decided(&self, d: &Decision) {
        if d.allowed {
            inc(&self.allowed);
        } else {
            inc(&self.denied);
            if d.decision == Verdict::Escalate {
                inc(&self.escalated);
            }
        }
        if let Some(t) = &d.capability_token {
            self.tokens.issued(t.claims.expires_at);
        }
        tracing::debug!(
            decision_id = %d.decision_id,
            request_id = %d.request_id,
            allowed = d.allowed,
            decision = d.decision.as_str(),
            ledger_index = d.ledger_index,
            "decided"
        );
    }
}

/// Adds one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// The text exposition, given the ledger's length, the time and the uptime.
    pub fn render(&self, ledger_entries: u64, now_s: u64, uptime: Duration) -> String {
        let mut out = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            "lexecon_decision_requests_total",
            "Total decision requests",
            get(&self.requests_total),
        );
        counter(
            "lexecon_decision_requests_allowed",
            "Allowed decisions",
            get(&self.allowed),
        );
        counter(
            "lexecon_decision_requests_denied",
            "Denied decisions (deny and escalate)",
            get(&self.denied),
        );
        counter(
            "lexecon_decision_requests_escalated",
            "Decisions that require human confirmation",
            get(&self.escalated),
        );
        counter(
            "lexecon_decision_requests_invalid",
            "Decision requests refused as invalid",
            get(&self.invalid),
        );
        counter(
            "lexecon_decision_requests_failed",
            "Decision requests answered 503 (fail closed)",
            get(&self.failed),
        );
        counter(
            "lexecon_ledger_entries_total",
            "Total ledger entries",
            ledger_entries,
        );
        counter(
            "lexecon_ledger_verification_failures",
            "Ledger verification failures",
            get(&self.verification_failures),
        );
        counter(
            "lexecon_http_requests_rate_limited_total",
            "Requests answered 429",
            get(&self.rate_limited),
        );
        counter(
            "lexecon_http_requests_unauthorized_total",
            "Requests answered 401",
            get(&self.unauthorized),
        );
        let name = "lexecon_decision_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Decision latency\n# TYPE {name} histogram"
        );
        let mut cumulative = 0u64;
        for (bound, c) in LATENCY_BUCKETS.iter().zip(self.latency.counts.iter()) {
            cumulative += get(c);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.latency.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = get(&self.latency.sum_nanos) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        let _ = writeln!(
            out,
            "# HELP lexecon_active_tokens Number of active capability tokens\n# TYPE lexecon_active_tokens gauge\nlexecon_active_tokens {}",
            self.tokens.active(now_s)
        );
        let _ = writeln!(
            out,
            "# HELP lexecon_uptime_seconds Seconds since the server started\n# TYPE lexecon_uptime_seconds gauge\nlexecon_uptime_seconds {}",
            uptime.as_secs()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renders_the_guides_names() {
        let m = Metrics::default();
        inc(&m.requests_total);
        inc(&m.allowed);
        m.latency.observe(Duration::from_micros(300));
        m.latency.observe(Duration::from_secs(20));
        m.tokens.issued(100);
        m.tokens.issued(200);
        let text = m.render(7, 150, Duration::from_secs(3));
        for name in [
            "lexecon_decision_requests_total 1",
            "lexecon_decision_requests_allowed 1",
            "lexecon_decision_requests_denied 0",
            "lexecon_decision_latency_seconds_bucket{le=\"0.0005\"} 1",
            "lexecon_decision_latency_seconds_bucket{le=\"+Inf\"} 2",
            "lexecon_decision_latency_seconds_count 2",
            "lexecon_ledger_entries_total 7",
            "lexecon_ledger_verification_failures 0",
            "lexecon_active_tokens 1",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
