//! A linearizability checker for the key/value service of lab 3 (Get/Put/Append on string
//! keys), as porcupine checks the lab's histories.
//!
//! **Recording.** Clerk threads share a [`HistoryRecorder`]: [`HistoryRecorder::call`] before
//! the first try, [`HistoryRecorder::finish`] after the reply (or when the clerk gives up), on
//! one monotonic clock. [`HistoryRecorder::history`] gives the [`Operation`]s; an operation's id
//! is its index there.
//!
//! **Checking.** [`check`] splits the history by key and searches each key on its own, in
//! parallel: a history of independent keys is linearizable iff each key's sub-history is
//! (P-compositionality), and a key's search is far smaller. The model of a key: its value, `""`
//! until written; a Get must return it, a Put sets it, an Append concatenates. The search is
//! Wing & Gong's: call and return events in one list sorted by time, calls before returns at
//! equal times (so operations that touch at one instant count as concurrent: the clock cannot
//! order them); an op may be linearized next if its call precedes the first return still in
//! the list; linearizing it lifts its call and return out of the list; when a return comes
//! first, the search backtracks. Lowe's memoization prunes configurations already explored:
//! the set of linearized ops (a bitset) with the model state it led to. States are interned
//! (equal values share an id) so comparing and hashing them is O(1) however long appends make
//! them. One pruning beyond porcupine's: a choice is abandoned as soon as a Get called within
//! the next few returns can no longer read its value (its output does not extend the current
//! value, nor the value of a Put that could still come before it), rather than after every
//! order of the writes up to that Get has been tried.
//!
//! **Timeouts.** A Put or Append with [`Status::Timeout`] (the clerk gave up, outcome unknown)
//! is given a return at the end of time: it may be linearized anywhere after its call. "Never
//! took effect" needs no separate case: placing a write after everything else is always legal
//! and nothing observes it, which is what "never" means to the history. So the check accepts
//! exactly the histories in which each such write took effect at some point after its call or
//! not at all. A timed-out Get observed nothing and is left out.
//!
//! **Verdicts.** [`Verdict::Ok`] (a linearization was found, per key in [`KeyReport`]),
//! [`Verdict::Illegal`] (none exists; per failed key the longest prefix the search linearized
//! and the reads that cannot be placed after it), or [`Verdict::Unknown`]: the time budget ran
//! out. Unknown is not Ok. An illegal key does not stop the others; Illegal anywhere wins over
//! Unknown elsewhere. The lab's tests fail on Illegal and pass Unknown with a notice ("info:
//! linearizability check timed out, assuming history is ok"); [`assert_linearizable`] fails on
//! both unless told [`OnUnknown::PassWithNotice`].
//!
//! **Pictures.** [`write_html`] draws a checked history as a self-contained HTML page.
//!
//! **JSON lines.** [`write_jsonl`]/[`read_jsonl`]: one operation per line, e.g.
//! `{"clerk":3,"kind":"append","key":"7","input":"x 3 12 y","output":"","call_ns":1200345,"return_ns":1250001,"status":"ok"}`;
//! `kind` is `get`, `put` or `append`, `status` `ok` or `timeout`; `input` is empty for a
//! Get, `output` empty for a Put or Append; times are nanoseconds on the clerks' shared clock.

mod assert;
mod bitset;
mod check;
mod history;
mod html;
mod model;
#[cfg(test)]
mod random_tests;
mod recorder;
mod search;
#[cfg(test)]
mod tests;

pub use assert::{assert_linearizable, OnUnknown};
pub use check::{check, CheckReport, KeyReport, Verdict};
pub use history::{read_jsonl, write_jsonl, OpKind, Operation, Status};
pub use html::{render_html, save_history, write_html};
pub use recorder::{HistoryRecorder, PendingOp};
