//! Property tests for the engine's invariants.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use lexecon_core::decision::{RateWindows, Verdict, evaluate};
use lexecon_core::engine::{Engine, Governor, NodeConfig};
use lexecon_core::ledger::verify_chain;
use lexecon_core::time::FixedClock;
use lexecon_core::{
    DecisionRequest, Ed25519Signer, Expect, MemoryStorage, Policy, SeededRandom, Signer, Storage,
    TokenClaims,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: u64 = 1_795_525_681_123;

#[derive(Debug, Clone)]
struct Rel {
    forbids: bool,
    subject: Option<u8>,
    action: Option<u8>,
    object: Option<Option<u8>>, // None: absent; Some(None): "*"
    conditions: Vec<u8>,
}

fn rel() -> impl Strategy<Value = Rel> {
    (
        any::<bool>(),
        proptest::option::of(0u8..3),
        proptest::option::of(0u8..3),
        proptest::option::of(proptest::option::of(0u8..3)),
        proptest::collection::vec(0u8..2, 0..2),
    )
        .prop_map(|(forbids, subject, action, object, conditions)| Rel {
            forbids,
            subject,
            action,
            object,
            conditions,
        })
}

fn policy_json(mode: &str, rels: &[Rel]) -> String {
    let mut terms = Vec::new();
    for i in 0..3 {
        terms.push(json!({"id": format!("actor:a{i}"), "type": "actor", "name": format!("a{i}")}));
        terms
            .push(json!({"id": format!("action:x{i}"), "type": "action", "name": format!("x{i}")}));
        terms.push(
            json!({"id": format!("data:d{i}"), "type": "data_class", "name": format!("d{i}")}),
        );
    }
    let relations: Vec<Value> = rels
        .iter()
        .map(|r| {
            let mut v = json!({
                "type": if r.forbids { "forbids" } else { "permits" },
                "subject": r.subject.map_or("*".to_string(), |s| format!("actor:a{s}")),
                "action": r.action.map_or("*".to_string(), |a| format!("action:x{a}")),
                "conditions": r.conditions.iter().map(|c| format!("c{c}")).collect::<Vec<_>>(),
            });
            if let Some(o) = r.object {
                v["object"] = json!(o.map_or("*".to_string(), |o| format!("data:d{o}")));
            }
            v
        })
        .collect();
    json!({"name": "prop", "mode": mode, "terms": terms, "relations": relations}).to_string()
}

#[derive(Debug, Clone)]
struct Req {
    actor: u8, // 3 = unknown
    action: u8,
    classes: Vec<u8>,
    flags: Vec<bool>,
}

fn req() -> impl Strategy<Value = Req> {
    (
        0u8..4,
        0u8..4,
        proptest::collection::vec(0u8..3, 0..3),
        proptest::collection::vec(any::<bool>(), 2),
    )
        .prop_map(|(actor, action, classes, flags)| Req {
            actor,
            action,
            classes,
            flags,
        })
}

fn to_request(r: &Req) -> DecisionRequest {
    let mut d = DecisionRequest::new(
        &format!("a{}", r.actor),
        "p",
        &format!("x{}", r.action),
        "i",
        1,
    );
    d.data_classes = r.classes.iter().map(|c| format!("d{c}")).collect();
    for (i, f) in r.flags.iter().enumerate() {
        d.context.insert(format!("c{i}"), json!(*f));
    }
    d
}

/// The reference: scan every relation.
fn applies(rel: &Rel, r: &Req) -> bool {
    rel.subject.is_none_or(|s| s == r.actor)
        && rel.action.is_none_or(|a| a == r.action)
        && match rel.object {
            None | Some(None) => true,
            Some(Some(o)) => r.classes.contains(&o),
        }
        && rel.conditions.iter().all(|c| r.flags[*c as usize])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn forbid_always_beats_permit(rels in proptest::collection::vec(rel(), 0..12), r in req(), strict in any::<bool>()) {
        let p = Policy::parse(&policy_json(if strict { "strict" } else { "permissive" }, &rels)).unwrap();
        let req = to_request(&r);
        let e = evaluate(Some(&p), &req, NOW, &RateWindows::default());
        let forbidden = rels.iter().any(|x| x.forbids && applies(x, &r));
        // Permitted: some permit applies, and the applying permits cover
        // every data class the call touches (one without an object covers all).
        let permits: Vec<&Rel> = rels.iter().filter(|x| !x.forbids && applies(x, &r)).collect();
        let permitted = !permits.is_empty()
            && (permits.iter().any(|x| matches!(x.object, None | Some(None)))
                || r.classes.iter().all(|c| permits.iter().any(|x| x.object == Some(Some(*c)))));
        if forbidden {
            prop_assert_eq!(e.verdict, Verdict::Deny);
            prop_assert!(e.reason.contains("forbidden"));
        } else if strict && !permitted {
            prop_assert_eq!(e.verdict, Verdict::Deny, "strict never allows what nothing permits");
        } else {
            prop_assert_eq!(e.verdict, Verdict::Permit);
        }
        // The index finds exactly what a full scan finds, in policy order.
        let want: Vec<String> = rels.iter().enumerate().filter(|(_, x)| applies(x, &r)).map(|(i, _)| format!("relations[{i}]")).collect();
        prop_assert_eq!(e.reasoning, want);
    }

    #[test]
    fn any_single_byte_change_is_found_at_that_entry(entry in 0usize..4, pos in any::<prop::sample::Index>(), delta in 1u8..=255) {
        let mut gov = Governor::open(
            Engine::new(NodeConfig::default(), Box::new(Ed25519Signer::from_seed(&[3; 32])), Box::new(FixedClock(NOW)), Box::new(SeededRandom::new(b"p"))),
            MemoryStorage::new(),
        ).unwrap();
        gov.load_policy(include_str!("../../examples/policies/ai_assistant.json")).unwrap();
        for tool in ["web_search", "execute", "read_wiki"] {
            gov.decide(&DecisionRequest::new("model", "p", tool, "i", 1)).unwrap();
        }
        let storage = gov.storage();
        let mut entries: Vec<Vec<u8>> = storage.get_range(0, 4).unwrap();
        let bytes = &mut entries[entry];
        let at = pos.index(bytes.len());
        bytes[at] = bytes[at].wrapping_add(delta);
        let report = verify_chain(entries.iter().map(Vec::as_slice));
        prop_assert!(!report.valid);
        prop_assert_eq!(report.first_invalid, Some(entry as u64));
    }

    #[test]
    fn a_token_with_any_changed_claim_fails(field in 0usize..10, text in "[a-z0-9]{1,8}", n in 1u64..100_000) {
        let key = Ed25519Signer::from_seed(&[5; 32]);
        let claims = TokenClaims {
            token_id: "tok_1".into(), actor: "model".into(), tool: "web_search".into(), action: "action:read".into(),
            decision_hash: "ab".repeat(32), policy_version_hash: "cd".repeat(32), issued_at: 1000, expires_at: 1300,
            key_id: key.key_id(), node_id: "n".into(),
        };
        let sig = key.sign(&claims.signing_message().unwrap()).unwrap();
        let mut forged = claims.clone();
        match field {
            0 => forged.token_id.push_str(&text),
            1 => forged.actor.push_str(&text),
            2 => forged.tool.push_str(&text),
            3 => forged.action.push_str(&text),
            4 => forged.decision_hash.push_str(&text),
            5 => forged.policy_version_hash.push_str(&text),
            6 => forged.issued_at += n,
            7 => forged.expires_at += n,
            8 => forged.key_id.push_str(&text),
            _ => forged.node_id.push_str(&text),
        }
        let token = forged.encode(&sig).unwrap();
        prop_assert!(lexecon_core::verify_token(&token, &key.public_key(), 1100, Expect::default()).is_err());
        // And the untouched token still verifies.
        prop_assert!(lexecon_core::verify_token(&claims.encode(&sig).unwrap(), &key.public_key(), 1100, Expect::default()).is_ok());
    }
}
