//! The event loop that runs one Raft peer: one `mio::Poll` over the UDP peer socket, the TCP
//! control listener and its connections, and a waker for termination signals and completed
//! syncs; beside it, the storage thread (`sync_thread`) that makes the core's persists durable.
//!
//! Each iteration:
//! 1. carry out the core's `Ready` in the order `core` documents: the leader's replication at
//!    once, the persist handed to the storage thread, and everything else (the other messages,
//!    applying, reads, control answers) once that persist is durable, which a later iteration
//!    may see; then flush the control output that is free to leave;
//! 2. poll, with the timeout set by the core's next deadline (zero while input is left over);
//! 3. feed peer messages and control requests to the core (all proposals of one iteration reach
//!    the core before the next `take_ready`, so it can batch them into one AppendEntries), at
//!    most a turn's worth from each socket, so that no sender can keep the loop from syncing,
//!    sending heartbeats and ticking;
//! 4. `tick` if the deadline has passed.
//!
//! The runtime makes no protocol decisions: it moves bytes and time into the core and the core's
//! effects out.

mod clerks;
mod control_server;
pub mod logging;
mod peers;
mod sync_thread;

use crate::control::{self, NodeState, Request, Response};
use crate::core::{
    Apply, Config, EntryKind, Index, LogMark, Membership, Message, NodeId, ProposeError, Raft,
    ReadState, Restored, Role, Status, Term, Time,
};
use crate::kv::ClerkReply;
use crate::service::{DigestService, KvService, Service, ShardCtrlerService, ShardKvService};
use crate::shardkv::driver::Driver;
use crate::storage::Storage;
use clerks::ClerkFront;
use control_server::{Close, Connection, ControlServer};
use log::{debug, error, info};
use mio::{Events, Poll, Registry, Token, Waker};
use peers::{Incoming, PeerSocket};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync_thread::SyncThread;

const PEER: Token = Token(0);
const CONTROL: Token = Token(1);
/// A termination signal, or a completed sync.
const WAKE: Token = Token(2);
/// Control connections get tokens from here up.
const FIRST_CONNECTION: usize = 3;

/// Peer datagrams handed to the core per loop iteration at most.
const DATAGRAMS_PER_TURN: usize = 1024;

/// The core's budget for the entries of one AppendEntries: under `wire::MAX_DATAGRAM` with room
/// for the envelope and the message's other fields.
const MAX_APPEND_BYTES: usize = 60 * 1024;

/// Everything a node needs to run, already validated (see main.rs).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Our UDP address for peer datagrams.
    pub listen: SocketAddr,
    /// Where to send to each peer, by id; the entry at our own id is unused. Every id the
    /// cluster may ever have: a node added later is reached at its entry here (its netproxy
    /// face), so an id resolves to the same address across restarts.
    pub peers: Vec<SocketAddr>,
    /// The bootstrap configuration's voters: ids `0..voters` (the rest of `peers` join later
    /// as learners, through membership changes).
    pub voters: u32,
    /// Our TCP address for the control channel.
    pub control: SocketAddr,
    pub cluster_id: u64,
    /// Keys every datagram's MAC and every control connection's handshake.
    pub secret: raft_auth::Secret,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub heartbeat: Duration,
    pub seed: u64,
    /// The service the node hosts on its log.
    pub service: ServiceKind,
    /// Snapshot the service at every index that is a multiple of this (0: never).
    pub snapshot_every: Index,
    /// Snapshot the service when the Raft state on disk reaches this many bytes (the lab's
    /// maxraftstate).
    pub max_raft_state: Option<u64>,
    /// Group commit forced off: one sync per log entry instead of one per loop iteration. Only
    /// for measuring what group commit buys (`just bench`).
    pub sync_every_entry: bool,
    /// What a replica group needs (`ServiceKind::ShardKv` only).
    pub shardkv: Option<ShardKvConfig>,
}

/// A lab 4B replica group's place in the sharded system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardKvConfig {
    pub gid: crate::shardctrler::config::Gid,
    /// The shard controllers' addresses (their proxy faces).
    pub ctrlers: Vec<SocketAddr>,
    /// Server name (as configurations list them) → address (its proxy face).
    pub directory: std::collections::BTreeMap<String, SocketAddr>,
}

/// Which service a node hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// None: a control client (the lab 2 tester) plays the service over `Subscribe`, and
    /// snapshots through the control channel.
    None,
    /// The digest of every command (`service::digest`).
    Digest,
    /// The lab 3 key/value store; clerks talk to it (`kv`).
    Kv,
    /// The lab 4A shard controller; clerks talk to it (`shardctrler`).
    ShardCtrler,
    /// A lab 4B replica group (`shardkv`): clerks talk to it, its leader polls the controller
    /// and hands shards to other groups.
    ShardKv,
}

impl ServiceKind {
    /// The name `raft-node run --service` takes.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::None => "none",
            ServiceKind::Digest => "digest",
            ServiceKind::Kv => "kv",
            ServiceKind::ShardCtrler => "shardctrler",
            ServiceKind::ShardKv => "shardkv",
        }
    }
}

impl NodeConfig {
    fn core_config(&self) -> Config {
        Config {
            id: self.id,
            members: self.peers.len() as u32,
            // The first --voters peers vote; the others join later (`membership.rs`).
            bootstrap: Membership::voters(0..self.voters),
            election_timeout_min: self.election_timeout_min,
            election_timeout_max: self.election_timeout_max,
            heartbeat_interval: self.heartbeat,
            max_append_bytes: MAX_APPEND_BYTES,
            seed: self.seed,
            // `runtime/peers.rs` carries relayed copies through their relay (issue 16).
            relay: true,
        }
    }
}

/// Why the loop stops.
enum Stop {
    Signal,
    /// A control client asked; its connection is owed the `ShuttingDown` answer.
    Requested(Token),
}

/// Runs the node until a `Shutdown` request or a termination signal (`Ok`), or a fatal error:
/// a socket that cannot be bound or polled, or state that cannot be persisted.
/// `restored` is what `storage` held when it was opened.
pub fn run(config: NodeConfig, storage: Storage, restored: Restored) -> io::Result<()> {
    let origin = Instant::now();
    let raft = Raft::new(config.core_config(), restored, origin.elapsed());
    // The service starts from the restored snapshot, if any.
    let service_applied = raft.status().snapshot_index;
    let mut service: Option<Box<dyn Service>> = match config.service {
        ServiceKind::None => None,
        ServiceKind::Digest => Some(Box::new(DigestService::new())),
        ServiceKind::Kv => Some(Box::new(KvService::new())),
        ServiceKind::ShardCtrler => Some(Box::new(ShardCtrlerService::new())),
        ServiceKind::ShardKv => {
            let gid = config.shardkv.as_ref().map_or(0, |s| s.gid);
            Some(Box::new(ShardKvService::new(gid)))
        }
    };
    let driver = (config.service == ServiceKind::ShardKv)
        .then_some(config.shardkv.as_ref())
        .flatten()
        .map(|s| Driver::new(rand::random(), s.ctrlers.clone(), s.directory.clone()));
    if let Some(service) = &mut service {
        // Start from the restored snapshot; the entries after it are applied again as the
        // node learns they are committed.
        for item in raft.applied(0) {
            if let Apply::Snapshot(s) = item {
                service
                    .restore(s.last_included_index, &s.data)
                    .map_err(|e| io::Error::other(format!("cannot restore the service: {e}")))?;
            }
        }
    }

    let poll = Poll::new()?;
    let registry = poll.registry();
    let mut peers = PeerSocket::bind(
        config.listen,
        config.id,
        config.peers.clone(),
        crate::wire::ClusterKey {
            id: config.cluster_id,
            secret: config.secret.clone(),
        },
        registry,
        PEER,
    )?;
    if driver.is_some() {
        peers.take_replies();
    }
    let control = ControlServer::bind(
        config.control,
        registry,
        CONTROL,
        FIRST_CONNECTION,
        config.secret.clone(),
    )?;
    let waker = Arc::new(Waker::new(registry, WAKE)?);
    let signalled = Arc::new(AtomicBool::new(false));
    let (handler_waker, handler_flag) = (Arc::clone(&waker), Arc::clone(&signalled));
    ctrlc::set_handler(move || {
        // Nothing else is safe to do here; the loop sees the flag at the wakeup.
        handler_flag.store(true, Ordering::Release);
        let _ = handler_waker.wake();
    })
    .map_err(io::Error::other)?;
    let sync = SyncThread::start(storage, config.sync_every_entry, waker)?;

    let listen = peers.local_addr()?;
    let control_addr = control.local_addr()?;
    info!(
        "listening: peers on udp {listen}, control on tcp {control_addr}; cluster id {}, {} members",
        config.cluster_id,
        config.peers.len()
    );
    // The one line on stdout, for whoever started us.
    let mut stdout = io::stdout().lock();
    writeln!(
        stdout,
        "ready id={} listen={listen} control={control_addr}",
        config.id
    )?;
    stdout.flush()?;

    let mut node = Node {
        raft,
        sync,
        waiting: VecDeque::new(),
        signalled,
        peers,
        peers_readable: false,
        control,
        service,
        service_applied,
        clerks: ClerkFront::default(),
        driver,
        noop_term: 0,
        snapshot_every: config.snapshot_every,
        max_raft_state: config.max_raft_state,
        origin,
        stop: None,
    };
    let result = node.run_loop(poll);
    info!("{}", node.peers.counters);
    result
}

struct Node {
    raft: Raft,
    sync: SyncThread,
    /// The effects of taken `Ready`s that wait for their persist, oldest first.
    waiting: VecDeque<Waiting>,
    /// Set by the termination signal handler.
    signalled: Arc<AtomicBool>,
    peers: PeerSocket,
    /// The peer socket may hold datagrams (edge-triggered: from a READABLE event until a
    /// receive would block).
    peers_readable: bool,
    control: ControlServer,
    service: Option<Box<dyn Service>>,
    /// The last index the service applied (behind the core's `last_applied` while the entries
    /// wait for their sync).
    service_applied: Index,
    clerks: ClerkFront,
    /// A replica group's leader's polls and hand-offs (`--service shardkv`).
    driver: Option<Driver>,
    /// The last term this node proposed a leader's no-op in (KV only).
    noop_term: Term,
    snapshot_every: Index,
    max_raft_state: Option<u64>,
    /// Time zero of the core's clock.
    origin: Instant,
    stop: Option<Stop>,
}

/// What one `Ready` left to do once persist `after` (and every earlier one) is durable.
struct Waiting {
    after: u64,
    mark: LogMark,
    messages: Vec<Message>,
    apply: Vec<Apply>,
    reads: Vec<ReadState>,
    failed_reads: Vec<u64>,
}

impl Node {
    fn now(&self) -> Time {
        self.origin.elapsed()
    }

    fn run_loop(&mut self, mut poll: Poll) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            self.process_ready(poll.registry())?;
            self.control.flush_all(poll.registry());
            logging::set_term(self.raft.status().term);
            match self.stop.take() {
                Some(Stop::Signal) => {
                    info!("termination signal: shutting down");
                    return self.sync.finish();
                }
                Some(Stop::Requested(token)) => {
                    info!("shutdown requested over the control channel");
                    self.sync.finish()?;
                    self.control.finish_shutdown(poll.registry(), token);
                    return Ok(());
                }
                None => {}
            }

            let timeout = if self.peers_readable || self.control.has_input() {
                Duration::ZERO
            } else {
                let store = self.service.as_deref().and_then(|s| s.shardkv());
                let driver = (self.driver.as_ref().zip(store))
                    .filter(|_| self.raft.status().role == Role::Leader)
                    .and_then(|(d, store)| d.next_deadline(store));
                let deadline = driver.map_or(self.raft.next_deadline(), |d| {
                    d.min(self.raft.next_deadline())
                });
                deadline.saturating_sub(self.now())
            };
            if let Err(e) = poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    PEER => self.peers_readable = true,
                    CONTROL => self.control.accept(poll.registry()),
                    WAKE => {
                        if self.signalled.swap(false, Ordering::AcqRel) {
                            self.stop = Some(Stop::Signal);
                        }
                    }
                    _ => self.control.on_event(event),
                }
            }

            let now = self.now();
            if self.peers_readable {
                let raft = &mut self.raft;
                let mut requests = Vec::new();
                let mut replies = Vec::new();
                self.peers_readable =
                    self.peers
                        .drain(DATAGRAMS_PER_TURN, |incoming, source| match incoming {
                            Incoming::Peer(msg) => raft.step(msg, now),
                            Incoming::Clerk(request) => requests.push((request, source)),
                            Incoming::Reply(reply) => replies.push(reply),
                            Incoming::Forwarded { from, to } => raft.forwarded(from, to, now),
                        });
                self.drive_replies(replies, now);
                for (request, source) in requests {
                    let service = self.service.as_deref().and_then(|s| s.clerks());
                    if let Some((to, reply)) =
                        self.clerks
                            .request(&mut self.raft, service, request, source, now)
                    {
                        self.peers.reply(to, &reply);
                    }
                }
            }
            let (raft, stop) = (&mut self.raft, &mut self.stop);
            let (peers, disk_size) = (&self.peers, self.sync.disk_size());
            let service = self.service.as_deref().map(|s| (s, self.service_applied));
            let kv = service.and_then(|(s, _)| s.kv());
            let shards = service.and_then(|(s, _)| s.shardkv());
            self.control.serve(poll.registry(), |conn, req| {
                let state = |raft: &Raft| node_state(raft, disk_size, peers, kv, shards);
                handle_request(raft, state, service, conn, req, now, stop)
            });

            let now = self.now();
            if now >= self.raft.next_deadline() {
                self.raft.tick(now);
            }
        }
    }

    /// Takes the core's effects and carries them out in the order it requires: the leader's
    /// replication at once, the persist to the storage thread, the rest once that is durable.
    /// One `Ready` per loop iteration (and one more for each batch of syncs that completed), so
    /// everything that arrived in an iteration shares one persist.
    fn process_ready(&mut self, registry: &Registry) -> io::Result<()> {
        loop {
            let ready = self.raft.take_ready();
            let (now, later): (Vec<Message>, Vec<Message>) = ready
                .messages
                .into_iter()
                .partition(Message::may_precede_persist);
            for msg in &now {
                self.peers.send(msg);
            }
            let persists = ready.persist.is_some();
            if let Some(persist) = ready.persist {
                self.sync.submit(persist)?;
            }
            // The control answers given since the last `Ready` report on what this persist
            // makes durable.
            self.control
                .hold(self.sync.submitted(), self.sync.completed()?);
            let waits = !later.is_empty()
                || !ready.apply.is_empty()
                || !ready.reads.is_empty()
                || !ready.failed_reads.is_empty();
            if persists || waits {
                self.waiting.push_back(Waiting {
                    after: self.sync.submitted(),
                    mark: ready.log_mark,
                    messages: later,
                    apply: ready.apply,
                    reads: ready.reads,
                    failed_reads: ready.failed_reads,
                });
            }
            if !self.carry_out_synced(registry)? {
                break;
            }
        }
        let status = self.raft.status();
        for (to, reply) in self.clerks.check_leadership(&status) {
            self.peers.reply(to, &reply);
        }
        self.propose_noop(&status);
        self.drive(&status);
        Ok(())
    }

    /// A replica group's leader: the controller polls and hand-offs due now (`shardkv::driver`).
    /// A node that does not lead forgets what its driver had in flight.
    fn drive(&mut self, status: &Status) {
        let Some(driver) = &mut self.driver else {
            return;
        };
        if status.role != Role::Leader {
            driver.stop();
            return;
        }
        let Some(store) = self.service.as_deref().and_then(|s| s.shardkv()) else {
            return;
        };
        let now = self.origin.elapsed();
        for (to, request) in driver.tick(store, now) {
            debug!(
                "shardkv: at configuration {}, sending seq {} to {to}: {}",
                store.config().num,
                request.seq,
                describe(&request.op)
            );
            self.peers.request(to, &request);
        }
    }

    /// Replies to the driver's requests: the entries they call for are proposed (and taken
    /// with the next `Ready`).
    fn drive_replies(&mut self, replies: Vec<ClerkReply>, now: Time) {
        let (Some(driver), Some(store)) = (
            &mut self.driver,
            self.service.as_deref().and_then(|s| s.shardkv()),
        ) else {
            return;
        };
        if self.raft.status().role != Role::Leader {
            return;
        }
        for reply in replies {
            debug!("shardkv: seq {} answered {:?}", reply.seq, reply.outcome);
            if let Some(entry) = driver.on_reply(reply, store, now) {
                match self.raft.propose(entry, now) {
                    Ok((index, _)) => info!("shardkv: proposed the driver's entry at {index}"),
                    Err(e) => info!("shardkv: cannot propose the driver's entry: {e:?}"),
                }
            }
        }
    }

    /// Carries out what waited for the persists now durable: reports each to the core, sends
    /// the messages, applies, answers reads. Returns whether anything was.
    fn carry_out_synced(&mut self, registry: &Registry) -> io::Result<bool> {
        let completed = self.sync.completed()?;
        self.control.release(completed);
        let mut any = false;
        while self.waiting.front().is_some_and(|w| w.after <= completed) {
            let waiting = self.waiting.pop_front().expect("checked");
            any = true;
            self.raft.persisted(waiting.mark, self.now());
            for msg in &waiting.messages {
                self.peers.send(msg);
            }
            self.apply(registry, &waiting.apply)?;
            let leader = self.raft.status().leader;
            let mut answers = self
                .clerks
                .reads(&waiting.reads, &waiting.failed_reads, leader);
            if let Some(service) = self.service.as_deref().and_then(|s| s.clerks()) {
                answers.extend(self.clerks.serve_reads(service, self.service_applied));
            }
            for (to, reply) in answers {
                self.peers.reply(to, &reply);
            }
            // Output pushed now reports on durable state only.
            self.control.hold(waiting.after, completed);
        }
        Ok(any)
    }

    /// Streams `items` to subscribers and hands them to the service, answering the clerks
    /// whose writes they apply and taking the snapshots that come due.
    fn apply(&mut self, registry: &Registry, items: &[Apply]) -> io::Result<()> {
        self.control.deliver(registry, items);
        let Some(service) = &mut self.service else {
            return Ok(());
        };
        for item in items {
            match item {
                Apply::Entry(entry) => {
                    // A configuration entry is Raft's, not the service's: it applies nothing.
                    let applied = match entry.kind {
                        EntryKind::Command => service.apply(entry.index, &entry.command),
                        EntryKind::Membership(_) => None,
                    };
                    self.service_applied = entry.index;
                    if let Some((to, reply)) = self.clerks.applied(entry.index, applied.as_ref()) {
                        self.peers.reply(to, &reply);
                    }
                    if self.snapshot_every > 0 && entry.index.is_multiple_of(self.snapshot_every) {
                        take_snapshot(&mut self.raft, service.as_ref(), entry.index);
                    }
                }
                Apply::Snapshot(s) => {
                    if let Err(e) = service.restore(s.last_included_index, &s.data) {
                        // Nothing this node can do keeps it equal to the others.
                        return Err(io::Error::other(format!(
                            "cannot install the leader's snapshot: {e}"
                        )));
                    }
                    self.service_applied = s.last_included_index;
                    for (to, reply) in self.clerks.skipped_to(s.last_included_index) {
                        self.peers.reply(to, &reply);
                    }
                }
            }
        }
        // The lab's maxraftstate: once the state on disk reaches it, compact through what the
        // service has applied.
        if let (Some(max), Some(last)) = (self.max_raft_state, items.last()) {
            if self.sync.disk_size() >= max {
                take_snapshot(&mut self.raft, service.as_ref(), last.index());
            }
        }
        Ok(())
    }

    /// A KV leader's first act in a new term: an entry of its own, so that the entries of
    /// earlier terms before it commit without waiting for a clerk's write (Figure 8).
    fn propose_noop(&mut self, status: &Status) {
        let serves_clerks = self
            .service
            .as_deref()
            .is_some_and(|s| s.clerks().is_some());
        if serves_clerks && status.role == Role::Leader && self.noop_term < status.term {
            self.noop_term = status.term;
            let noop = crate::service::noop_command();
            if let Err(e) = self.raft.propose(noop, self.now()) {
                error!("cannot propose the new leader's no-op: {e:?}");
            }
        }
    }
}

/// A driver request in a log line: its operation without the shard's data.
fn describe(op: &crate::kv::Op) -> String {
    match op {
        crate::kv::Op::InstallShard {
            num,
            shard,
            part,
            last,
            data,
            ..
        } => format!(
            "shard {shard} of configuration {num}, part {part} (last: {last}, {} keys)",
            data.len()
        ),
        other => format!("{other:?}"),
    }
}

/// Snapshots the service's state through `index` (persisted with the next Ready).
fn take_snapshot(raft: &mut Raft, service: &dyn Service, index: Index) {
    if let Err(e) = raft.snapshot(index, service.snapshot()) {
        error!("service snapshot: {e}");
    }
}

/// Answers one control request. Proposals go straight to the core; the `Ready` they produce is
/// taken once after the whole batch of events.
fn handle_request(
    raft: &mut Raft,
    state: impl Fn(&Raft) -> NodeState,
    service: Option<(&dyn Service, Index)>,
    conn: &mut Connection,
    req: Request,
    now: Time,
    stop: &mut Option<Stop>,
) -> Result<(), Close> {
    match req {
        Request::Start { command } => {
            let resp = match raft.propose(command, now) {
                Ok((index, term)) => Response::Started {
                    index,
                    term,
                    is_leader: true,
                },
                // A leader handing over (§3.10), or out of touch with its majority, takes
                // nothing, as the lab's Start of a non-leader.
                Err(
                    ProposeError::NotLeader { .. }
                    | ProposeError::Transferring { .. }
                    | ProposeError::OutOfTouch { .. },
                ) => Response::Started {
                    index: 0,
                    term: raft.status().term,
                    is_leader: false,
                },
                Err(ProposeError::TooLarge { size, max }) => Response::Error {
                    message: format!(
                        "command of {size} bytes is larger than the {max}-byte limit of one entry"
                    ),
                },
            };
            conn.reply(&resp);
        }
        Request::GetState => {
            conn.reply(&Response::State(state(raft)));
        }
        Request::Subscribe { from } => conn.subscribe(from, &raft.applied(from))?,
        Request::Snapshot { index, data } => {
            let resp = match raft.snapshot(index, data) {
                Ok(()) => Response::SnapshotTaken,
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            };
            conn.reply(&resp);
        }
        Request::ServiceDigest => {
            let resp = match service {
                Some((service, applied)) => Response::ServiceDigest {
                    applied,
                    digest: service.digest(),
                },
                None => Response::Error {
                    message: "this node hosts no service (raft-node run --service)".to_string(),
                },
            };
            conn.reply(&resp);
        }
        Request::ShardStates => {
            let resp = match service.and_then(|(s, applied)| Some((s.shardkv()?, applied))) {
                Some((store, applied)) => Response::ShardStates(control::ShardStates {
                    applied,
                    config: store.config().num,
                    shards: store
                        .shards()
                        .iter()
                        .map(|(&shard, s)| control::HeldShard {
                            shard,
                            state: s.state.clone(),
                            keys: s.data.len() as u64,
                            bytes: s.data.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum(),
                        })
                        .collect(),
                }),
                None => Response::Error {
                    message: "this node is not a replica group's (raft-node run --service shardkv)"
                        .to_string(),
                },
            };
            conn.reply(&resp);
        }
        Request::Transfer { to } => {
            let resp = match raft.transfer_leadership(to, now) {
                Ok(()) => Response::TransferStarted,
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            };
            conn.reply(&resp);
        }
        Request::ChangeMembership { change } => {
            let resp = match raft.propose_membership(change, now) {
                Ok((index, term)) => Response::MembershipProposed { index, term },
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            };
            conn.reply(&resp);
        }
        Request::Shutdown => {
            conn.reply(&Response::ShuttingDown);
            *stop = Some(Stop::Requested(conn.token()));
        }
    }
    Ok(())
}

fn node_state(
    raft: &Raft,
    raft_state_bytes: u64,
    peers: &PeerSocket,
    kv: Option<&crate::kv::KvStore>,
    shards: Option<&crate::shardkv::store::ShardKvStore>,
) -> NodeState {
    let s = raft.status();
    let counters = &peers.counters;
    NodeState {
        id: s.id,
        term: s.term,
        is_leader: s.role == Role::Leader,
        role: s.role,
        leader: s.leader,
        commit_index: s.commit_index,
        last_applied: s.last_applied,
        last_log_index: s.last_log_index,
        snapshot_index: s.snapshot_index,
        raft_state_bytes,
        datagrams_received: counters.received,
        requests_received: counters.requests_received,
        unauthenticated: counters.unauthenticated,
        kv_keys: kv.map(|kv| kv.keys() as u64),
        transferring_to: raft.transferring_to(),
        voted_for: raft.voted_for(),
        tail: control::tail_terms(s.last_log_index, |index| raft.term_of(index)),
        voters: raft.membership().voters.iter().copied().collect(),
        learners: raft.membership().learners.iter().copied().collect(),
        membership_index: raft.membership_index(),
        outgoing: raft.membership().outgoing.iter().copied().collect(),
        shards: shards.map(|store| {
            Box::new(control::ShardsState {
                gid: store.gid(),
                config: store.config().num,
                owners: store.config().shards.to_vec(),
                held: (store.shards().iter())
                    .map(|(&shard, s)| (shard, s.state.clone()))
                    .collect(),
            })
        }),
        relay: Box::new(control::RelayStats {
            sent: counters.relay_sent,
            forwarded: counters.relay_forwarded,
            received: counters.relay_received,
            dropped: counters.relay_dropped,
            routes: peers.relay_routes(control::RELAY_ROUTE_WINDOW),
        }),
    }
}
