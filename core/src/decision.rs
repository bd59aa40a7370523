//! Deciding one request against a policy: which relations and constraints
//! apply, and what they say.
//!
//! The rules, in order:
//! 1. No policy loaded → deny.
//! 2. Any applicable `forbids` → deny (a `forbids` always wins).
//! 3. Strict mode (the policy's, or the request's `policy_mode`) with no
//!    applicable `permits` → deny by default.
//! 4. Constraints in policy order, while the decision is still an allow:
//!    `require_human_confirmation` → escalate; `deny` → deny; `allow` lets it
//!    stand or applies `else_action`; `rate_limit` denies beyond `max_calls`
//!    allowed decisions in its sliding window. Nothing turns a denial into an
//!    allow.
//!
//! [`evaluate`] is pure: time and the rate-limit history are arguments.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::capability::CapabilityToken;
use crate::condition::{Facts, TermValue};
use crate::policy::{ConstraintAction, ElseAction, Mode, Policy, RatePer, RelationKind, TermKind};
use crate::request::DecisionRequest;
use crate::time::CivilTime;

/// The three outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Go ahead (a capability token comes with it).
    Permit,
    /// Do not.
    Deny,
    /// Not without a person's confirmation.
    Escalate,
}

impl Verdict {
    /// `permit`, `deny` or `escalate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Deny => "deny",
            Self::Escalate => "escalate",
        }
    }
}

/// A decision as returned to the caller (the guide's response fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The caller's id, or a generated `req_…`.
    pub request_id: String,
    /// Unique id of this decision (`dec_…`).
    pub decision_id: String,
    /// `true` only for [`Verdict::Permit`].
    pub allowed: bool,
    /// `permit`, `deny` or `escalate`.
    pub decision: Verdict,
    /// Why, naming the deciding relation or constraint.
    pub reason: String,
    /// Ids of every relation and constraint that applied.
    pub reasoning: Vec<String>,
    /// Hash of the active policy (`none` when no policy is loaded).
    pub policy_version_hash: String,
    /// SHA-256 of the canonical decision record (see `DESIGN.md`).
    pub decision_hash: String,
    /// Present only when allowed.
    pub capability_token: Option<CapabilityToken>,
    /// Hash of the ledger entry that records this decision.
    pub ledger_entry_hash: String,
    /// Index of that entry.
    pub ledger_index: u64,
    /// Base64url Ed25519 signature (see `DESIGN.md`, "Signatures").
    pub signature: String,
    /// When it was decided, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub timestamp: String,
}

impl Decision {
    /// Appends the decision's JSON, byte for byte what `serde_json` writes
    /// for it (fields in declaration order; a unit test checks it). Written
    /// by hand because every decision's answer is this text, in the npm
    /// package and the HTTP server alike.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use crate::canonical::{write_string as string, write_string_array, write_u64};
        out.extend_from_slice(b"{\"request_id\":");
        string(out, &self.request_id);
        out.extend_from_slice(b",\"decision_id\":");
        string(out, &self.decision_id);
        out.extend_from_slice(if self.allowed {
            b",\"allowed\":true,\"decision\":\""
        } else {
            b",\"allowed\":false,\"decision\":\""
        });
        out.extend_from_slice(self.decision.as_str().as_bytes());
        out.extend_from_slice(b"\",\"reason\":");
        string(out, &self.reason);
        out.extend_from_slice(b",\"reasoning\":");
        write_string_array(out, &self.reasoning);
        out.extend_from_slice(b",\"policy_version_hash\":");
        string(out, &self.policy_version_hash);
        out.extend_from_slice(b",\"decision_hash\":");
        string(out, &self.decision_hash);
        out.extend_from_slice(b",\"capability_token\":");
        match &self.capability_token {
            Some(t) => {
                // The claims' canonical JSON is their declaration order too;
                // `token` follows them (`#[serde(flatten)]`).
                t.claims.write_canonical(out);
                out.pop();
                out.extend_from_slice(b",\"token\":");
                string(out, &t.token);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"ledger_entry_hash\":");
        string(out, &self.ledger_entry_hash);
        out.extend_from_slice(b",\"ledger_index\":");
        write_u64(out, self.ledger_index);
        out.extend_from_slice(b",\"signature\":");
        string(out, &self.signature);
        out.extend_from_slice(b",\"timestamp\":");
        string(out, &self.timestamp);
        out.push(b'}');
    }
}

/// The request's names, resolved against the policy's terms (borrowed from
/// the policy and the request: resolving allocates nothing but the list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
// Fields in canonical (sorted) order: the ledger serialises this directly.
pub struct Resolved<'a> {
    /// Action term id, or `action:<tool>`.
    pub action: Cow<'a, str>,
    /// Actor term id, or the request's actor when no term matched.
    pub actor: &'a str,
    /// Data-class ids (the tool's, then the request's), unresolved names kept as given.
    pub data_classes: Vec<&'a str>,
    /// Tool term id, or the request's tool.
    pub tool: &'a str,
}

/// A rate-limit hit to count if the decision ends allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateHit {
    /// The constraint's name.
    pub constraint: String,
    /// The grouping key (actor id, tool id, user id, or `*`).
    pub key: String,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
    /// What applied.
    pub reasoning: Vec<String>,
    /// Resolved names.
    pub resolved: Resolved<'a>,
    /// Rate limits to count when allowed.
    pub rate_hits: Vec<RateHit>,
}

/// Sliding-window history of allowed decisions, per rate-limit constraint
/// and key.
#[derive(Debug, Clone, Default)]
pub struct RateWindows {
    /// Constraint name → grouping key → instants (ms), oldest first.
    hits: HashMap<String, HashMap<String, VecDeque<u64>>>,
}

impl RateWindows {
    /// Counts an allowed decision at `at_ms`.
    pub fn record(&mut self, hit: &RateHit, at_ms: u64) {
        let keys = match self.hits.get_mut(&hit.constraint) {
            Some(keys) => keys,
            None => self.hits.entry(hit.constraint.clone()).or_default(),
        };
        let q = match keys.get_mut(&hit.key) {
            Some(q) => q,
            None => keys.entry(hit.key.clone()).or_default(),
        };
        // Keep the queue ordered even if entries arrive slightly out of order.
        let pos = q.iter().rposition(|t| *t <= at_ms).map_or(0, |p| p + 1);
        q.insert(pos, at_ms);
    }

    /// Removes the latest count of `hit` (undo of a decision not committed).
    pub fn unrecord(&mut self, hit: &RateHit, at_ms: u64) {
        if let Some(q) = self.queue_mut(&hit.constraint, &hit.key)
            && let Some(pos) = q.iter().rposition(|t| *t == at_ms)
        {
            q.remove(pos);
        }
    }

    fn queue_mut(&mut self, constraint: &str, key: &str) -> Option<&mut VecDeque<u64>> {
        self.hits.get_mut(constraint)?.get_mut(key)
    }

    /// Forgets counts older than `horizon_ms` before `now_ms`.
    pub fn prune(&mut self, now_ms: u64, horizon_ms: u64) {
        let cutoff = now_ms.saturating_sub(horizon_ms);
        self.hits.retain(|_, keys| {
            keys.retain(|_, q| {
                while q.front().is_some_and(|t| *t <= cutoff) {
                    q.pop_front();
                }
                !q.is_empty()
            });
            !keys.is_empty()
        });
    }

    /// If `max` decisions are already counted in the window ending at
    /// `now_ms`, the instant (ms) at which one leaves the window.
    fn full_until(
        &self,
        constraint: &str,
        key: &str,
        now_ms: u64,
        window_ms: u64,
        max: u32,
    ) -> Option<u64> {
        let q = self.hits.get(constraint)?.get(key)?;
        let since = now_ms.saturating_sub(window_ms);
        // The `max` latest counts inside the window; the last of them is the
        // first to leave it.
        let (mut counted, mut leaves_first) = (0usize, now_ms);
        for t in q
            .iter()
            .rev()
            .take_while(|t| **t > since)
            .take(max as usize)
        {
            counted += 1;
            leaves_first = *t;
        }
        (counted >= max as usize).then(|| leaves_first + window_ms)
    }
}

/// `<prefix> <kind> `<id>`[: <description>]`, the reason that names the
/// relation or constraint that decided, written in one allocation.
fn named(prefix: &str, kind: &str, id: &str, description: Option<&str>) -> String {
    let extra = description.map_or(0, |d| d.len() + 2);
    let mut out = String::with_capacity(prefix.len() + kind.len() + id.len() + 4 + extra);
    for part in [prefix, " ", kind, " `", id, "`"] {
        out.push_str(part);
    }
    if let Some(d) = description {
        out.push_str(": ");
        out.push_str(d);
    }
    out
}

/// Decides `req` under `policy` at `now_ms`, given the rate-limit history.
pub fn evaluate<'a>(
    policy: Option<&'a Policy>,
    req: &'a DecisionRequest,
    now_ms: u64,
    rates: &RateWindows,
) -> Evaluation<'a> {
    let Some(policy) = policy else {
        return Evaluation {
            verdict: Verdict::Deny,
            reason: "denied: no policy is loaded, and Lexecon denies by default".into(),
            reasoning: Vec::new(),
            resolved: Resolved {
                actor: &req.actor,
                action: Cow::Owned(format!("action:{}", req.tool)),
                tool: &req.tool,
                data_classes: req.data_classes.iter().map(String::as_str).collect(),
            },
            rate_hits: Vec::new(),
        };
    };

    // Resolve names to terms, exactly (id or name, never a substring).
    let actor = policy.resolve(TermKind::Actor, &req.actor);
    let tool = policy.resolve(TermKind::Tool, &req.tool);
    let tool_term = tool.and_then(|t| policy.term(t));
    // `action:<tool>`, built only when the tool has no term to name its
    // action (kept for `resolved` if no action term matches it either).
    let raw_action = || format!("action:{}", req.tool);
    let (action, built_raw_action) = match tool_term {
        Some(t) => (t.tool_action, None),
        None => {
            let raw = raw_action();
            let action = policy
                .resolve(TermKind::Action, &raw)
                .or_else(|| policy.resolve(TermKind::Action, &req.tool));
            (action, Some(raw))
        }
    };
    let mut classes: Vec<usize> = tool_term
        .map(|t| t.tool_data_classes.clone())
        .unwrap_or_default();
    let mut unresolved: Vec<&str> = Vec::new();
    for c in &req.data_classes {
        match policy.resolve(TermKind::DataClass, c) {
            Some(i) if !classes.contains(&i) => classes.push(i),
            Some(_) => {}
            None => unresolved.push(c),
        }
    }
    let term_value = |i: Option<usize>| -> Option<TermValue<'_>> {
        i.and_then(|i| policy.term(i)).map(|t| TermValue {
            id: &t.id,
            name: &t.name,
        })
    };
    let actor_v = term_value(actor).unwrap_or(TermValue {
        id: &req.actor,
        name: &req.actor,
    });
    let tool_v = term_value(tool).unwrap_or(TermValue {
        id: &req.tool,
        name: &req.tool,
    });
    let action_term = term_value(action);
    let mut class_vs: Vec<TermValue<'_>> = classes
        .iter()
        .filter_map(|c| term_value(Some(*c)))
        .collect();
    class_vs.extend(unresolved.iter().map(|c| TermValue { id: c, name: c }));
    let resolved = Resolved {
        actor: actor_v.id,
        action: match action_term {
            Some(t) => Cow::Borrowed(t.id),
            None => Cow::Owned(built_raw_action.unwrap_or_else(raw_action)),
        },
        tool: tool_v.id,
        data_classes: class_vs.iter().map(|c| c.id).collect(),
    };
    let action_v = action_term.unwrap_or(TermValue {
        id: &resolved.action,
        name: &req.tool,
    });

    // Relations.
    let mut reasoning = Vec::with_capacity(4);
    let mut first_permit = None;
    let mut first_forbid = None;
    // A permit that matched but for its conditions: named in a denial.
    let mut unmet_permit = None;
    // The data classes the applying permits cover: every class the call
    // touches must be permitted (a permit for `data:public` does not let a
    // call that also touches `data:pii` through); a permit without an object
    // covers them all.
    let mut covers_all = false;
    let mut covered: Vec<usize> = Vec::new();
    for i in policy.candidates(actor, action, &classes) {
        let Some(r) = policy.relations().get(i as usize) else {
            continue;
        };
        if !r.conditions.iter().all(|c| c.holds(&req.context)) {
            if r.kind == RelationKind::Permits && unmet_permit.is_none() {
                unmet_permit = Some(r);
            }
            continue;
        }
        reasoning.push(r.id.clone());
        if r.kind == RelationKind::Permits {
            match r.object {
                None => covers_all = true,
                Some(c) => covered.push(c),
            }
        }
        match r.kind {
            RelationKind::Forbids if first_forbid.is_none() => first_forbid = Some(r),
            RelationKind::Permits if first_permit.is_none() => first_permit = Some(r),
            _ => {}
        }
    }
    // The first class no applying permit covers (terms in order, then the
    // request's classes that no term defines: only an object-less permit
    // covers those).
    let uncovered = if covers_all || first_permit.is_none() {
        None
    } else {
        classes
            .iter()
            .zip(&class_vs)
            .find(|(c, _)| !covered.contains(c))
            .map(|(_, v)| v.id)
            .or_else(|| class_vs.get(classes.len()).map(|v| v.id))
    };
    // The verdict, why, and the rate limits to count; every early exit is a
    // `break 'outcome`.
    let (verdict, reason, rate_hits) = 'outcome: {
        if let Some(r) = first_forbid {
            break 'outcome (
                Verdict::Deny,
                named("forbidden by", "relation", &r.id, r.description.as_deref()),
                Vec::new(),
            );
        }
        let strict = policy.mode == Mode::Strict || req.policy_mode == Some(Mode::Strict);
        if strict && let Some(class) = uncovered {
            break 'outcome (
                Verdict::Deny,
                format!(
                    "denied by default: no relation permits `{}` to `{}` on `{class}`, which this call touches (strict mode)",
                    resolved.actor, resolved.action
                ),
                Vec::new(),
            );
        }
        let mut reason = match first_permit {
            Some(r) => named("permitted by", "relation", &r.id, r.description.as_deref()),
            None if strict => {
                let reason = match unmet_permit {
                    Some(r) => format!(
                        "denied by default: relation `{}` permits `{}` to `{}` only when {}, which the request's context does not satisfy (strict mode)",
                        r.id,
                        resolved.actor,
                        resolved.action,
                        r.conditions
                            .iter()
                            .map(|c| format!("`{c}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                    None => format!(
                        "denied by default: no relation permits `{}` to `{}` (strict mode)",
                        resolved.actor, resolved.action
                    ),
                };
                break 'outcome (Verdict::Deny, reason, Vec::new());
            }
            None => "allowed: permissive mode and no relation forbids it".to_string(),
        };

        // Constraints.
        let facts = Facts {
            actor: actor_v,
            tool: tool_v,
            action: action_v,
            proposed_action: &req.proposed_action,
            user_intent: &req.user_intent,
            risk_level: req.risk_level,
            data_classes: &class_vs,
            context: &req.context,
            time: CivilTime::from_unix_ms(now_ms),
        };
        let mut rate_hits = Vec::new();
        for c in policy.constraints() {
            let holds = c.condition.holds(&facts);
            let described =
                |prefix: &str| named(prefix, "constraint", &c.name, c.description.as_deref());
            let fallback = if holds { None } else { c.else_action };
            match (c.action, holds) {
                (ConstraintAction::RequireHumanConfirmation, true) => {
                    reasoning.push(c.name.clone());
                    break 'outcome (
                        Verdict::Escalate,
                        described("human confirmation required by"),
                        Vec::new(),
                    );
                }
                (ConstraintAction::Deny, true) => {
                    reasoning.push(c.name.clone());
                    break 'outcome (Verdict::Deny, described("denied by"), Vec::new());
                }
                (ConstraintAction::Allow, true) => {
                    reasoning.push(c.name.clone());
                    for part in ["; allowed by constraint `", &c.name, "`"] {
                        reason.push_str(part);
                    }
                }
                (ConstraintAction::RateLimit, true) => {
                    reasoning.push(c.name.clone());
                    let Some(limit) = c.rate_limit else { continue };
                    let key = match limit.per {
                        None => "*".to_string(),
                        Some(RatePer::Actor) => resolved.actor.to_string(),
                        Some(RatePer::Tool) => resolved.tool.to_string(),
                        Some(RatePer::User) => match req.context.get("user_id") {
                            Some(Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                            None => String::new(),
                        },
                    };
                    if let Some(until) =
                        rates.full_until(&c.name, &key, now_ms, limit.window_ms, limit.max_calls)
                    {
                        let retry_s = until.saturating_sub(now_ms).div_ceil(1000).max(1);
                        break 'outcome (
                            Verdict::Deny,
                            format!(
                                "rate limit exceeded: constraint `{}` allows {} calls per {} s; retry after {retry_s} s",
                                c.name,
                                limit.max_calls,
                                limit.window_ms / 1000
                            ),
                            Vec::new(),
                        );
                    }
                    rate_hits.push(RateHit {
                        constraint: c.name.clone(),
                        key,
                    });
                }
                (ConstraintAction::Allow | ConstraintAction::Deny, false) => match fallback {
                    Some(ElseAction::Deny) => {
                        reasoning.push(c.name.clone());
                        break 'outcome (
                            Verdict::Deny,
                            format!(
                                "denied by constraint `{}`: its condition does not hold and its else_action is deny",
                                c.name
                            ),
                            Vec::new(),
                        );
                    }
                    Some(ElseAction::RequireHumanConfirmation) => {
                        reasoning.push(c.name.clone());
                        break 'outcome (
                            Verdict::Escalate,
                            format!(
                                "human confirmation required by constraint `{}`: its condition does not hold",
                                c.name
                            ),
                            Vec::new(),
                        );
                    }
                    Some(ElseAction::Allow) | None => {}
                },
                (
                    ConstraintAction::RequireHumanConfirmation | ConstraintAction::RateLimit,
                    false,
                ) => {}
            }
        }
        (Verdict::Permit, reason, rate_hits)
    };
    Evaluation {
        verdict,
        reason,
        reasoning,
        resolved,
        rate_hits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = include_str!("../../examples/policies/ai_assistant.json");
    const NOW: u64 = 1_795_525_681_123; // Tue 2026-11-24 13:08 UTC

    /// What the tests look at in an evaluation, owned (an [`Evaluation`]
    /// borrows the request, which the tests build inline).
    struct Outcome {
        verdict: Verdict,
        reason: String,
        reasoning: Vec<String>,
        rate_hits: Vec<RateHit>,
    }

    fn decide(p: &Policy, req: &DecisionRequest) -> Outcome {
        let e = evaluate(Some(p), req, NOW, &RateWindows::default());
        Outcome {
            verdict: e.verdict,
            reason: e.reason,
            reasoning: e.reasoning,
            rate_hits: e.rate_hits,
        }
    }

    #[test]
    fn the_guides_test_governance_cases() {
        let p = Policy::parse(GUIDE).unwrap();
        let ok = decide(
            &p,
            &DecisionRequest::new("model", "Execute web_search", "web_search", "Research", 1),
        );
        assert_eq!(ok.verdict, Verdict::Permit, "{}", ok.reason);
        assert!(ok.reason.contains("relations[0]"));
        assert_eq!(ok.rate_hits.len(), 1);

        let no = decide(
            &p,
            &DecisionRequest::new(
                "model",
                "Execute system_command",
                "execute",
                "Run command",
                5,
            ),
        );
        assert_eq!(no.verdict, Verdict::Deny);
        assert!(
            no.reason.to_lowercase().contains("forbidden"),
            "{}",
            no.reason
        );

        let risky = decide(
            &p,
            &DecisionRequest::new(
                "model",
                "Write to database",
                "database_write",
                "Update records",
                4,
            ),
        );
        assert_ne!(risky.verdict, Verdict::Permit);
    }

    #[test]
    fn high_risk_escalates() {
        let p = Policy::parse(GUIDE).unwrap();
        let e = decide(
            &p,
            &DecisionRequest::new("model", "Search", "web_search", "Research", 4),
        );
        assert_eq!(e.verdict, Verdict::Escalate);
        assert!(e.reason.contains("confirmation"));
        assert!(
            e.reasoning
                .contains(&"high_risk_requires_approval".to_string())
        );
    }

    #[test]
    fn conditions_gate_relations() {
        let p = Policy::parse(GUIDE).unwrap();
        let mut r = DecisionRequest::new("model", "Read wiki", "read_wiki", "Answer", 1);
        assert_eq!(decide(&p, &r).verdict, Verdict::Deny);
        r.context.insert("user_approved".into(), Value::Bool(true));
        assert_eq!(decide(&p, &r).verdict, Verdict::Permit);
        r.context
            .insert("user_approved".into(), Value::from("true"));
        assert_eq!(
            decide(&p, &r).verdict,
            Verdict::Deny,
            "only the JSON value true counts"
        );
    }

    #[test]
    fn matching_is_exact_never_substring() {
        let p = Policy::parse(GUIDE).unwrap();
        for actor in ["us", "mode", "Model", "actor:mod", "model "] {
            let e = decide(
                &p,
                &DecisionRequest::new(actor, "Search", "web_search", "Research", 1),
            );
            assert_eq!(e.verdict, Verdict::Deny, "{actor}");
        }
        let e = decide(
            &p,
            &DecisionRequest::new("actor:model", "Search", "tool:web_search", "Research", 1),
        );
        assert_eq!(e.verdict, Verdict::Permit);
    }

    #[test]
    fn request_cannot_loosen_mode() {
        let text = r#"{"name": "p", "mode": "strict", "relations": []}"#;
        let p = Policy::parse(text).unwrap();
        let mut r = DecisionRequest::new("model", "x", "x", "x", 1);
        r.policy_mode = Some(Mode::Permissive);
        assert_eq!(decide(&p, &r).verdict, Verdict::Deny);
        let text = r#"{"name": "p", "mode": "permissive", "relations": []}"#;
        let p = Policy::parse(text).unwrap();
        assert_eq!(decide(&p, &r).verdict, Verdict::Permit);
        r.policy_mode = Some(Mode::Strict);
        assert_eq!(decide(&p, &r).verdict, Verdict::Deny);
    }

    #[test]
    fn rate_limit_counts_allowed_decisions_in_a_sliding_window() {
        let text = r#"{"name": "p", "mode": "permissive", "constraints": [{"name": "rl", "condition": "tool == 'web_search'",
            "action": "rate_limit", "parameters": {"max_calls": 2, "window_seconds": 60, "per": "user"}}]}"#;
        let p = Policy::parse(text).unwrap();
        let mut rates = RateWindows::default();
        let mut r = DecisionRequest::new("model", "s", "web_search", "i", 1);
        r.context.insert("user_id".into(), Value::from("u1"));
        for t in [0u64, 10_000] {
            let e = evaluate(Some(&p), &r, NOW + t, &rates);
            assert_eq!(e.verdict, Verdict::Permit);
            for h in &e.rate_hits {
                rates.record(h, NOW + t);
            }
        }
        let e = evaluate(Some(&p), &r, NOW + 20_000, &rates);
        assert_eq!(e.verdict, Verdict::Deny);
        assert!(
            e.reason.contains("rate limit") && e.reason.contains("retry after 40 s"),
            "{}",
            e.reason
        );
        r.context.insert("user_id".into(), Value::from("u2"));
        assert_eq!(
            evaluate(Some(&p), &r, NOW + 20_000, &rates).verdict,
            Verdict::Permit,
            "per user"
        );
        r.context.insert("user_id".into(), Value::from("u1"));
        assert_eq!(
            evaluate(Some(&p), &r, NOW + 60_001, &rates).verdict,
            Verdict::Permit,
            "window slid"
        );
    }

    #[test]
    fn business_hours_else_deny() {
        let text = include_str!("../../examples/policies/time_based.json");
        let p = Policy::parse(text).unwrap();
        // Time-based pattern alone has no relations: strict mode denies first.
        let r = DecisionRequest::new("model", "x", "x", "x", 1);
        assert_eq!(decide(&p, &r).verdict, Verdict::Deny);
        let text = r#"{"name": "p", "mode": "permissive", "constraints": [{"name": "business_hours_only",
            "condition": "time.hour >= 9 and time.hour <= 17", "action": "allow", "else_action": "deny"}]}"#;
        let p = Policy::parse(text).unwrap();
        assert_eq!(
            evaluate(Some(&p), &r, NOW, &RateWindows::default()).verdict,
            Verdict::Permit
        );
        let night = NOW + 10 * 3_600_000; // 23:08
        let e = evaluate(Some(&p), &r, night, &RateWindows::default());
        assert_eq!(e.verdict, Verdict::Deny);
        assert!(e.reason.contains("business_hours_only"));
    }

    #[test]
    fn no_policy_denies() {
        let req = DecisionRequest::new("model", "x", "x", "x", 1);
        let e = evaluate(None, &req, NOW, &RateWindows::default());
        assert_eq!(e.verdict, Verdict::Deny);
    }
}

#[cfg(test)]
mod write_json_tests {
    use super::*;
    use crate::canonical::escapable_text as text;
    use crate::capability::TokenClaims;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hand_written_decision_is_what_serde_json_writes(
            strs in proptest::collection::vec(text(), 18),
            reasoning in proptest::collection::vec(text(), 0..4),
            allowed: bool,
            verdict in prop_oneof![Just(Verdict::Permit), Just(Verdict::Deny), Just(Verdict::Escalate)],
            token in proptest::option::of((any::<u64>(), any::<u64>())),
            ledger_index: u64,
        ) {
            let s = |i: usize| strs.get(i).cloned().unwrap_or_default();
            let decision = Decision {
                request_id: s(0),
                decision_id: s(1),
                allowed,
                decision: verdict,
                reason: s(2),
                reasoning,
                policy_version_hash: s(3),
                decision_hash: s(4),
                capability_token: token.map(|(issued_at, expires_at)| CapabilityToken {
                    claims: TokenClaims {
                        action: s(5),
                        actor: s(6),
                        decision_hash: s(7),
                        expires_at,
                        issued_at,
                        key_id: s(8),
                        node_id: s(9),
                        policy_version_hash: s(10),
                        token_id: s(11),
                        tool: s(12),
                    },
                    token: s(13),
                }),
                ledger_entry_hash: s(14),
                ledger_index,
                signature: s(15),
                timestamp: s(16),
            };
            let mut ours = b"prefix".to_vec();
            decision.write_json(&mut ours);
            let mut theirs = b"prefix".to_vec();
            theirs.extend(serde_json::to_vec(&decision).unwrap());
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }
    }
}
