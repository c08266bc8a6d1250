//! Integration tests of `isola serve`: a real server on loopback, a real HTTP client.

mod api;
mod control;
mod hostile_http;
mod hostile_tenants;
mod raw;
mod stalls;
mod util;

#[ctor::ctor]
fn init_v8_on_main_thread() {
    isola_core::init_platform();
}
