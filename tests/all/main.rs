#![allow(clippy::unwrap_used)]

mod mount;
