//! A blocking client for one node's control channel (never through the proxy).

use raft_auth::Secret;
use raft_node::control::{
    self, read_frame, write_frame, ApplyMsg, NodeState, Request, Response, SnapshotMsg,
};
use raft_node::core::{Index, MembershipChange, Term};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

/// How long a control call may take before the node counts as unreachable. The node answers
/// from its event loop within microseconds; this only bounds a hung or stopped process.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One pooled connection per node, re-opened after any error (e.g. the node was restarted).
/// Each connection starts with the handshake, proving the cluster secret.
#[derive(Debug)]
pub struct NodeClient {
    addr: SocketAddr,
    timeout: Duration,
    secret: Secret,
    conn: Mutex<Option<TcpStream>>,
}

impl NodeClient {
    pub fn new(addr: SocketAddr, secret: Secret) -> NodeClient {
        NodeClient::with_timeout(addr, CALL_TIMEOUT, secret)
    }

    /// A client whose connects and calls give up after `timeout` (a live view that must not
    /// stall on one stopped node).
    pub fn with_timeout(addr: SocketAddr, timeout: Duration, secret: Secret) -> NodeClient {
        NodeClient {
            addr,
            timeout,
            secret,
            conn: Mutex::new(None),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A fresh client of the same node (its own connection).
    pub fn another(&self) -> NodeClient {
        NodeClient::new(self.addr, self.secret.clone())
    }

    /// Forgets the pooled connection (after a crash, so no call reuses a dead socket).
    pub fn reset(&self) {
        *self.conn.lock().unwrap() = None;
    }

    /// The lab's `Start(cmd)`: `Some((index, term))` if this node is the leader and accepted it.
    /// An unreachable node answers like a non-leader, as a crashed raft does in the lab.
    pub fn start(&self, command: &[u8]) -> io::Result<Option<(Index, Term)>> {
        match self.call(&Request::Start {
            command: command.to_vec(),
        })? {
            Response::Started {
                index,
                term,
                is_leader: true,
            } => Ok(Some((index, term))),
            Response::Started { .. } => Ok(None),
            other => Err(unexpected("Start", &other)),
        }
    }

    pub fn get_state(&self) -> io::Result<NodeState> {
        match self.call(&Request::GetState)? {
            Response::State(state) => Ok(state),
            other => Err(unexpected("GetState", &other)),
        }
    }

    /// The lab's `Snapshot(index, data)`: the service's state through `index`.
    pub fn snapshot(&self, index: Index, data: Vec<u8>) -> io::Result<()> {
        match self.call(&Request::Snapshot { index, data })? {
            Response::SnapshotTaken => Ok(()),
            other => Err(unexpected("Snapshot", &other)),
        }
    }

    /// The hosted service's digest and the index it covers: `(applied, digest)`.
    pub fn service_digest(&self) -> io::Result<(Index, u64)> {
        match self.call(&Request::ServiceDigest)? {
            Response::ServiceDigest { applied, digest } => Ok((applied, digest)),
            Response::Error { message } => Err(io::Error::other(message)),
            other => Err(unexpected("ServiceDigest", &other)),
        }
    }

    /// The shards this replica group node holds as applied, with their states and sizes.
    pub fn shard_states(&self) -> io::Result<raft_node::control::ShardStates> {
        match self.call(&Request::ShardStates)? {
            Response::ShardStates(states) => Ok(states),
            Response::Error { message } => Err(io::Error::other(message)),
            other => Err(unexpected("ShardStates", &other)),
        }
    }

    /// Asks this node, the leader, to hand leadership to `to` (§3.10); an error names why it
    /// refused.
    pub fn transfer(&self, to: u32) -> io::Result<()> {
        match self.call(&Request::Transfer { to })? {
            Response::TransferStarted => Ok(()),
            Response::Error { message } => Err(io::Error::other(message)),
            other => Err(unexpected("Transfer", &other)),
        }
    }

    /// Asks this node, the leader, for a single-server membership change (§4.1): `Ok(Ok((index,
    /// term)))` of its entry, `Ok(Err(why))` if the node refused it.
    pub fn change_membership(
        &self,
        change: MembershipChange,
    ) -> io::Result<Result<(Index, Term), String>> {
        match self.call(&Request::ChangeMembership { change })? {
            Response::MembershipProposed { index, term } => Ok(Ok((index, term))),
            Response::Error { message } => Ok(Err(message)),
            other => Err(unexpected("ChangeMembership", &other)),
        }
    }

    pub fn shutdown(&self) -> io::Result<()> {
        match self.call(&Request::Shutdown)? {
            Response::ShuttingDown => Ok(()),
            other => Err(unexpected("Shutdown", &other)),
        }
    }

    /// A dedicated connection to the node, through the handshake, without timeouts (a stream
    /// of applies, a pipelining submitter).
    pub fn connect(&self) -> io::Result<TcpStream> {
        let stream = connect(self.addr, self.timeout, &self.secret)?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        Ok(stream)
    }

    /// Opens a dedicated connection that streams every applied entry from `from` on.
    pub fn subscribe(&self, from: Index) -> io::Result<ApplyStream> {
        let mut stream = self.connect()?;
        write_frame(&mut stream, &Request::Subscribe { from })?;
        Ok(ApplyStream { stream })
    }

    fn call(&self, req: &Request) -> io::Result<Response> {
        let mut conn = self.conn.lock().unwrap();
        let result = (|| {
            if conn.is_none() {
                *conn = Some(connect(self.addr, self.timeout, &self.secret)?);
            }
            let stream = conn.as_mut().expect("connected above");
            write_frame(stream, req)?;
            read_frame::<Response>(stream)
        })();
        if result.is_err() {
            *conn = None;
        }
        result
    }
}

/// One item of a node's apply stream: the lab's ApplyMsg with CommandValid or SnapshotValid.
pub enum Applied {
    Command(ApplyMsg),
    Snapshot(SnapshotMsg),
}

/// The applied entries of one node incarnation, in order; ends when the node dies.
pub struct ApplyStream {
    stream: TcpStream,
}

impl ApplyStream {
    /// The next applied entry, or `None` once the node has gone away.
    pub fn next_apply(&mut self) -> io::Result<Option<Applied>> {
        match read_frame::<Response>(&mut self.stream) {
            Ok(Response::Apply(msg)) => Ok(Some(Applied::Command(msg))),
            Ok(Response::ApplySnapshot(msg)) => Ok(Some(Applied::Snapshot(msg))),
            Ok(other) => Err(unexpected("Subscribe", &other)),
            Err(e) if is_disconnect(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A connection through the handshake.
fn connect(addr: SocketAddr, timeout: Duration, secret: &Secret) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    control::authenticate(&mut stream, secret)?;
    Ok(stream)
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn unexpected(what: &str, resp: &Response) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected answer to {what}: {resp:?}"),
    )
}
