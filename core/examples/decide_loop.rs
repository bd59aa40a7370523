//! Runs `decide` in a loop (for profilers: `valgrind --tool=callgrind`).
//!
//! `cargo run --release -p lexecon-core --example decide_loop -- 2000`

use lexecon_core::engine::{Engine, Governor, NodeConfig};
use lexecon_core::{DecisionRequest, Ed25519Signer, FixedClock, MemoryStorage, SeededRandom};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(2000), |s| s.parse())?;
    let engine = Engine::new(
        NodeConfig::default(),
        Box::new(Ed25519Signer::from_seed(&[1; 32])),
        Box::new(FixedClock(1_795_525_681_123)),
        Box::new(SeededRandom::new(b"loop")),
    );
    let mut gov = Governor::open(engine, MemoryStorage::new())?;
    gov.load_policy(include_str!("../../examples/policies/ai_assistant.json").replace("\"rate_limit\"", "\"allow\"").replace("\"parameters\": {\n        \"max_calls\": 10,\n        \"window_seconds\": 60\n      }", "\"description\": \"x\"").as_str())?;
    let req = DecisionRequest::new("model", "Execute web_search", "web_search", "Research", 1);
    let mut allowed = 0;
    for _ in 0..n {
        allowed += usize::from(gov.decide(&req)?.allowed);
    }
    println!("{allowed} of {n} allowed");
    Ok(())
}
