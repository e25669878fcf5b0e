//! A linearizability checker for the key/value service of lab 3 (Get/Put/Append on string keys).

mod history;
mod recorder;

pub use history::{read_jsonl, write_jsonl, OpKind, Operation, Status};
pub use recorder::{HistoryRecorder, PendingOp};
