//! A simulated peer's storage thread: the `Ready`s taken whose persist is not durable yet, in
//! the order they were taken, each with the effects that wait for it (the core's step 3: the
//! report to `Raft::persisted`, the messages that may not precede the persist, the entries to
//! apply, the reads to answer).
//!
//! A sync completes at the time drawn for it, never before an earlier one ([`SyncLatency`]).
//! A crash loses what is still queued; but a process killed in the middle of a sync may leave
//! part of it on disk (the page cache survives a SIGKILL), so [`Unsynced::crash_landing`] draws
//! how much landed: whole persists, then of the next one its hard state, snapshot, truncation
//! and a prefix of its entries, in the order `Storage::sync` writes them.

use crate::core::{Apply, LogMark, Membership, Message, Persist, ReadState, Term, Time};
use rand::rngs::SmallRng;
use rand::Rng;
use std::collections::VecDeque;
use std::time::Duration;

/// How long a peer's syncs take, drawn per seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncLatency {
    /// Every persist is durable within the step that took it (a runtime that syncs in line).
    Inline,
    /// Each sync takes a time drawn uniformly from `[min, max]`, and completes after the
    /// previous one.
    Between(Duration, Duration),
}

impl SyncLatency {
    /// One sync's duration; `None` when inline.
    pub fn draw(self, rng: &mut SmallRng) -> Option<Duration> {
        match self {
            SyncLatency::Inline => None,
            SyncLatency::Between(min, max) => Some(rng.gen_range(min..=max)),
        }
    }
}

/// One `Ready` whose persist is not durable yet, and what waits for it.
#[derive(Debug)]
pub struct Waiting {
    pub persist: Option<Persist>,
    pub mark: LogMark,
    /// The peer's term and configuration when the `Ready` was taken (its reads were confirmed
    /// in that term, by a majority of that configuration).
    pub term: Term,
    pub membership: Membership,
    /// The messages that may not leave before the persist.
    pub messages: Vec<Message>,
    pub apply: Vec<Apply>,
    pub reads: Vec<ReadState>,
    pub failed_reads: Vec<u64>,
    /// When the sync that makes it durable completes.
    pub due: Time,
}

#[derive(Debug, Default)]
pub struct Unsynced {
    queue: VecDeque<Waiting>,
}

impl Unsynced {
    pub fn push(&mut self, waiting: Waiting) {
        debug_assert!(self.queue.back().is_none_or(|w| w.due <= waiting.due));
        self.queue.push_back(waiting);
    }

    /// When the next sync completes.
    pub fn next_due(&self) -> Option<Time> {
        self.queue.front().map(|w| w.due)
    }

    /// When the last queued sync completes (a new one completes no earlier).
    pub fn last_due(&self) -> Option<Time> {
        self.queue.back().map(|w| w.due)
    }

    /// The next `Ready` whose sync has completed by `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<Waiting> {
        match self.queue.front() {
            Some(w) if w.due <= now => self.queue.pop_front(),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The process dies: everything queued is lost, except what landed on disk before the
    /// kill, returned as the persists to apply to the durable disk, in order.
    pub fn crash_landing(&mut self, rng: &mut SmallRng) -> Vec<Persist> {
        let persists: Vec<Persist> = self.queue.drain(..).filter_map(|w| w.persist).collect();
        if persists.is_empty() || rng.gen_bool(0.5) {
            return Vec::new();
        }
        let whole = rng.gen_range(0..persists.len());
        let mut landed: Vec<Persist> = persists[..whole].to_vec();
        let mut part = persists[whole].clone();
        // Storage::sync writes the hard state first. With a snapshot, the rest lands whole or
        // not at all (the snapshot's rename, then the new log generation's); a truncation that
        // did not land with its snapshot is what opening the store does anyway (Figure 13
        // step 6). Without one, the log records land in order, each whole.
        let records = if part.snapshot.is_some() {
            2
        } else {
            usize::from(part.truncate_from.is_some()) + part.append.len()
        };
        match rng.gen_range(0..=records + 1) {
            0 => return landed,
            1 => {
                part.snapshot = None;
                part.truncate_from = None;
                part.append.clear();
            }
            n if part.snapshot.is_some() => {
                if n == 2 {
                    part.append.clear();
                }
            }
            n => {
                let entries = n - 1 - usize::from(part.truncate_from.is_some());
                part.append.truncate(entries);
            }
        }
        landed.push(part);
        landed
    }
}
