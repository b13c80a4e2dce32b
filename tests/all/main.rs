//! All integration tests in one binary (one link on 2 cores): the store through the library,
//! and the `valfs` command line.
#![allow(clippy::unwrap_used)]

mod cli;
mod common;
mod store;
