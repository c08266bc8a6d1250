//! Integration tests of isola-core against a real V8: one binary, topic modules.

mod boundary_fuzz;
mod code_cache;
mod errors;
mod hostile;
mod isolation;
mod limits;
mod modules;
mod util;
mod web;

// V8's platform must exist before the test harness spawns the threads that
// run isolates (required on CPUs with memory protection keys).
#[ctor::ctor]
fn init_v8_on_main_thread() {
    isola_core::init_platform();
}
