//! The node's storage thread: it owns the [`Storage`], takes the core's persists in order, and
//! makes them durable while the event loop goes on receiving, sending and ticking (Raft thesis
//! §10.2.1; etcd-io/raft's asynchronous storage writes). A completed sync is reported back
//! through the loop's mio `Waker`.
//!
//! Group commit: the thread stages every persist queued by the time it starts a sync and syncs
//! once for all of them, so the number of fdatasyncs adapts to load rather than to the loop's
//! iterations. Persists are numbered from 1 in submission order; [`SyncThread::completed`] is
//! the highest number durable, and every lower one is durable too.

use crate::core::Persist;
use crate::storage::Storage;
use log::error;
use mio::Waker;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// What the thread shares with the loop.
struct Shared {
    /// The highest persist number made durable.
    completed: AtomicU64,
    /// `Storage::disk_size` as of the last sync.
    disk_size: AtomicU64,
    /// Set when a stage or sync failed; the thread has stopped.
    failed: Mutex<Option<String>>,
}

pub struct SyncThread {
    jobs: Option<Sender<Persist>>,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
    submitted: u64,
}

impl SyncThread {
    /// Starts the thread on `storage`. With `sync_every_entry` (only for measuring what group
    /// commit buys) it syncs once per appended entry instead of once per batch.
    pub fn start(
        storage: Storage,
        sync_every_entry: bool,
        waker: Arc<Waker>,
    ) -> io::Result<SyncThread> {
        let shared = Arc::new(Shared {
            completed: AtomicU64::new(0),
            disk_size: AtomicU64::new(storage.disk_size()),
            failed: Mutex::new(None),
        });
        let (jobs, queue) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name("storage".into())
            .spawn(move || run(storage, queue, &thread_shared, &waker, sync_every_entry))?;
        Ok(SyncThread {
            jobs: Some(jobs),
            shared,
            handle: Some(handle),
            submitted: 0,
        })
    }

    /// Queues `persist`; returns its number.
    pub fn submit(&mut self, persist: Persist) -> io::Result<u64> {
        let jobs = self.jobs.as_ref().expect("not stopped");
        if jobs.send(persist).is_err() {
            // The thread stopped: its error says why.
            return Err(self.failure());
        }
        self.submitted += 1;
        Ok(self.submitted)
    }

    /// The number of the last persist submitted.
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// The number of the last persist made durable, or the error that stopped the thread.
    pub fn completed(&self) -> io::Result<u64> {
        let completed = self.shared.completed.load(Ordering::Acquire);
        if completed < self.submitted && self.shared.failed.lock().expect("lock").is_some() {
            return Err(self.failure());
        }
        Ok(completed)
    }

    /// Bytes of Raft state on disk as of the last sync (the lab's RaftStateSize).
    pub fn disk_size(&self) -> u64 {
        self.shared.disk_size.load(Ordering::Relaxed)
    }

    /// Waits until everything submitted is durable, and stops the thread.
    pub fn finish(&mut self) -> io::Result<()> {
        self.jobs = None;
        if let Some(handle) = self.handle.take() {
            handle
                .join()
                .map_err(|_| io::Error::other("the storage thread panicked"))?;
        }
        self.completed().map(drop)
    }

    fn failure(&self) -> io::Error {
        let failed = self.shared.failed.lock().expect("lock");
        io::Error::other(
            failed
                .clone()
                .unwrap_or_else(|| "the storage thread stopped".into()),
        )
    }
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            error!("storage: {e}");
        }
    }
}

fn run(
    mut storage: Storage,
    queue: Receiver<Persist>,
    shared: &Shared,
    waker: &Waker,
    sync_every_entry: bool,
) {
    let mut completed = 0;
    // Blocks until the loop submits or drops its sender.
    while let Ok(first) = queue.recv() {
        let batch: Vec<Persist> = std::iter::once(first).chain(queue.try_iter()).collect();
        let count = batch.len() as u64;
        let result = batch.into_iter().try_for_each(|persist| {
            if sync_every_entry {
                sync_units(persist).try_for_each(|part| {
                    storage.stage(&part)?;
                    storage.sync()
                })
            } else {
                storage.stage(&persist)
            }
        });
        let result = result.and_then(|()| storage.sync());
        if let Err(e) = result {
            *shared.failed.lock().expect("lock") = Some(format!("cannot persist: {e}"));
            let _ = waker.wake();
            return;
        }
        completed += count;
        shared
            .disk_size
            .store(storage.disk_size(), Ordering::Relaxed);
        shared.completed.store(completed, Ordering::Release);
        if let Err(e) = waker.wake() {
            error!("storage: cannot wake the event loop: {e}");
        }
    }
}

/// `persist` as one sync per appended entry, the first also carrying its other changes.
fn sync_units(mut persist: Persist) -> impl Iterator<Item = Persist> {
    let rest = if persist.append.len() > 1 {
        persist.append.split_off(1)
    } else {
        Vec::new()
    };
    std::iter::once(persist).chain(rest.into_iter().map(|entry| Persist {
        append: vec![entry],
        ..Persist::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Entry, EntryKind, HardState};
    use mio::{Events, Poll, Token};
    use std::time::{Duration, Instant};

    fn entry(index: u64) -> Entry {
        Entry {
            term: 1,
            index,
            command: vec![index as u8; 8],
            kind: EntryKind::Command,
        }
    }

    fn append(from: u64, to: u64) -> Persist {
        Persist {
            hard_state: (from == 1).then_some(HardState {
                current_term: 1,
                voted_for: Some(0),
            }),
            append: (from..=to).map(entry).collect(),
            ..Persist::default()
        }
    }

    /// Persists complete in order, each wakes the loop, and what completed is on disk when the
    /// store is opened again.
    #[test]
    fn persists_complete_in_order_and_wake_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, _) = Storage::open(dir.path()).unwrap();
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let mut sync = SyncThread::start(storage, false, waker).unwrap();
        for i in 0..10 {
            assert_eq!(sync.submit(append(i * 3 + 1, i * 3 + 3)).unwrap(), i + 1);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Events::with_capacity(4);
        while sync.completed().unwrap() < 10 {
            assert!(Instant::now() < deadline, "the syncs did not complete");
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
        }
        assert!(sync.disk_size() > 0);
        sync.finish().unwrap();
        let (_, restored) = Storage::open(dir.path()).unwrap();
        assert_eq!(restored.hard_state.current_term, 1);
        assert_eq!(restored.entries, (1..=30).map(entry).collect::<Vec<_>>());
    }

    /// A persist the store refuses stops the thread, and the loop hears why.
    #[test]
    fn a_failed_persist_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, _) = Storage::open(dir.path()).unwrap();
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let mut sync = SyncThread::start(storage, false, waker).unwrap();
        // A gap: index 5 does not continue an empty log.
        sync.submit(append(5, 5)).unwrap();
        let error = sync.finish().unwrap_err();
        assert!(error.to_string().contains("cannot persist"), "{error}");
    }
}
