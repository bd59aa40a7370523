#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The component's figures (README, "Performance"): native decide vs
//! component decide through wasmtime, the cost of a fresh instance, and the
//! component's size.
//!
//! ```sh
//! scripts/build-component.sh
//! cargo bench -p lexecon --bench component
//! ```
//!
//! Criterion measures the means; then a plain loop prints p50/p99 per call
//! (calls bounded by a deadline, the default; by fuel as well; by nothing),
//! the compile time, the fuel a decide uses and the sizes. Under
//! `cargo test --benches` every benchmark runs once and the table is skipped.

use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use criterion::Criterion;
use lexecon::component::{ComponentEngine, ComponentHost, GuestEnv, Limits, component_path};
use lexecon::engine::{DecisionEngine, NativeEngine, SystemClock};
use lexecon_core::{
    DecisionRequest, Ed25519Signer, Engine, MemoryStorage, NodeConfig, OsRandom, Signer as _,
};

/// The guide's AI-assistant policy without its rate limit, so that every
/// benchmarked decision is a signed permit with a token.
fn policy() -> String {
    let mut p: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/policies/ai_assistant.json")).unwrap();
    p["constraints"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["action"] != "rate_limit");
    p.to_string()
}

fn request() -> DecisionRequest {
    let mut r = DecisionRequest::new("model", "Execute web_search", "web_search", "Research", 1);
    r.context.insert("user_id".into(), "alice".into());
    r
}

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(&[9; 32])
}

fn native() -> NativeEngine<MemoryStorage> {
    let engine = Engine::new(
        NodeConfig::default(),
        Box::new(signer()),
        Box::new(SystemClock),
        Box::new(OsRandom),
    );
    let mut n = NativeEngine::open(engine, MemoryStorage::new()).unwrap();
    n.load_policy(&policy()).unwrap();
    n
}

fn component(host: &ComponentHost) -> ComponentEngine {
    let mut c = host
        .open(
            NodeConfig::default(),
            Box::new(MemoryStorage::new()),
            Box::new(signer()),
            GuestEnv::system(),
        )
        .unwrap();
    c.load_policy(&policy()).unwrap();
    c
}

fn decide(engine: &mut impl DecisionEngine) {
    let out = engine.decide_batch(&[request()]).unwrap();
    assert!(out[0].as_ref().unwrap().allowed);
}

/// p50 and p99 of `f`, timed one call at a time.
fn percentiles(mut f: impl FnMut(), n: usize) -> (Duration, Duration) {
    for _ in 0..n / 10 {
        f();
    }
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[n * 99 / 100])
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let wasm = std::fs::read(component_path()).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/build-component.sh",
            component_path().display()
        )
    });
    let t = Instant::now();
    let host = ComponentHost::new(&wasm, Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let compile = t.elapsed();
    // The two other ways to bound calls: fuel (deterministic, and with the
    // default deadlines too) and nothing at all.
    let metered = ComponentHost::new(&wasm, Limits::default().with_fuel()).unwrap();
    let unbounded = ComponentHost::new(
        &wasm,
        Limits {
            time_per_call: None,
            ..Limits::default()
        },
    )
    .unwrap();

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("decide");
        let mut n = native();
        g.bench_function("native", |b| b.iter(|| decide(black_box(&mut n))));
        let mut e = component(&host);
        g.bench_function("component", |b| b.iter(|| decide(black_box(&mut e))));
        let mut e = component(&metered);
        g.bench_function("component-fuel", |b| b.iter(|| decide(black_box(&mut e))));
        let mut e = component(&unbounded);
        g.bench_function("component-unbounded", |b| {
            b.iter(|| decide(black_box(&mut e)))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("instance");
        g.bench_function("fresh", |b| b.iter(|| host.instantiate_empty().unwrap()));
        g.bench_function("open-empty-ledger", |b| {
            b.iter(|| {
                host.open(
                    NodeConfig::default(),
                    Box::new(MemoryStorage::new()),
                    Box::new(signer()),
                    GuestEnv::system(),
                )
                .unwrap()
            })
        });
        g.finish();
    }
    c.final_summary();

    // The table, only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs = 5000;
    let mut n = native();
    let native_decide = percentiles(|| decide(&mut n), runs);
    let mut e = component(&host);
    let component_decide = percentiles(|| decide(&mut e), runs);
    let mut e = component(&metered);
    let metered_decide = percentiles(|| decide(&mut e), runs);
    let fuel = e.last_call_fuel().unwrap_or(0);
    let mut e = component(&unbounded);
    let unbounded_decide = percentiles(|| decide(&mut e), runs);
    // Token verification runs inside the component (Ed25519 verify in wasm).
    let mut e = component(&host);
    let token = e.decide(&request()).unwrap().capability_token.unwrap();
    let public_key = signer().public_key();
    let native_verify = percentiles(
        || {
            lexecon_core::verify_token(
                &token.token,
                &public_key,
                token.claims.issued_at,
                Default::default(),
            )
            .unwrap();
        },
        runs,
    );
    let component_verify = percentiles(
        || {
            e.verify_token(&token.token, Default::default()).unwrap();
        },
        runs,
    );
    let fresh = percentiles(|| host.instantiate_empty().unwrap(), 2000);
    let open = percentiles(
        || {
            host.open(
                NodeConfig::default(),
                Box::new(MemoryStorage::new()),
                Box::new(signer()),
                GuestEnv::system(),
            )
            .map(drop)
            .unwrap();
        },
        2000,
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&wasm).unwrap();
    let gz = gz.finish().unwrap().len();

    println!("\nlexecon component figures ({runs} calls each, p50 / p99)");
    println!(
        "  decide, native:               {} / {}",
        us(native_decide.0),
        us(native_decide.1)
    );
    let ratio = |d: (Duration, Duration)| d.0.as_secs_f64() / native_decide.0.as_secs_f64();
    println!(
        "  decide, component (deadline): {} / {}  ({:.2}x native at p50)",
        us(component_decide.0),
        us(component_decide.1),
        ratio(component_decide)
    );
    println!(
        "  decide, component, fuel too:  {} / {}  ({:.2}x native at p50; {fuel} fuel)",
        us(metered_decide.0),
        us(metered_decide.1),
        ratio(metered_decide)
    );
    println!(
        "  decide, component, unbounded: {} / {}  ({:.2}x native at p50)",
        us(unbounded_decide.0),
        us(unbounded_decide.1),
        ratio(unbounded_decide)
    );
    println!(
        "  verify token, native:         {} / {}",
        us(native_verify.0),
        us(native_verify.1)
    );
    println!(
        "  verify token, component:      {} / {}  ({:.2}x native at p50)",
        us(component_verify.0),
        us(component_verify.1),
        component_verify.0.as_secs_f64() / native_verify.0.as_secs_f64()
    );
    println!(
        "  fresh instance (InstancePre): {} / {}",
        us(fresh.0),
        us(fresh.1)
    );
    println!(
        "  instance + open empty ledger: {} / {}",
        us(open.0),
        us(open.1)
    );
    println!(
        "  compile (Component::new + link, once): {:.0} ms",
        compile.as_secs_f64() * 1e3
    );
    println!("  size: {} bytes raw, {gz} bytes gzipped (-9)", wasm.len());
}
