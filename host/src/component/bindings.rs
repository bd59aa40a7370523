//! Host bindings generated from `wit/` by wasmtime's `bindgen!`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "lexecon:governance/governance",
    // The two WASI interfaces the world names are wasmtime-wasi's.
    with: {
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
    },
    require_store_data_send: true,
});
