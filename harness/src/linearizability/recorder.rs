//! [`HistoryRecorder`]: the history that clerk threads append to while a test runs.

use super::history::{OpKind, Operation, Status};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// A history shared by clerk threads (clone it into each), on one monotonic clock: nanoseconds
/// since the recorder was created.
///
/// [`call`](Self::call) records an operation before the clerk's first try and
/// [`finish`](Self::finish) completes it after the reply. An operation never finished (the
/// clerk gave up, or its thread was still waiting when the history was taken) stays in the
/// history as timed out: its effect is unknown, and leaving it out could make a later Get that
/// saw its write look illegal.
#[derive(Clone, Debug)]
pub struct HistoryRecorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Slot>>>,
}

#[derive(Debug)]
struct Slot {
    op: Operation,
    finished: bool,
}

/// An operation called but not yet finished; give it back to [`HistoryRecorder::finish`].
#[must_use = "an operation never finished is recorded as timed out"]
#[derive(Debug)]
pub struct PendingOp {
    index: usize,
}

impl Default for HistoryRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl HistoryRecorder {
    /// An empty history whose clock starts now.
    pub fn new() -> HistoryRecorder {
        HistoryRecorder {
            start: Instant::now(),
            ops: Arc::default(),
        }
    }

    /// Nanoseconds since the recorder was created.
    pub fn now_ns(&self) -> u64 {
        // u64 nanoseconds last 584 years.
        self.start.elapsed().as_nanos() as u64
    }

    /// Records the call of an operation, timed now: call it before the clerk's first try.
    /// `input` is the value of a Put or Append (empty for a Get).
    pub fn call(&self, clerk: u64, kind: OpKind, key: &str, input: &str) -> PendingOp {
        let mut ops = self.lock();
        // The clock is read under the lock, so ids follow call times.
        let now = self.now_ns();
        ops.push(Slot {
            op: Operation {
                clerk,
                kind,
                key: key.to_string(),
                input: input.to_string(),
                output: String::new(),
                call_ns: now,
                return_ns: now,
                status: Status::Timeout,
            },
            finished: false,
        });
        PendingOp {
            index: ops.len() - 1,
        }
    }

    /// Completes an operation, timed now: call it after the reply (`Status::Ok`, with a Get's
    /// value as `output`; a Put or Append's output is ignored) or when the clerk gives up
    /// (`Status::Timeout`).
    pub fn finish(&self, op: PendingOp, output: &str, status: Status) {
        let mut ops = self.lock();
        let now = self.now_ns();
        let slot = &mut ops[op.index];
        slot.finished = true;
        slot.op.return_ns = now;
        slot.op.status = status;
        if slot.op.kind == OpKind::Get && status == Status::Ok {
            slot.op.output = output.to_string();
        }
    }

    /// The history so far, in call order. Operations not finished yet appear timed out, given
    /// up now.
    pub fn history(&self) -> Vec<Operation> {
        let ops = self.lock();
        let now = self.now_ns();
        ops.iter()
            .map(|slot| {
                let mut op = slot.op.clone();
                if !slot.finished {
                    op.return_ns = now;
                }
                op
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A clerk thread that panicked holding the lock left the history whole: each change
        // is made in full under it.
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_calls_replies_and_unfinished_calls() {
        let rec = HistoryRecorder::new();
        let put = rec.call(0, OpKind::Put, "k", "v");
        let clone = rec.clone();
        let get = std::thread::spawn(move || {
            let get = clone.call(1, OpKind::Get, "k", "");
            clone.finish(get, "v", Status::Ok);
        });
        get.join().unwrap();
        rec.finish(put, "ignored", Status::Ok);
        let lost = rec.call(2, OpKind::Append, "k", "w");
        let gave_up = rec.call(2, OpKind::Get, "k", "");
        rec.finish(gave_up, "ignored", Status::Timeout);

        let h = rec.history();
        assert_eq!(h.len(), 4);
        assert_eq!(
            (h[0].kind, h[0].status, h[0].output.as_str()),
            (OpKind::Put, Status::Ok, "")
        );
        assert_eq!((h[1].clerk, h[1].output.as_str()), (1, "v"));
        assert!(h[0].call_ns <= h[1].call_ns && h[1].return_ns <= h[0].return_ns);
        assert_eq!((h[2].status, h[2].input.as_str()), (Status::Timeout, "w"));
        assert_eq!((h[3].status, h[3].output.as_str()), (Status::Timeout, ""));
        for op in &h {
            assert!(op.call_ns <= op.return_ns);
        }
        rec.finish(lost, "", Status::Ok);
        assert_eq!(rec.history()[2].status, Status::Ok);
    }
}
