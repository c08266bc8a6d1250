//! Integration tests of `isola serve`: a real server on loopback, a real HTTP client.

mod api;
mod control;
mod util;

#[ctor::ctor]
fn init_v8_on_main_thread() {
    isola_core::init_platform();
}
