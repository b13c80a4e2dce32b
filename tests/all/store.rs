//! The git store through the library, no FUSE: round trips, fsck, structural sharing, edits,
//! compare-and-swap merges.

mod edits;
mod merge;
mod roundtrip;
mod sharing;
mod split;
