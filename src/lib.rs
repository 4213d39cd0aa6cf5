//! todoke: scanned paper forms in, validated core-system batches out.
//!
//! The stages run in one direction:
//! intake → decode → register → read → validate → matching → emit.
//! `pipeline` strings them together; each stage's result is its own type.
//! `watch` runs them as a daemon over watched inboxes, with `ledger`
//! (SQLite) recording every scan so that none is lost or read twice.

pub mod checkbox;
pub mod config;
pub mod decode;
pub mod digits;
pub mod emit;
pub mod explain;
pub mod i18n;
pub mod intake;
pub mod ledger;
pub mod matching;
pub mod names;
pub mod paths;
pub mod pdfwrite;
pub mod pipeline;
pub mod progress;
pub mod raster;
pub mod read;
pub mod register;
pub mod render;
pub mod review;
pub mod serve;
pub mod synth;
pub mod tally;
pub mod template;
pub mod validate;
pub mod watch;
