//! A blocking client of the daemon's control socket, for the CLI and the Raft harness.
//!
//! The protocol: connect over TCP, read the daemon's `challenge <nonce>` line, write one line
//! `auth <proof> <command>\n` (the proof: the cluster secret's answer to the nonce), read until
//! EOF. The reply's first line is `ok` or `error: <message>`; after `ok` may come a body (JSON
//! for `status` and `stats`).

use crate::command::{
    Change, Command, DelayRange, Link, Probability, Target, LONG_REORDER, LONG_REORDER_DELAY,
};
use crate::endpoint::Endpoint;
use crate::stats::Stats;
use crate::status::Status;
use raft_auth::{Secret, NONCE_LEN};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The daemon answers within one turn of its event loop; this only bounds a hung daemon.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Client {
    pub addr: SocketAddr,
    timeout: Duration,
    secret: Secret,
}

#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens on the control address.
    NotRunning(SocketAddr),
    /// The daemon refused the command; the message names the bad part.
    Rejected(String),
    /// The connection failed, or the reply was not the protocol's.
    Io(io::Error),
}

impl Client {
    pub fn new(addr: SocketAddr, secret: Secret) -> Client {
        Client::with_timeout(addr, TIMEOUT, secret)
    }

    /// A client whose connect and each read or write give up after `timeout` (a live view that
    /// must not stall on a stopped daemon).
    pub fn with_timeout(addr: SocketAddr, timeout: Duration, secret: Secret) -> Client {
        Client {
            addr,
            timeout,
            secret,
        }
    }

    /// Sends one command and returns the reply's body (empty for most commands).
    pub fn send(&self, cmd: &Command) -> Result<String, ClientError> {
        let stream =
            TcpStream::connect_timeout(&self.addr, self.timeout).map_err(|e| match e.kind() {
                io::ErrorKind::ConnectionRefused => ClientError::NotRunning(self.addr),
                _ => ClientError::Io(e),
            })?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut reader = BufReader::new(&stream);
        let mut challenge = String::new();
        reader.read_line(&mut challenge)?;
        let nonce = challenge
            .trim_end()
            .strip_prefix("challenge ")
            .and_then(raft_auth::unhex::<NONCE_LEN>)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not a netproxy challenge: {challenge:?}"),
                )
            })?;
        let proof = raft_auth::hex(&self.secret.proof(&nonce));
        (&stream).write_all(format!("auth {proof} {cmd}\n").as_bytes())?;
        let mut reply = String::new();
        reader.read_to_string(&mut reply)?;
        let (status, body) = reply.split_once('\n').unwrap_or((&reply, ""));
        match status.strip_prefix("error: ") {
            Some(message) => Err(ClientError::Rejected(message.to_string())),
            None if status == "ok" => Ok(body.to_string()),
            None => Err(ClientError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a netproxy reply: {status:?}"),
            ))),
        }
    }

    /// A node joins with its own address `addr`; its face is `face`, or the port after the
    /// last node's face. Returns its id and face.
    pub fn add_node(
        &self,
        addr: SocketAddr,
        face: Option<SocketAddr>,
    ) -> Result<(usize, SocketAddr), ClientError> {
        let body = self.send(&Command::AddNode { addr, face })?;
        // "node 3 face 127.0.0.1:7103"
        let words: Vec<&str> = body.split_whitespace().collect();
        match words[..] {
            ["node", id, "face", face] => match (id.parse(), face.parse()) {
                (Ok(id), Ok(face)) => Ok((id, face)),
                _ => Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not an add-node reply: {body:?}"),
                ))),
            },
            _ => Err(ClientError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an add-node reply: {body:?}"),
            ))),
        }
    }

    /// Node `id` leaves: nothing passes to or from it any more.
    pub fn remove_node(&self, id: usize) -> Result<(), ClientError> {
        self.send(&Command::RemoveNode(id)).map(drop)
    }

    fn change(&self, change: Change) -> Result<(), ClientError> {
        self.send(&Command::Change(change)).map(drop)
    }

    /// Links across groups go down, links within a group come up; nodes named in no group
    /// form one more group, clerks named in no group keep their links.
    pub fn partition(&self, groups: &[Vec<Endpoint>]) -> Result<(), ClientError> {
        self.change(Change::Partition(groups.to_vec()))
    }

    /// The lab's `disconnect(i)`: cuts every link to and from node `i` (its clerks' included),
    /// or to and from a clerk.
    pub fn disconnect(&self, endpoint: impl Into<Endpoint>) -> Result<(), ClientError> {
        self.change(Change::Disconnect(endpoint.into()))
    }

    /// The lab's `connect(i)`: node `i` (or a clerk) gets back the links it had before it was
    /// disconnected.
    pub fn connect(&self, endpoint: impl Into<Endpoint>) -> Result<(), ClientError> {
        self.change(Change::Connect(endpoint.into()))
    }

    pub fn down(&self, links: &[Link]) -> Result<(), ClientError> {
        self.change(Change::Down(links.to_vec()))
    }

    pub fn up(&self, links: &[Link]) -> Result<(), ClientError> {
        self.change(Change::Up(links.to_vec()))
    }

    /// The lab's `makeClient(to)` / `ConnectClient(ck, to)`: clerk `clerk`'s links to and from
    /// the nodes in `to` come up, those to and from every other node go down. Both changes are
    /// checked before either is sent; the cuts go first, so the clerk never reaches a node
    /// outside `to` on the way.
    pub fn connect_clerk(&self, clerk: usize, to: &[usize]) -> Result<(), ClientError> {
        let endpoints = self.status()?.endpoints();
        let link = |node| Link {
            from: Endpoint::Clerk(clerk),
            to: Endpoint::Node(node),
            both_ways: true,
        };
        let cut = (0..endpoints.nodes).filter(|node| !to.contains(node));
        let changes = [
            Change::Down(cut.map(link).collect()),
            Change::Up(to.iter().copied().map(link).collect()),
        ];
        let commands: Vec<Command> = (changes.into_iter())
            .filter(|change| !matches!(change, Change::Down(l) | Change::Up(l) if l.is_empty()))
            .map(Command::Change)
            .collect();
        for cmd in &commands {
            cmd.check(endpoints)
                .map_err(|e| ClientError::Rejected(e.to_string()))?;
        }
        commands.iter().try_for_each(|cmd| self.send(cmd).map(drop))
    }

    pub fn heal(&self) -> Result<(), ClientError> {
        self.change(Change::Heal)
    }

    /// The lab's `setunreliable`: drop 0.1 and delay 0..13 ms on every datagram (0..26 ms a round trip, as labrpc's), or neither.
    /// Long reordering is left as it is, as in labrpc.
    pub fn set_unreliable(&self, on: bool) -> Result<(), ClientError> {
        if on {
            return self.change(Change::Unreliable {
                long_reordering: false,
            });
        }
        self.change(Change::Drop {
            p: Probability::ZERO,
            target: Target::All,
        })?;
        self.change(Change::Delay {
            delay: DelayRange::ZERO,
            target: Target::All,
        })
    }

    /// The lab's `setlongreordering`: 2/3 of round trips delayed 200..2200 ms (see
    /// [`LONG_REORDER`]), or none.
    pub fn set_long_reordering(&self, on: bool) -> Result<(), ClientError> {
        self.change(Change::Reorder {
            p: if on { LONG_REORDER } else { Probability::ZERO },
            delay: LONG_REORDER_DELAY,
            target: Target::All,
        })
    }

    pub fn stats(&self) -> Result<Stats, ClientError> {
        parse_body(&self.send(&Command::Stats)?)
    }

    pub fn reset_stats(&self) -> Result<(), ClientError> {
        self.send(&Command::ResetStats).map(drop)
    }

    pub fn status(&self) -> Result<Status, ClientError> {
        parse_body(&self.send(&Command::Status)?)
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ClientError> {
    serde_json::from_str(body).map_err(|e| ClientError::Io(e.into()))
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ClientError::NotRunning(addr) => write!(
                f,
                "no proxy is listening on {addr} (start one with 'netproxy run' or 'just cluster')"
            ),
            ClientError::Rejected(message) => f.write_str(message),
            ClientError::Io(e) => write!(f, "control connection failed: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> ClientError {
        ClientError::Io(e)
    }
}
