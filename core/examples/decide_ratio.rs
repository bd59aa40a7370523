//! Measures `decide` against one Ed25519 signature, interleaved, so a
//! shared VM's drifting speed affects both alike (README, "Performance";
//! PERFORMANCE.md has the readings).
//!
//! `cargo run --release -p lexecon-core --example decide_ratio -- 200`
//!
//! Each of the N rounds times 500 signatures of a 64-byte message through
//! ed25519-dalek's standard `SigningKey::sign` (the criterion bench's
//! yardstick), 500 through Lexecon's signer (the same signatures, its key
//! expansion cached), then 500 decisions (a permit with a token, memory
//! ledger; the bench's policy shape), and prints the medians of the
//! per-round means and of the per-round ratios against each.

use std::hint::black_box;
use std::time::Instant;

use lexecon_core::engine::{Engine, Governor, NodeConfig};
use lexecon_core::{
    DecisionRequest, Ed25519Signer, FixedClock, MemoryStorage, SeededRandom, Signer,
};

const PER_ROUND: u32 = 500;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(200), |s| s.parse())?;
    let library = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let key = Ed25519Signer::from_seed(&[1; 32]);
    let engine = Engine::new(
        NodeConfig::default(),
        Box::new(Ed25519Signer::from_seed(&[1; 32])),
        Box::new(FixedClock(1_795_525_681_123)),
        Box::new(SeededRandom::new(b"ratio")),
    );
    let mut gov = Governor::open(engine, MemoryStorage::new())?;
    gov.load_policy(include_str!("../../scripts/load/policy.json"))?;
    let req = DecisionRequest::new("model", "Execute web_search", "web_search", "Research", 1);
    if !gov.decide(&req)?.allowed {
        return Err("the request should be a permit".into());
    }
    let msg = [7u8; 64];
    let (mut sign, mut cached, mut decide) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ratio, mut ratio_cached) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            black_box(ed25519_dalek::Signer::sign(&library, black_box(&msg)));
        }
        let s = t.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND);
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            black_box(key.sign(black_box(&msg))?);
        }
        let k = t.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND);
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            black_box(gov.decide(black_box(&req))?);
        }
        let d = t.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND);
        sign.push(s);
        cached.push(k);
        decide.push(d);
        ratio.push(d / s);
        ratio_cached.push(d / k);
    }
    println!(
        "ed25519 sign {:.2} µs (cached expansion {:.2} µs), decide {:.2} µs, \
         decide / sign {:.3} (/ cached {:.3}) (medians of {rounds} rounds of {PER_ROUND})",
        median(&mut sign),
        median(&mut cached),
        median(&mut decide),
        median(&mut ratio),
        median(&mut ratio_cached)
    );
    Ok(())
}
