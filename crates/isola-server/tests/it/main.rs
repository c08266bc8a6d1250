//! Integration tests of `isola serve`: a real server on loopback, a real HTTP client.

mod api;
mod control;
mod fetch;
mod hostile_http;
mod hostile_tenants;
mod npm_packages;
mod process;
mod raw;
mod stalls;
mod util;

#[ctor::ctor]
fn init_v8_on_main_thread() {
    isola_core::init_platform();
    // Process-isolation tests start this test binary as their worker
    // processes (with the test-only crash hooks compiled in).
    isola_server::process::run_if_worker();
}
