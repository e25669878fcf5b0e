//! The daemon: one mio event loop that serves the faces (data plane), the control socket
//! (control plane) and the delay queue's deadlines, on one thread.

mod control;
mod delay_queue;
mod forward;

use crate::command::Command;
use crate::endpoint::Endpoints;
use control::Control;
use forward::Forwarder;
use log::{info, warn};
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Wakes the loop to stop it (the Ctrl-C / SIGTERM handler holds one).
const SHUTDOWN: Token = Token(0);
const LISTENER: Token = Token(1);
/// The face of the endpoint in slot `e` ([`Endpoints::index`]: nodes, then clerks) has
/// `Token(FIRST_FACE + e)` (clerks' faces move up a slot when a node joins); control
/// connections take the tokens from `FIRST_CONTROL`.
const FIRST_FACE: usize = 2;
const FIRST_CONTROL: usize = 1 << 24;

/// Large enough for any UDP datagram.
const MAX_DATAGRAM: usize = 64 * 1024;

pub struct Config {
    /// Each node's own UDP address; the index is the node id.
    pub nodes: Vec<SocketAddr>,
    /// Where to bind each node's face (port 0 picks one).
    pub faces: Vec<SocketAddr>,
    /// Each clerk's own UDP address; the index is the clerk's number.
    pub clerks: Vec<SocketAddr>,
    /// Where to bind each clerk's face: where the nodes see it.
    pub clerk_faces: Vec<SocketAddr>,
    pub control: SocketAddr,
    pub seed: u64,
    /// Delayed datagrams one directed link may hold at once.
    pub max_delayed_per_link: usize,
    /// What control clients must prove they hold (datagrams pass unchecked: their bodies are
    /// opaque here, and the nodes check their MACs).
    pub secret: raft_auth::Secret,
}

pub struct Daemon {
    poll: Poll,
    shutdown: Arc<Waker>,
    control: Control,
    forwarder: Forwarder,
    /// Every datagram is received here and, unless delayed, sent on from here.
    buf: Box<[u8]>,
}

impl Daemon {
    /// Binds the faces and the control socket.
    pub fn bind(config: Config) -> io::Result<Daemon> {
        if config.nodes.is_empty()
            || config.nodes.len() != config.faces.len()
            || config.clerks.len() != config.clerk_faces.len()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "give one face per node and per clerk, and at least one node",
            ));
        }
        let endpoints = Endpoints::new(config.nodes.len(), config.clerks.len());
        let poll = Poll::new()?;
        let registry = poll.registry();
        let shutdown = Arc::new(Waker::new(registry, SHUTDOWN)?);
        let mut faces = Vec::with_capacity(endpoints.len());
        let face_addrs = config.faces.iter().chain(&config.clerk_faces);
        for (slot, &addr) in face_addrs.enumerate() {
            let what = format!("face {}", endpoints.at(slot));
            let mut face = UdpSocket::bind(addr).map_err(|e| context(e, &what, addr))?;
            enlarge_buffers(&face);
            registry.register(&mut face, Token(FIRST_FACE + slot), Interest::READABLE)?;
            faces.push(face);
        }
        let mut listener =
            TcpListener::bind(config.control).map_err(|e| context(e, "control", config.control))?;
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        let addrs = [config.nodes, config.clerks].concat();
        Ok(Daemon {
            shutdown,
            control: Control::new(listener, FIRST_CONTROL, config.secret),
            forwarder: Forwarder::new(
                endpoints,
                addrs,
                faces,
                config.seed,
                config.max_delayed_per_link,
            )?,
            buf: vec![0; MAX_DATAGRAM].into_boxed_slice(),
            poll,
        })
    }

    /// What stops [`Daemon::run`] when woken.
    pub fn shutdown_waker(&self) -> Arc<Waker> {
        Arc::clone(&self.shutdown)
    }

    /// The line the harness waits for: the bound addresses and the seed. `clerk-faces=` is
    /// there only if the proxy has clerks.
    pub fn ready_line(&self) -> io::Result<String> {
        let status = self.forwarder.status();
        let faces = |rows: &[crate::status::EndpointStatus]| {
            let faces: Vec<String> = rows.iter().map(|row| row.face.to_string()).collect();
            faces.join(",")
        };
        let clerk_faces = match status.clerks.is_empty() {
            true => String::new(),
            false => format!(" clerk-faces={}", faces(&status.clerks)),
        };
        Ok(format!(
            "ready control={} faces={}{clerk_faces} seed={}",
            self.control.local_addr()?,
            faces(&status.nodes),
            status.seed
        ))
    }

    /// Serves until the shutdown waker is woken.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            // Block without a timeout unless a delayed datagram is waiting: an idle proxy
            // costs no CPU.
            let timeout = (self.forwarder.next_due())
                .map(|due| due.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in &events {
                match event.token() {
                    SHUTDOWN => {
                        info!("stopping");
                        return Ok(());
                    }
                    LISTENER => self.control.accept(self.poll.registry()),
                    token if self.control.owns(token) => {
                        let forwarder = &mut self.forwarder;
                        let registry = self.poll.registry();
                        self.control
                            .ready(token, registry, |line| execute(forwarder, registry, line));
                    }
                    Token(face) => self.forwarder.drain(face - FIRST_FACE, &mut self.buf),
                }
            }
            self.forwarder.send_due(Instant::now());
        }
    }
}

/// Parses, checks and carries out one control request; returns the whole reply.
fn execute(forwarder: &mut Forwarder, registry: &mio::Registry, line: &str) -> String {
    let cmd = match line.parse::<Command>() {
        Ok(cmd) => cmd,
        Err(e) => return rejected(line, &e),
    };
    if let Err(e) = cmd.check(forwarder.endpoints()) {
        return rejected(line, &e);
    }
    let body = match cmd {
        Command::Change(change) => {
            info!("{change}");
            forwarder.apply(&change);
            String::new()
        }
        Command::Status => json(&forwarder.status()),
        Command::Stats => json(&forwarder.stats()),
        Command::ResetStats => {
            info!("reset-stats");
            forwarder.reset_stats();
            String::new()
        }
        Command::AddNode { addr, face } => match add_node(forwarder, registry, addr, face) {
            Ok((id, face)) => {
                info!("add-node {addr}: node {id}, face {face}");
                format!("node {id} face {face}\n")
            }
            Err(e) => return rejected(line, &e),
        },
        Command::RemoveNode(id) => {
            if forwarder.is_removed(id) {
                let e = crate::command::CommandError::new(format!("node {id} is removed already"));
                return rejected(line, &e);
            }
            if let Some(mut face) = forwarder.remove_node(id) {
                let _ = registry.deregister(&mut face);
            }
            info!("remove-node {id}");
            String::new()
        }
    };
    format!("ok\n{body}")
}

/// Binds the new node's face, registers it, and moves the clerks' faces up a slot.
fn add_node(
    forwarder: &mut Forwarder,
    registry: &mio::Registry,
    addr: SocketAddr,
    face: Option<SocketAddr>,
) -> Result<(usize, SocketAddr), crate::command::CommandError> {
    use crate::command::CommandError;
    if forwarder.has_address(addr) {
        return Err(CommandError::new(format!(
            "{addr} is an endpoint of this proxy already"
        )));
    }
    let face_addr = face.unwrap_or_else(|| forwarder.next_face());
    let mut socket = UdpSocket::bind(face_addr)
        .map_err(|e| CommandError::new(format!("cannot bind a face on {face_addr}: {e}")))?;
    enlarge_buffers(&socket);
    let bound = socket
        .local_addr()
        .map_err(|e| CommandError::new(e.to_string()))?;
    let id = forwarder.endpoints().nodes;
    let clerks = forwarder.endpoints().clerks;
    registry
        .register(&mut socket, Token(FIRST_FACE + id), Interest::READABLE)
        .map_err(|e| CommandError::new(format!("cannot poll the face: {e}")))?;
    // Clerk k's face moves from slot id + k to id + 1 + k: re-register from the last down.
    let id = forwarder
        .add_node(addr, socket)
        .map_err(|e| CommandError::new(e.to_string()))?;
    for k in (0..clerks).rev() {
        let slot = id + 1 + k;
        if let Some(face) = forwarder.face_mut(slot) {
            registry
                .reregister(face, Token(FIRST_FACE + slot), Interest::READABLE)
                .map_err(|e| CommandError::new(format!("cannot poll clerk c{k}'s face: {e}")))?;
        }
    }
    Ok((id, bound))
}

fn rejected(line: &str, e: &crate::command::CommandError) -> String {
    warn!("rejected {:?}: {e}", line.trim());
    format!("error: {e}\n")
}

fn json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string(value).expect("status and stats serialize");
    text.push('\n');
    text
}

fn context(e: io::Error, what: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("cannot bind {what} on {addr}: {e}"))
}

/// Socket buffers the kernel may grant a face (capped by net.core.rmem_max / wmem_max).
const FACE_BUFFER_BYTES: usize = 4 << 20;

/// Gives a face deep kernel buffers: while the proxy waits for a CPU on a loaded machine, a
/// burst of datagrams (a leader's pipelined 60 KiB AppendEntries) must queue, not be dropped.
/// The default 208 KiB holds about three of them. Best effort: a smaller grant only costs loss.
fn enlarge_buffers(face: &UdpSocket) {
    let sock = socket2::SockRef::from(face);
    if let Err(e) = sock
        .set_recv_buffer_size(FACE_BUFFER_BYTES)
        .and_then(|()| sock.set_send_buffer_size(FACE_BUFFER_BYTES))
    {
        log::warn!("cannot enlarge face socket buffers: {e}");
    }
}
