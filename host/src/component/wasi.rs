//! The little WASI the component gets: a wall clock, random bytes, and the
//! empty stdio/environment that Rust's standard library links against.
//!
//! The linker offers only `wasi:clocks`, `wasi:random`, `wasi:cli` and
//! `wasi:io` (the streams behind stdio). There is no `wasi:filesystem` and no
//! `wasi:sockets` at all, so a component that imports them does not even
//! instantiate; and the [`WasiCtx`] grants no environment variables,
//! arguments, preopened directories or stdio.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lexecon_core::{Clock, Random};
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiView};

/// Where the component's wall clock and random bytes come from.
///
/// By default both are the host's own (the system clock and wasmtime-wasi's
/// cryptographic generator). Tests and the conformance vectors inject a
/// [`Clock`] and a [`Random`] from `lexecon-core` instead: the component then
/// sees exactly what a native engine built with the same clock and random
/// source sees, because it reads the wall clock once per
/// `Clock::now_ms` and asks `wasi:random/random.get-random-bytes` for exactly
/// the bytes the core asks for.
///
/// Injected sources are shared by every instance the engine creates, so a
/// re-instantiated component continues the same clock and stream.
#[derive(Clone, Default)]
pub struct GuestEnv {
    clock: Option<Arc<Mutex<dyn Clock + Send>>>,
    random: Option<Arc<Mutex<dyn Random + Send>>>,
}

impl std::fmt::Debug for GuestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestEnv")
            .field(
                "clock",
                &if self.clock.is_some() {
                    "injected"
                } else {
                    "system"
                },
            )
            .field(
                "random",
                &if self.random.is_some() {
                    "injected"
                } else {
                    "system"
                },
            )
            .finish()
    }
}

impl GuestEnv {
    /// The host's wall clock and cryptographic random generator.
    pub fn system() -> Self {
        Self::default()
    }

    /// Uses `clock` for `wasi:clocks/wall-clock` (read once per decision).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + Send + 'static) -> Self {
        self.clock = Some(Arc::new(Mutex::new(clock)));
        self
    }

    /// Uses `random` for `wasi:random/random` (request, decision and token
    /// ids). Not for production: ids need not be secret, but they must not
    /// repeat across nodes, which the system generator ensures.
    #[must_use]
    pub fn with_random(mut self, random: impl Random + Send + 'static) -> Self {
        self.random = Some(Arc::new(Mutex::new(random)));
        self
    }

    /// A [`WasiCtx`] that grants nothing but the clock and random sources.
    pub(crate) fn wasi_ctx(&self) -> WasiCtx {
        // `WasiCtxBuilder::new()` starts empty: no environment, arguments,
        // preopens, network or stdio (reads see EOF, writes are discarded).
        let mut builder = WasiCtxBuilder::new();
        if let Some(clock) = &self.clock {
            builder.wall_clock(SharedClock(Arc::clone(clock)));
        }
        if let Some(random) = &self.random {
            builder.secure_random(SharedRandom(Arc::clone(random)));
            // Keeps the guest's hash-map seeds reproducible too.
            builder.insecure_random_seed(0);
        }
        builder.build()
    }
}

/// A `lexecon-core` [`Clock`] as a WASI wall clock.
struct SharedClock(Arc<Mutex<dyn Clock + Send>>);

impl HostWallClock for SharedClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        let clock = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Duration::from_millis(clock.now_ms())
    }
}

/// A `lexecon-core` [`Random`] as the generator behind `wasi:random/random`.
///
/// wasmtime-wasi 48 answers `get-random-bytes(n)` with `n` samples of `u8`,
/// and `rand` draws each `u8` from one `next_u32`. So `next_u32` yields one
/// byte of the stream: the guest receives exactly the next `n` bytes. (The
/// conformance tests fail if a wasmtime upgrade changes this.)
struct SharedRandom(Arc<Mutex<dyn Random + Send>>);

impl SharedRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        let mut random = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if random.fill(buf).is_err() {
            // Never hand out predictable bytes: fall back to the system.
            wasmtime_wasi::Rng::fill_bytes(&mut wasmtime_wasi::thread_rng(), buf);
        }
    }
}

impl rand_core::TryRng for SharedRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 1];
        self.fill(&mut b);
        Ok(u32::from(b[0]))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

/// `HasData` for the resource table (the `wasi:io` streams of stdio).
struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Adds the WASI interfaces the component may import, and no others.
pub(crate) fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync};

    let l = linker;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    sync::io::error::add_to_linker::<T, HasTable>(l, |t| t.ctx().table)?;
    sync::io::poll::add_to_linker::<T, HasTable>(l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<T, HasTable>(l, |t| t.ctx().table)?;
    Ok(())
}
