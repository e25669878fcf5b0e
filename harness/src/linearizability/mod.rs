//! A linearizability checker for the key/value service of lab 3 (Get/Put/Append on string keys).

mod bitset;
mod check;
mod history;
mod model;
#[cfg(test)]
mod random_tests;
mod recorder;
mod search;
#[cfg(test)]
mod tests;

pub use check::{check, CheckReport, KeyReport, Verdict};
pub use history::{read_jsonl, write_jsonl, OpKind, Operation, Status};
pub use recorder::{HistoryRecorder, PendingOp};
