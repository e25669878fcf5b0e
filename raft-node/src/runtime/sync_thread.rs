//! The node's storage thread: it owns the [`Storage`], takes the core's persists in order, and
//! makes them durable while the event loop goes on receiving, sending and ticking (Raft thesis
//! §10.2.1; etcd-io/raft's asynchronous storage writes). A completed sync is reported back
//! through the loop's mio `Waker`.
//!
//! A job is a persist (or none) and the datagrams that may leave only once it, and every job
//! before it, is durable: the thread sends them itself right after its sync, which takes the
//! loop's wakeup off the path of a follower's acknowledgement (and so of every commit).
//!
//! Group commit: the thread stages every persist queued by the time it starts a sync and syncs
//! once for all of them, so the number of fdatasyncs adapts to load rather than to the loop's
//! iterations. Jobs are numbered from 1 in submission order; [`SyncThread::completed`] is the
//! highest number done, and every lower one is done too.

use super::peers::{Datagram, Outbound};
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

/// A persist, if any, and what to send once it is durable.
struct Job {
    persist: Option<Persist>,
    then_send: Vec<Datagram>,
}

pub struct SyncThread {
    jobs: Option<Sender<Job>>,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
    submitted: u64,
}

impl SyncThread {
    /// Starts the thread on `storage`, sending on `outbound`. With `sync_every_entry` (only for
    /// measuring what group commit buys) it syncs once per appended entry instead of once per
    /// batch.
    pub fn start(
        storage: Storage,
        outbound: Outbound,
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
            .spawn(move || {
                let thread = Thread {
                    storage,
                    outbound,
                    shared: &thread_shared,
                    waker: &waker,
                    sync_every_entry,
                };
                thread.run(queue)
            })?;
        Ok(SyncThread {
            jobs: Some(jobs),
            shared,
            handle: Some(handle),
            submitted: 0,
        })
    }

    /// Queues `persist` and the datagrams to send once it and everything before it is durable;
    /// returns the job's number.
    pub fn submit(
        &mut self,
        persist: Option<Persist>,
        then_send: Vec<Datagram>,
    ) -> io::Result<u64> {
        let jobs = self.jobs.as_ref().expect("not stopped");
        if jobs.send(Job { persist, then_send }).is_err() {
            // The thread stopped: its error says why.
            return Err(self.failure());
        }
        self.submitted += 1;
        Ok(self.submitted)
    }

    /// The number of the last job submitted.
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// The number of the last job done, or the error that stopped the thread.
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

/// The thread's side.
struct Thread<'a> {
    storage: Storage,
    outbound: Outbound,
    shared: &'a Shared,
    waker: &'a Waker,
    sync_every_entry: bool,
}

impl Thread<'_> {
    fn run(mut self, queue: Receiver<Job>) {
        let mut completed = 0;
        // Blocks until the loop submits or drops its sender.
        while let Ok(first) = queue.recv() {
            let batch: Vec<Job> = std::iter::once(first).chain(queue.try_iter()).collect();
            if let Err(e) = self.make_durable(&batch) {
                *self.shared.failed.lock().expect("lock") = Some(format!("cannot persist: {e}"));
                let _ = self.waker.wake();
                return;
            }
            for datagram in batch.iter().flat_map(|job| &job.then_send) {
                self.outbound.send(datagram);
            }
            completed += batch.len() as u64;
            self.shared
                .disk_size
                .store(self.storage.disk_size(), Ordering::Relaxed);
            self.shared.completed.store(completed, Ordering::Release);
            if let Err(e) = self.waker.wake() {
                error!("storage: cannot wake the event loop: {e}");
            }
        }
    }

    /// Stages the batch's persists and syncs once; a batch of sends only (every persist before
    /// them already durable) syncs nothing.
    fn make_durable(&mut self, batch: &[Job]) -> Result<(), crate::storage::StorageError> {
        let mut staged = false;
        for persist in batch.iter().filter_map(|job| job.persist.as_ref()) {
            if self.sync_every_entry {
                for part in sync_units(persist.clone()) {
                    self.storage.stage(&part)?;
                    self.storage.sync()?;
                }
            } else {
                self.storage.stage(persist)?;
                staged = true;
            }
        }
        if staged {
            self.storage.sync()?;
        }
        Ok(())
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
    use super::super::peers::PeerSocket;
    use super::*;
    use crate::core::{Entry, HardState, Message, MessageBody};
    use crate::wire::{self, ClusterKey, Payload};
    use mio::{Events, Poll, Token};
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

    fn entry(index: u64) -> Entry {
        Entry {
            term: 1,
            index,
            command: vec![index as u8; 8],
        }
    }

    fn append(from: u64, to: u64) -> Option<Persist> {
        Some(Persist {
            hard_state: (from == 1).then_some(HardState {
                current_term: 1,
                voted_for: Some(0),
            }),
            append: (from..=to).map(entry).collect(),
            ..Persist::default()
        })
    }

    fn key() -> ClusterKey {
        ClusterKey {
            id: 7,
            secret: raft_auth::Secret::from_bytes(&[1; 32]),
        }
    }

    /// Node 0's peer socket, whose peer n1 is `receiver`.
    fn socket(poll: &Poll, receiver: &UdpSocket) -> PeerSocket {
        let loopback = "127.0.0.1:0".parse().unwrap();
        let peers = vec![loopback, receiver.local_addr().unwrap()];
        PeerSocket::bind(loopback, 0, peers, key(), poll.registry(), Token(1)).unwrap()
    }

    /// An acknowledgement of `index` from n0 to n1.
    fn ack(index: u64) -> Message {
        Message {
            from: 0,
            to: 1,
            term: 1,
            body: MessageBody::AppendEntriesReply {
                success: true,
                match_index: index,
                conflict_term: None,
                conflict_index: 0,
                read_round: 0,
            },
        }
    }

    /// Jobs complete in order, each wakes the loop, their datagrams leave, and what completed
    /// is on disk when the store is opened again.
    #[test]
    fn jobs_complete_in_order_send_their_datagrams_and_wake_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, _) = Storage::open(dir.path()).unwrap();
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let peers = socket(&poll, &receiver);
        let mut sync = SyncThread::start(storage, peers.outbound().unwrap(), false, waker).unwrap();
        for i in 0..10 {
            let then_send = peers.encode(&ack(i * 3 + 3)).into_iter().collect();
            let number = sync
                .submit(append(i * 3 + 1, i * 3 + 3), then_send)
                .unwrap();
            assert_eq!(number, i + 1);
        }
        // Sends only, behind the persists: they leave after them.
        let then_send = peers.encode(&ack(31)).into_iter().collect();
        assert_eq!(sync.submit(None, then_send).unwrap(), 11);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Events::with_capacity(4);
        while sync.completed().unwrap() < 11 {
            assert!(Instant::now() < deadline, "the jobs did not complete");
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
        }
        let mut buf = [0; 2048];
        let acked: Vec<u64> = (0..11)
            .map(|_| {
                let len = receiver.recv(&mut buf).unwrap();
                match wire::decode(&key(), &buf[..len]).unwrap() {
                    Payload::Peer(Message {
                        body: MessageBody::AppendEntriesReply { match_index, .. },
                        ..
                    }) => match_index,
                    other => panic!("not an acknowledgement: {other:?}"),
                }
            })
            .collect();
        let expected: Vec<u64> = (1..=10).map(|i| i * 3).chain([31]).collect();
        assert_eq!(acked, expected);
        assert_eq!(peers.counters().sent, 11);
        assert!(sync.disk_size() > 0);
        sync.finish().unwrap();
        let (_, restored) = Storage::open(dir.path()).unwrap();
        assert_eq!(restored.hard_state.current_term, 1);
        assert_eq!(restored.entries, (1..=30).map(entry).collect::<Vec<_>>());
    }

    /// A persist the store refuses stops the thread, its datagrams never leave, and the loop
    /// hears why.
    #[test]
    fn a_failed_persist_is_reported_and_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, _) = Storage::open(dir.path()).unwrap();
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peers = socket(&poll, &receiver);
        let mut sync = SyncThread::start(storage, peers.outbound().unwrap(), false, waker).unwrap();
        // A gap: index 5 does not continue an empty log.
        let then_send = peers.encode(&ack(5)).into_iter().collect();
        sync.submit(append(5, 5), then_send).unwrap();
        let error = sync.finish().unwrap_err();
        assert!(error.to_string().contains("cannot persist"), "{error}");
        assert_eq!(peers.counters().sent, 0);
    }
}
