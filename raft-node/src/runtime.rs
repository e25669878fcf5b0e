//! The event loop that runs one Raft peer: one `mio::Poll` over the UDP peer socket, the TCP
//! control listener and its connections, and a waker for termination signals.
//!
//! Each iteration:
//! 1. carry out the core's `Ready`: persist, then send, then stream what was applied to
//!    subscribers (the order `core` documents), and flush control output;
//! 2. poll, with the timeout set by the core's next deadline (zero while input is left over);
//! 3. feed peer messages and control requests to the core (all proposals of one iteration reach
//!    the core before the next `take_ready`, so it can batch them into one AppendEntries), at
//!    most a turn's worth from each socket, so that no sender can keep the loop from syncing,
//!    sending heartbeats and ticking;
//! 4. `tick` if the deadline has passed.
//!
//! The runtime makes no protocol decisions: it moves bytes and time into the core and the core's
//! effects out.

mod control_server;
mod digest_service;
pub mod logging;
mod peers;

use crate::control::{NodeState, Request, Response};
use crate::core::{
    Config, Index, NodeId, Persist, ProposeError, Raft, Restored, Role, Status, Time,
};
use crate::storage::Storage;
use control_server::{Close, Connection, ControlServer};
use digest_service::DigestService;
use log::{error, info};
use mio::{Events, Poll, Registry, Token, Waker};
use peers::PeerSocket;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PEER: Token = Token(0);
const CONTROL: Token = Token(1);
const SIGNAL: Token = Token(2);
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
    /// Where to send to each peer, by id; the entry at our own id is unused.
    pub peers: Vec<SocketAddr>,
    /// Our TCP address for the control channel.
    pub control: SocketAddr,
    pub cluster_id: u64,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub heartbeat: Duration,
    pub seed: u64,
    /// Run the built-in digest service, snapshotting at every multiple of this index
    /// (0: no built-in service; a control client snapshots instead).
    pub snapshot_every: Index,
    /// Group commit forced off: one sync per log entry instead of one per loop iteration. Only
    /// for measuring what group commit buys (`just bench`).
    pub sync_every_entry: bool,
}

impl NodeConfig {
    fn core_config(&self) -> Config {
        Config {
            id: self.id,
            members: self.peers.len() as u32,
            election_timeout_min: self.election_timeout_min,
            election_timeout_max: self.election_timeout_max,
            heartbeat_interval: self.heartbeat,
            max_append_bytes: MAX_APPEND_BYTES,
            seed: self.seed,
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
    let digest_service = (config.snapshot_every > 0).then(|| {
        let mut service = DigestService::new(config.snapshot_every);
        // Start from the restored snapshot; the entries after it are applied again as the
        // node learns they are committed.
        for item in raft.applied(0) {
            service.apply(&item);
        }
        service
    });

    let poll = Poll::new()?;
    let registry = poll.registry();
    let peers = PeerSocket::bind(
        config.listen,
        config.id,
        config.peers.clone(),
        config.cluster_id,
        registry,
        PEER,
    )?;
    let control = ControlServer::bind(config.control, registry, CONTROL, FIRST_CONNECTION)?;
    let waker = Arc::new(Waker::new(registry, SIGNAL)?);
    ctrlc::set_handler(move || {
        // Nothing else is safe to do here; the loop sees the wakeup.
        let _ = waker.wake();
    })
    .map_err(io::Error::other)?;

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
        storage,
        sync_every_entry: config.sync_every_entry,
        peers,
        peers_readable: false,
        control,
        digest_service,
        origin,
        stop: None,
    };
    let result = node.run_loop(poll);
    info!("{}", node.peers.counters);
    result
}

struct Node {
    raft: Raft,
    storage: Storage,
    sync_every_entry: bool,
    peers: PeerSocket,
    /// The peer socket may hold datagrams (edge-triggered: from a READABLE event until a
    /// receive would block).
    peers_readable: bool,
    control: ControlServer,
    digest_service: Option<DigestService>,
    /// Time zero of the core's clock.
    origin: Instant,
    stop: Option<Stop>,
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
                    return Ok(());
                }
                Some(Stop::Requested(token)) => {
                    info!("shutdown requested over the control channel");
                    self.control.finish_shutdown(poll.registry(), token);
                    return Ok(());
                }
                None => {}
            }

            let timeout = if self.peers_readable || self.control.has_input() {
                Duration::ZERO
            } else {
                self.raft.next_deadline().saturating_sub(self.now())
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
                    SIGNAL => self.stop = Some(Stop::Signal),
                    _ => self.control.on_event(event),
                }
            }

            let now = self.now();
            if self.peers_readable {
                let raft = &mut self.raft;
                self.peers_readable = self
                    .peers
                    .drain(DATAGRAMS_PER_TURN, |msg| raft.step(msg, now));
            }
            let (raft, storage, stop) = (&mut self.raft, &self.storage, &mut self.stop);
            let counters = &self.peers.counters;
            self.control.serve(poll.registry(), |conn, req| {
                handle_request(raft, storage, counters, conn, req, now, stop)
            });

            let now = self.now();
            if now >= self.raft.next_deadline() {
                self.raft.tick(now);
            }
        }
    }

    /// Carries out the core's effects in the order it requires: persist, send, apply.
    /// One `Ready` per loop iteration, so one sync covers everything that arrived in that
    /// iteration (group commit).
    fn process_ready(&mut self, registry: &Registry) -> io::Result<()> {
        let ready = self.raft.take_ready();
        if let Some(persist) = ready.persist {
            for part in self.sync_units(persist) {
                self.storage.stage(&part).map_err(io::Error::other)?;
                self.storage.sync().map_err(io::Error::other)?;
            }
        }
        for msg in &ready.messages {
            self.peers.send(msg);
        }
        self.control.deliver(registry, &ready.apply);
        if let Some(service) = &mut self.digest_service {
            for item in &ready.apply {
                if let Some((index, data)) = service.apply(item) {
                    // Persisted with the next Ready.
                    if let Err(e) = self.raft.snapshot(index, data) {
                        error!("built-in service: {e}");
                    }
                }
            }
        }
        Ok(())
    }

    /// What one sync covers: the whole iteration's changes (group commit), or with
    /// `sync_every_entry` one appended entry each, the first also carrying the other changes.
    fn sync_units(&self, mut persist: Persist) -> Vec<Persist> {
        if !self.sync_every_entry || persist.append.len() <= 1 {
            return vec![persist];
        }
        let rest = persist.append.split_off(1);
        std::iter::once(persist)
            .chain(rest.into_iter().map(|entry| Persist {
                append: vec![entry],
                ..Persist::default()
            }))
            .collect()
    }
}

/// Answers one control request. Proposals go straight to the core; the `Ready` they produce is
/// taken once after the whole batch of events.
fn handle_request(
    raft: &mut Raft,
    storage: &Storage,
    counters: &peers::Counters,
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
                Err(ProposeError::NotLeader { .. }) => Response::Started {
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
            let state = node_state(&raft.status(), storage.disk_size(), counters);
            conn.reply(&Response::State(state));
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
        Request::Shutdown => {
            conn.reply(&Response::ShuttingDown);
            *stop = Some(Stop::Requested(conn.token()));
        }
    }
    Ok(())
}

fn node_state(s: &Status, raft_state_bytes: u64, counters: &peers::Counters) -> NodeState {
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
    }
}
