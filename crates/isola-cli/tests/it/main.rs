//! End-to-end tests of the `isola` binary: real processes, real data dirs.

mod run;
mod serve;
mod util;
