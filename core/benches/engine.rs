#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Criterion benches for the engine's figures (README, "Performance").
//!
//! `cargo bench -p lexecon-core --bench engine`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lexecon_core::decision::{RateWindows, evaluate};
use lexecon_core::engine::{Engine, Governor, NodeConfig};
use lexecon_core::ledger::{
    EntryKind, GENESIS_HASH, build_entry_value, verify_chain, verify_chain_parallel,
};
use lexecon_core::time::FixedClock;
use lexecon_core::{
    DecisionRequest, Ed25519Signer, Expect, MemoryStorage, Policy, SeededRandom, Signer,
};
use serde_json::json;

const NOW: u64 = 1_795_525_681_123;

/// A strict policy with `n` relations over `n / 2` actors; the request
/// matches exactly one permit.
fn policy_with(n: usize) -> String {
    let actors = (n / 2).max(1);
    let mut terms = vec![
        json!({"id": "action:read", "type": "action", "name": "read"}),
        json!({"id": "action:write", "type": "action", "name": "write"}),
        json!({"id": "data:public", "type": "data_class", "name": "public"}),
        json!({"id": "tool:web_search", "type": "tool", "name": "web_search", "action": "action:read", "data_classes": ["data:public"]}),
    ];
    let mut relations = Vec::new();
    for i in 0..actors {
        terms.push(json!({"id": format!("actor:a{i}"), "type": "actor", "name": format!("a{i}")}));
    }
    for i in 0..n {
        let kind = if i % 2 == 0 { "permits" } else { "forbids" };
        let action = if i % 2 == 0 {
            "action:read"
        } else {
            "action:write"
        };
        relations.push(json!({"type": kind, "subject": format!("actor:a{}", (i / 2) % actors), "action": action, "object": "data:public"}));
    }
    json!({"name": format!("bench-{n}"), "mode": "strict", "terms": terms, "relations": relations})
        .to_string()
}

fn request() -> DecisionRequest {
    DecisionRequest::new("a0", "Execute web_search", "web_search", "Research", 1)
}

fn engine() -> Engine {
    Engine::new(
        NodeConfig::default(),
        Box::new(Ed25519Signer::from_seed(&[1; 32])),
        Box::new(FixedClock(NOW)),
        Box::new(SeededRandom::new(b"bench")),
    )
}

fn bench_evaluate(c: &mut Criterion) {
    let mut g = c.benchmark_group("evaluate");
    for n in [10usize, 100, 10_000] {
        let policy = Policy::parse(&policy_with(n)).unwrap();
        let req = request();
        let rates = RateWindows::default();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| evaluate(Some(black_box(&policy)), black_box(&req), NOW, &rates))
        });
    }
    g.finish();
}

fn bench_decide(c: &mut Criterion) {
    // The yardstick: one signature through ed25519-dalek's standard API
    // (which expands the key with SHA-512 on every call).
    let library = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let msg = [7u8; 64];
    c.bench_function("ed25519_sign", |b| {
        b.iter(|| ed25519_dalek::Signer::sign(&library, black_box(&msg)))
    });
    // Lexecon's signer: the same signature, its key expansion cached.
    let key = Ed25519Signer::from_seed(&[1; 32]);
    c.bench_function("ed25519_sign_expanded_key_cached", |b| {
        b.iter(|| key.sign(black_box(&msg)))
    });

    let mut gov = Governor::open(engine(), MemoryStorage::new()).unwrap();
    gov.load_policy(&policy_with(100)).unwrap();
    let req = request();
    assert!(gov.decide(&req).unwrap().allowed);
    c.bench_function("decide_with_token_memory_ledger", |b| {
        b.iter(|| gov.decide(black_box(&req)).unwrap())
    });

    let token = gov.decide(&req).unwrap().capability_token.unwrap().token;
    let pk = key.public_key();
    c.bench_function("token_verify", |b| {
        b.iter(|| {
            lexecon_core::verify_token(
                black_box(&token),
                &pk,
                NOW / 1000,
                Expect {
                    tool: Some("web_search"),
                    actor: None,
                },
            )
            .unwrap()
        })
    });
}

fn bench_ledger_verify(c: &mut Criterion) {
    // 100k realistic decision entries (~1 KB each), built once.
    let mut gov = Governor::open(engine(), MemoryStorage::new()).unwrap();
    gov.load_policy(&policy_with(10)).unwrap();
    let sample = gov.decide(&request()).unwrap();
    let payload = gov.entry(sample.ledger_index).unwrap().unwrap().payload;
    let mut prev = GENESIS_HASH.to_string();
    let entries: Vec<Vec<u8>> = (0..100_000u64)
        .map(|i| {
            let rec = build_entry_value(
                i,
                &prev,
                "2026-11-24T13:08:01.123Z",
                EntryKind::Decision,
                &payload,
            );
            prev = rec.entry_hash;
            rec.bytes
        })
        .collect();
    let bytes: usize = entries.iter().map(Vec::len).sum();
    eprintln!(
        "ledger_verify: {} entries, {} bytes each on average",
        entries.len(),
        bytes / entries.len()
    );
    let mut g = c.benchmark_group("ledger_verify");
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.sample_size(10);
    g.bench_function("100k_entries", |b| {
        b.iter(|| {
            let r = verify_chain(entries.iter().map(Vec::as_slice));
            assert!(r.valid);
        })
    });
    // What `lexecon ledger verify` does: one thread per core.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    g.bench_function(format!("100k_entries_{threads}_threads"), |b| {
        b.iter(|| {
            let r = verify_chain_parallel(&entries, threads);
            assert!(r.valid);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_evaluate, bench_decide, bench_ledger_verify);
criterion_main!(benches);
