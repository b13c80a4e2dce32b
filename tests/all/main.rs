//! All integration tests in one binary (one link on 2 cores): the store through the library,
//! the `valfs` command line, and real mounts exercised with real tools.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod cli;
mod common;
mod concurrent;
mod conflicts;
mod crash;
mod editors;
mod edn_mount;
mod failures;
mod foreign;
mod history;
mod model;
mod mount;
mod mount_sync;
mod open_files;
mod restore;
mod servers;
mod service;
mod store;
mod sync;
mod sync_model;
mod trust;
mod watch;
