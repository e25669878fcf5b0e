//! The node's side of the control channel ([`crate::control`]): a non-blocking TCP listener and
//! its connections.
//!
//! Each connection has a read buffer that frames are split off ([`FrameReader`]) and a write
//! buffer ([`OutBuf`]); WRITABLE interest is registered only while output is pending, so an idle
//! connection costs no wakeups. Whatever goes wrong on a connection (a bad frame, a reset, a
//! subscriber too far behind) closes that connection and nothing else.
//!
//! A connection starts with the handshake (`control::authenticate`): the server queues a
//! [`Challenge`] as it accepts, and reads nothing but the client's [`Authenticate`] until its
//! proof checks; a wrong one gets one error and the close.
//!
//! Readiness events only mark a connection; the runtime reads requests ([`ControlServer::serve`])
//! and writes answers ([`ControlServer::flush_all`]) at fixed points of its loop:
//! - answers leave only in `flush_all`, and only once the changes of the loop iteration that
//!   produced them are durable: [`ControlServer::hold`] marks the output so far as waiting for
//!   the storage thread's persist of that iteration, [`ControlServer::release`] frees it when
//!   that persist completes. No answer reports a term, vote or index a crash could still undo;
//! - each connection gets at most [`REQUESTS_PER_TURN`] requests per loop iteration, and none
//!   while more than [`PAUSE_READING_AT`] of its answers wait unread, so a client that writes
//!   without pause neither holds the loop (heartbeats, syncs) nor grows our memory: TCP's flow
//!   control pushes back on it instead;
//! - a client that half-closes (EOF after its last request) still gets every answer; the
//!   connection closes once they are out.

use crate::control::{self, ApplyMsg, Authenticate, Challenge, Request, Response, SnapshotMsg};
use crate::core::{Apply, Index};
use log::{debug, error, warn};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use raft_auth::Secret;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// How much one `read` call takes from a connection.
const READ_CHUNK: usize = 64 * 1024;

/// Output a connection may have pending before it is dropped. Only a subscriber that stopped
/// reading gets near this (requests stop being read at [`PAUSE_READING_AT`]); the harness reads
/// promptly.
const MAX_PENDING_OUTPUT: usize = 256 << 20;

/// Requests one connection may have handled per loop iteration before the others, the peers and
/// the timers get their turn.
const REQUESTS_PER_TURN: usize = 1024;

/// A connection with this much output waiting is not read until the client takes some.
const PAUSE_READING_AT: usize = 4 << 20;

/// Input an unauthenticated client may have buffered: an [`Authenticate`] frame is far smaller,
/// and a stranger must not make us hold a request's worth.
const MAX_HANDSHAKE: usize = 1024;

/// How long the final `ShuttingDown` answer may take to leave.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a connection is closed.
#[derive(Debug)]
pub enum Close {
    PeerClosed,
    Io(io::Error),
    BadFrame(io::Error),
    RequestAfterSubscribe,
    TooFarBehind,
    /// The subscription's stream would skip `expected`: the core did not provide it.
    Gap {
        expected: Index,
        got: Index,
    },
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Close::PeerClosed => write!(f, "closed by the client"),
            Close::Io(e) => write!(f, "{e}"),
            Close::BadFrame(e) => write!(f, "{e}"),
            Close::RequestAfterSubscribe => {
                write!(f, "protocol error: a request after Subscribe")
            }
            Close::TooFarBehind => write!(
                f,
                "more than {} MiB of output pending: the client stopped reading",
                MAX_PENDING_OUTPUT >> 20
            ),
            Close::Gap { expected, got } => {
                write!(f, "apply stream gap: expected index {expected}, got {got}")
            }
        }
    }
}

/// Accumulates bytes read from a connection and splits complete frames off the front.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Bytes before `pos` belong to frames already returned.
    pos: usize,
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete request, if the buffer holds one. An error (oversize or undecodable
    /// frame) means the stream cannot be resynchronised.
    pub fn next_request(&mut self) -> io::Result<Option<Request>> {
        self.next_frame()
    }

    /// The next complete frame of any type (the handshake's, then requests).
    fn next_frame<T: for<'de> serde::Deserialize<'de>>(&mut self) -> io::Result<Option<T>> {
        match control::decode_frame(&self.buf[self.pos..])? {
            Some((value, used)) => {
                self.pos += used;
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }

    fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Drops the bytes of returned frames, so the buffer holds at most one partial frame plus
    /// the latest read.
    fn compact(&mut self) {
        self.buf.drain(..self.pos);
        self.pos = 0;
    }
}

/// Encoded frames waiting for the socket to take them, and for the persists they report on.
///
/// Offsets are counted over everything ever pushed: `buf` starts at `base`.
#[derive(Debug, Default)]
pub struct OutBuf {
    buf: Vec<u8>,
    /// Bytes before `pos` have been written.
    pos: usize,
    base: u64,
    /// Bytes before this offset may be written.
    released: u64,
    /// (persist number, end offset): the bytes before `end` wait for that persist. Both
    /// numbers increase along the queue.
    holds: VecDeque<(u64, u64)>,
}

impl OutBuf {
    pub fn push(&mut self, frame: &[u8]) {
        self.buf.extend_from_slice(frame);
    }

    /// Bytes not yet written, released or not.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Bytes released and not yet written.
    fn writable(&self) -> usize {
        (self.released - self.base) as usize - self.pos
    }

    /// Everything pushed so far waits for persist `seq` (and every one before it);
    /// `completed` persists are durable already.
    pub fn hold(&mut self, seq: u64, completed: u64) {
        let end = self.end();
        if end == self.released || self.holds.back().is_some_and(|&(_, e)| e == end) {
            return;
        }
        // Bytes never overtake earlier ones: a later answer waits for whatever an earlier one
        // in the same stream waits for.
        let seq = seq.max(self.holds.back().map_or(0, |&(s, _)| s));
        match self.holds.back_mut() {
            Some(last) if last.0 == seq => last.1 = end,
            _ => self.holds.push_back((seq, end)),
        }
        self.release(completed);
    }

    /// Persists through `completed` are durable: what waited for them may be written.
    pub fn release(&mut self, completed: u64) {
        while let Some(&(seq, end)) = self.holds.front() {
            if seq > completed {
                break;
            }
            self.released = end;
            self.holds.pop_front();
        }
    }

    /// Writes the released bytes until done or the socket would block. `Ok(true)` when no
    /// released byte is left.
    pub fn flush_to(&mut self, dst: &mut impl Write) -> io::Result<bool> {
        while self.writable() > 0 {
            let until = (self.released - self.base) as usize;
            match dst.write(&self.buf[self.pos..until]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Reclaim the written prefix only once it dominates, so each byte moves O(1) times.
        if self.pos == self.buf.len() || self.pos > self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        Ok(self.writable() == 0)
    }

    /// Everything pushed may be written (the node is stopping with every persist durable).
    fn release_all(&mut self) {
        self.holds.clear();
        self.released = self.end();
    }
}

/// Where a subscriber's stream stands. Items can be offered twice (once by the replay, once
/// in the `Ready` of the same loop iteration) or start before the requested index; the stream
/// carries each index once, in order, without gaps, except that a snapshot jumps to its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// The index this subscriber must receive next.
    next: Index,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    Send,
    /// Already sent, or before the requested start.
    Skip,
    Gap,
}

impl Subscription {
    pub fn new(from: Index) -> Subscription {
        // Index 0 is the empty prefix: the first entry is 1.
        Subscription { next: from.max(1) }
    }

    pub fn offer(&mut self, item: &Apply) -> Offer {
        let index = item.index();
        if index < self.next {
            return Offer::Skip;
        }
        match item {
            Apply::Entry(_) if index > self.next => Offer::Gap,
            // A snapshot stands for every entry up to its index.
            Apply::Entry(_) | Apply::Snapshot(_) => {
                self.next = index + 1;
                Offer::Send
            }
        }
    }
}

pub struct Connection {
    token: Token,
    stream: TcpStream,
    client: SocketAddr,
    reader: FrameReader,
    out: OutBuf,
    subscription: Option<Subscription>,
    /// The nonce this connection was challenged with, until the client's proof checks.
    challenge: Option<Vec<u8>>,
    /// Whether WRITABLE interest is registered: exactly while output waits for the socket.
    wants_write: bool,
    /// False from a write that would block until the next WRITABLE event.
    writable: bool,
    /// The socket may hold unread input (edge-triggered: true from a READABLE event until a
    /// read would block).
    readable: bool,
    /// The client half-closed: nothing more to read; close once the output is out.
    eof: bool,
}

/// How a connection's turn at reading ended.
enum Turn {
    /// The socket would block (or is at EOF): wait for the next READABLE event.
    Drained,
    /// Input may be left: read more next iteration.
    More,
}

impl Connection {
    pub fn token(&self) -> Token {
        self.token
    }

    pub fn reply(&mut self, resp: &Response) {
        self.out.push(&control::encode_frame(resp));
    }

    /// Turns this connection into an apply stream starting at `from`, first replaying
    /// `replay` (what was already applied from `from` on, see `Raft::applied`).
    pub fn subscribe(&mut self, from: Index, replay: &[Apply]) -> Result<(), Close> {
        let mut sub = Subscription::new(from);
        for item in replay {
            push_apply(&mut sub, &mut self.out, item, || apply_frame(item))?;
        }
        self.subscription = Some(sub);
        Ok(())
    }

    /// Whether this connection's input should be read now: it may have some, and the client
    /// is taking its answers.
    fn wants_reading(&self) -> bool {
        self.readable && !self.eof && self.out.pending() <= PAUSE_READING_AT
    }

    /// Hands up to [`REQUESTS_PER_TURN`] requests to `handle`, each as soon as its frame is
    /// complete, reading the socket until it would block or the turn is used up.
    fn read_turn(
        &mut self,
        scratch: &mut [u8],
        secret: &Secret,
        handle: &mut impl FnMut(&mut Connection, Request) -> Result<(), Close>,
    ) -> Result<Turn, Close> {
        let mut handled = 0;
        loop {
            self.authenticate(secret)?;
            if self.eof {
                // Refused: the error goes out, then the connection closes.
                return Ok(Turn::Drained);
            }
            while self.challenge.is_none() {
                let Some(req) = self.reader.next_request().map_err(Close::BadFrame)? else {
                    break;
                };
                // After Subscribe the connection only carries Apply frames (control.rs).
                if self.subscription.is_some() {
                    return Err(Close::RequestAfterSubscribe);
                }
                handle(self, req)?;
                handled += 1;
                if handled == REQUESTS_PER_TURN || self.out.pending() > PAUSE_READING_AT {
                    self.check_backlog()?;
                    return Ok(Turn::More);
                }
            }
            self.check_backlog()?;
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.eof = true;
                    // A stream nobody will read: its answers so far, then the close.
                    self.subscription = None;
                    return Ok(Turn::Drained);
                }
                Ok(n) => self.reader.push(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Turn::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Close::Io(e)),
            }
        }
    }

    /// Checks the client's [`Authenticate`] frame once it is complete. A wrong proof gets one
    /// error and marks the connection as at its end, so it closes once that is out.
    fn authenticate(&mut self, secret: &Secret) -> Result<(), Close> {
        let Some(nonce) = &self.challenge else {
            return Ok(());
        };
        let frame = self.reader.next_frame().map_err(Close::BadFrame)?;
        let Some(Authenticate { proof }) = frame else {
            if self.reader.buffered() > MAX_HANDSHAKE {
                return Err(Close::BadFrame(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("more than {MAX_HANDSHAKE} bytes before authenticating"),
                )));
            }
            return Ok(());
        };
        if secret.check_proof(nonce, &proof) {
            self.challenge = None;
            self.reply(&Response::Authenticated);
        } else {
            warn!(
                "control connection from {}: {}",
                self.client,
                raft_auth::WRONG_SECRET
            );
            self.reply(&Response::Error {
                message: raft_auth::WRONG_SECRET.to_string(),
            });
            self.eof = true;
        }
        Ok(())
    }

    fn check_backlog(&self) -> Result<(), Close> {
        if self.out.pending() > MAX_PENDING_OUTPUT {
            return Err(Close::TooFarBehind);
        }
        Ok(())
    }

    /// Writes what the socket takes and keeps WRITABLE interest registered exactly while
    /// something is left. A half-closed connection is done once everything is out.
    fn flush(&mut self, registry: &Registry) -> Result<(), Close> {
        let done = self.out.flush_to(&mut self.stream).map_err(Close::Io)?;
        if done && self.eof && self.out.pending() == 0 {
            return Err(Close::PeerClosed);
        }
        self.writable = done;
        if done == self.wants_write {
            let interest = if done {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            registry
                .reregister(&mut self.stream, self.token, interest)
                .map_err(Close::Io)?;
            self.wants_write = !done;
        }
        Ok(())
    }
}

/// Appends `item`'s frame to a subscriber's output if its stream is due it.
fn push_apply(
    sub: &mut Subscription,
    out: &mut OutBuf,
    item: &Apply,
    frame: impl FnOnce() -> Vec<u8>,
) -> Result<(), Close> {
    match sub.offer(item) {
        Offer::Send => out.push(&frame()),
        Offer::Skip => {}
        Offer::Gap => {
            return Err(Close::Gap {
                expected: sub.next,
                got: item.index(),
            })
        }
    }
    Ok(())
}

fn apply_frame(item: &Apply) -> Vec<u8> {
    let resp = match item {
        Apply::Entry(entry) => Response::Apply(ApplyMsg {
            index: entry.index,
            term: entry.term,
            command: entry.command.clone(),
        }),
        Apply::Snapshot(snapshot) => Response::ApplySnapshot(SnapshotMsg {
            index: snapshot.last_included_index,
            term: snapshot.last_included_term,
            data: snapshot.data.clone(),
        }),
    };
    control::encode_frame(&resp)
}

pub struct ControlServer {
    listener: TcpListener,
    conns: HashMap<Token, Connection>,
    next_token: usize,
    /// Every connection reads into this, then keeps only what it received.
    scratch: Box<[u8]>,
    /// What every client must prove it holds.
    secret: Secret,
}

impl ControlServer {
    /// Binds the listener; connections get tokens `first_conn_token` and up.
    pub fn bind(
        addr: SocketAddr,
        registry: &Registry,
        listener_token: Token,
        first_conn_token: usize,
        secret: Secret,
    ) -> io::Result<ControlServer> {
        let mut listener = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("binding TCP {addr}: {e}")))?;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        Ok(ControlServer {
            listener,
            conns: HashMap::new(),
            next_token: first_conn_token,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            secret,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts every pending connection.
    pub fn accept(&mut self, registry: &Registry) {
        loop {
            let (mut stream, client) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("accepting a control connection: {e}");
                    return;
                }
            };
            let token = Token(self.next_token);
            self.next_token += 1;
            // Answers are small and latency-bound.
            if let Err(e) = stream.set_nodelay(true) {
                debug!("control connection from {client}: set_nodelay: {e}");
            }
            if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
                warn!("registering a control connection from {client}: {e}");
                continue;
            }
            debug!("control connection from {client}");
            let nonce = raft_auth::nonce().to_vec();
            let mut out = OutBuf::default();
            out.push(&control::encode_frame(&Challenge {
                nonce: nonce.clone(),
            }));
            // The challenge reports nothing a sync could undo: it may leave at once.
            out.hold(0, 0);
            self.conns.insert(
                token,
                Connection {
                    token,
                    stream,
                    client,
                    reader: FrameReader::default(),
                    out,
                    subscription: None,
                    challenge: Some(nonce),
                    wants_write: false,
                    writable: true,
                    readable: false,
                    eof: false,
                },
            );
        }
    }

    /// Notes a readiness event of a connection; [`ControlServer::serve`] and
    /// [`ControlServer::flush_all`] act on it.
    pub fn on_event(&mut self, event: &Event) {
        // The connection may have been closed earlier in this batch of events.
        let Some(conn) = self.conns.get_mut(&event.token()) else {
            return;
        };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            conn.readable = true;
        }
        if event.is_writable() {
            conn.writable = true;
        }
    }

    /// Whether some connection has input to read now (the runtime then polls without waiting).
    pub fn has_input(&self) -> bool {
        self.conns.values().any(Connection::wants_reading)
    }

    /// Gives every connection with input its turn: its requests go to `handle`, which answers
    /// through the connection (the answers leave with the next [`ControlServer::flush_all`]).
    pub fn serve(
        &mut self,
        registry: &Registry,
        mut handle: impl FnMut(&mut Connection, Request) -> Result<(), Close>,
    ) {
        let mut failed = Vec::new();
        for conn in self.conns.values_mut() {
            if !conn.wants_reading() {
                continue;
            }
            match conn.read_turn(&mut self.scratch, &self.secret, &mut handle) {
                Ok(Turn::More) => {}
                Ok(Turn::Drained) => {
                    conn.readable = false;
                    if conn.eof && conn.out.pending() == 0 {
                        failed.push((conn.token, Close::PeerClosed));
                    }
                }
                Err(why) => failed.push((conn.token, why)),
            }
        }
        for (token, why) in failed {
            self.close(registry, token, why);
        }
    }

    /// Streams newly applied items to every subscriber.
    pub fn deliver(&mut self, registry: &Registry, items: &[Apply]) {
        if items.is_empty() {
            return;
        }
        // Encoded once, shared by every subscriber that needs it.
        let mut frames: Vec<Option<Vec<u8>>> = vec![None; items.len()];
        let mut failed = Vec::new();
        for conn in self.conns.values_mut() {
            let Some(sub) = conn.subscription.as_mut() else {
                continue;
            };
            let result = items
                .iter()
                .zip(frames.iter_mut())
                .try_for_each(|(item, f)| {
                    push_apply(sub, &mut conn.out, item, || {
                        f.get_or_insert_with(|| apply_frame(item)).clone()
                    })
                });
            if let Err(why) = result.and_then(|()| conn.check_backlog()) {
                failed.push((conn.token, why));
            }
        }
        for (token, why) in failed {
            self.close(registry, token, why);
        }
    }

    /// Output pushed so far waits for persist `seq`; persists through `completed` are durable.
    pub fn hold(&mut self, seq: u64, completed: u64) {
        for conn in self.conns.values_mut() {
            conn.out.hold(seq, completed);
        }
    }

    /// Persists through `completed` are durable: the output that waited for them may leave.
    pub fn release(&mut self, completed: u64) {
        for conn in self.conns.values_mut() {
            conn.out.release(completed);
        }
    }

    /// Flushes every connection with released output whose socket may take more.
    pub fn flush_all(&mut self, registry: &Registry) {
        let mut failed = Vec::new();
        for conn in self.conns.values_mut() {
            if conn.out.writable() > 0 && conn.writable {
                if let Err(why) = conn.flush(registry) {
                    failed.push((conn.token, why));
                }
            }
        }
        for (token, why) in failed {
            self.close(registry, token, why);
        }
    }

    /// Delivers the rest of `token`'s output (the `ShuttingDown` answer), blocking briefly:
    /// the process exits right after.
    pub fn finish_shutdown(&mut self, registry: &Registry, token: Token) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let _ = registry.deregister(&mut conn.stream);
        conn.out.release_all();
        let mut stream = std::net::TcpStream::from(conn.stream);
        let result = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_write_timeout(Some(SHUTDOWN_FLUSH_TIMEOUT)))
            .and_then(|()| conn.out.flush_to(&mut stream).map(drop));
        if let Err(e) = result {
            debug!("control connection from {}: final flush: {e}", conn.client);
        }
    }

    fn close(&mut self, registry: &Registry, token: Token, why: Close) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let _ = registry.deregister(&mut conn.stream);
        let client = conn.client;
        match why {
            Close::PeerClosed => debug!("control connection from {client} {why}"),
            Close::Io(_) | Close::BadFrame(_) | Close::RequestAfterSubscribe => {
                debug!("control connection from {client} closed: {why}")
            }
            Close::TooFarBehind => warn!("dropped control connection from {client}: {why}"),
            Close::Gap { .. } => error!("dropped subscriber {client}: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::MAX_FRAME;
    use crate::core::{Entry, EntryKind, Membership, Snapshot};

    /// Hands out its bytes in reads of at most `chunk` bytes.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn requests() -> Vec<Request> {
        vec![
            Request::GetState,
            Request::Start {
                command: b"hello".to_vec(),
            },
            Request::Start {
                command: vec![7; 100_000],
            },
            Request::Subscribe { from: 3 },
            Request::Snapshot {
                index: 9,
                data: vec![1; 70_000],
            },
            Request::Shutdown,
        ]
    }

    fn encode_all(reqs: &[Request]) -> Vec<u8> {
        reqs.iter().flat_map(control::encode_frame).collect()
    }

    /// Reads `src` to WouldBlock, collecting requests after every read.
    fn read_all(reader: &mut FrameReader, src: &mut impl Read) -> io::Result<Vec<Request>> {
        let mut got = Vec::new();
        let mut scratch = vec![0u8; 1 << 20];
        loop {
            match src.read(&mut scratch) {
                Ok(n) => reader.push(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
                Err(e) => return Err(e),
            }
            while let Some(req) = reader.next_request()? {
                got.push(req);
            }
        }
    }

    #[test]
    fn splits_several_frames_from_one_read() {
        let bytes = encode_all(&requests());
        let mut reader = FrameReader::default();
        let mut src = Chunked {
            data: &bytes,
            chunk: bytes.len(),
        };
        assert_eq!(read_all(&mut reader, &mut src).unwrap(), requests());
    }

    #[test]
    fn reassembles_frames_split_across_reads() {
        let bytes = encode_all(&requests());
        for chunk in [1, 3, 4, 5, 999] {
            let mut reader = FrameReader::default();
            let mut src = Chunked {
                data: &bytes,
                chunk,
            };
            assert_eq!(
                read_all(&mut reader, &mut src).unwrap(),
                requests(),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let bytes = control::encode_frame(&Request::GetState);
        let mut reader = FrameReader::default();
        let (head, tail) = bytes.split_at(bytes.len() - 1);
        reader.push(head);
        assert_eq!(reader.next_request().unwrap(), None);
        reader.push(tail);
        assert_eq!(reader.next_request().unwrap(), Some(Request::GetState));
        assert_eq!(reader.next_request().unwrap(), None);
    }

    #[test]
    fn an_oversize_frame_is_an_error_before_its_body_arrives() {
        let header = ((MAX_FRAME + 1) as u32).to_be_bytes();
        let mut reader = FrameReader::default();
        reader.push(&header);
        let err = reader.next_request().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn an_undecodable_frame_is_an_error() {
        let mut bytes = 3u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"\xc1\xc1\xc1");
        let mut reader = FrameReader::default();
        reader.push(&bytes);
        assert!(reader.next_request().is_err());
    }

    /// Accepts at most `budget` bytes in total, then reports WouldBlock.
    struct Throttled {
        written: Vec<u8>,
        budget: usize,
    }

    impl Write for Throttled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.budget).min(7);
            self.written.extend_from_slice(&buf[..n]);
            self.budget -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn out_buf_keeps_what_the_socket_did_not_take() {
        let frames: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 10]).collect();
        let mut out = OutBuf::default();
        let mut dst = Throttled {
            written: Vec::new(),
            budget: 25,
        };
        for f in &frames[..5] {
            out.push(f);
        }
        out.hold(0, 0);
        assert!(!out.flush_to(&mut dst).unwrap());
        assert_eq!(out.pending(), 25);
        for f in &frames[5..] {
            out.push(f);
        }
        out.hold(0, 0);
        dst.budget = 1000;
        assert!(out.flush_to(&mut dst).unwrap());
        assert_eq!(out.pending(), 0);
        assert_eq!(dst.written, frames.concat());
    }

    /// An answer leaves only once the persist it reports on is durable, and never ahead of an
    /// earlier answer that still waits.
    #[test]
    fn out_buf_holds_answers_until_their_persist_is_durable() {
        let mut out = OutBuf::default();
        let mut dst = Throttled {
            written: Vec::new(),
            budget: 1000,
        };
        out.push(b"a");
        out.hold(2, 1);
        out.push(b"b");
        // Waits for persist 1 only, but comes after "a".
        out.hold(1, 1);
        assert!(out.flush_to(&mut dst).unwrap());
        assert!(dst.written.is_empty());
        assert_eq!(out.pending(), 2);
        out.release(2);
        out.push(b"c");
        out.hold(3, 2);
        assert!(out.flush_to(&mut dst).unwrap());
        assert_eq!(dst.written, b"ab");
        out.release(3);
        assert!(out.flush_to(&mut dst).unwrap());
        assert_eq!(dst.written, b"abc");
        assert_eq!(out.pending(), 0);
    }

    fn entry(index: Index) -> Apply {
        Apply::Entry(Entry {
            term: 1,
            index,
            command: vec![index as u8],
            kind: EntryKind::Command,
        })
    }

    fn snapshot(index: Index) -> Apply {
        Apply::Snapshot(Snapshot {
            last_included_index: index,
            last_included_term: 1,
            data: vec![index as u8; 3],
            membership: Membership::voters([0]),
        })
    }

    fn secret() -> Secret {
        Secret::from_bytes(&[7; 32])
    }

    /// A server with one accepted connection, and that connection's client end, before the
    /// handshake.
    fn accepted() -> (mio::Poll, ControlServer, std::net::TcpStream) {
        let mut poll = mio::Poll::new().unwrap();
        let loopback = "127.0.0.1:0".parse().unwrap();
        let mut server =
            ControlServer::bind(loopback, poll.registry(), Token(0), 1, secret()).unwrap();
        let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let mut events = mio::Events::with_capacity(8);
        while server.conns.is_empty() {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            assert!(!events.is_empty(), "the connection never arrived");
            server.accept(poll.registry());
        }
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (poll, server, client)
    }

    /// The client's side of the handshake with `proof_of(nonce)`, the server serving it;
    /// returns the server's answer.
    fn handshake(
        poll: &mut mio::Poll,
        server: &mut ControlServer,
        client: &mut std::net::TcpStream,
        proof_of: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Response {
        server.flush_all(poll.registry());
        let Challenge { nonce } = control::read_frame(client).unwrap();
        let proof = proof_of(&nonce);
        control::write_frame(client, &Authenticate { proof }).unwrap();
        while server
            .conns
            .values()
            .any(|c| c.challenge.is_some() && !c.eof)
        {
            iteration(poll, server, Duration::from_secs(5), |_, req| {
                panic!("a request before the handshake: {req:?}")
            });
        }
        server.flush_all(poll.registry());
        control::read_frame(client).unwrap()
    }

    /// A server with one accepted and authenticated connection, and its client end.
    fn connected() -> (mio::Poll, ControlServer, std::net::TcpStream) {
        let (mut poll, mut server, mut client) = accepted();
        let answer = handshake(&mut poll, &mut server, &mut client, |nonce| {
            secret().proof(nonce).to_vec()
        });
        assert_eq!(answer, Response::Authenticated);
        client.set_read_timeout(None).unwrap();
        (poll, server, client)
    }

    /// A client with another secret gets one clear error, then the close; nothing it sends
    /// reaches the runtime.
    #[test]
    fn a_wrong_proof_gets_one_error_and_the_close() {
        let (mut poll, mut server, mut client) = accepted();
        let other = Secret::from_bytes(&[8; 32]);
        let answer = handshake(&mut poll, &mut server, &mut client, |nonce| {
            other.proof(nonce).to_vec()
        });
        assert_eq!(
            answer,
            Response::Error {
                message: raft_auth::WRONG_SECRET.to_string()
            }
        );
        assert!(server.conns.is_empty(), "closed once its error was out");
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    /// A request in place of the handshake is not served: the connection closes.
    #[test]
    fn a_request_before_the_handshake_closes_the_connection() {
        let (mut poll, mut server, mut client) = accepted();
        control::write_frame(&mut client, &Request::Shutdown).unwrap();
        while !server.conns.is_empty() {
            iteration(&mut poll, &mut server, Duration::from_secs(5), |_, req| {
                panic!("served {req:?} before the handshake")
            });
        }
    }

    /// A stranger cannot make the server buffer more than a handshake's worth.
    #[test]
    fn an_unauthenticated_client_may_not_send_much() {
        let (mut poll, mut server, mut client) = accepted();
        let mut header = (MAX_FRAME as u32).to_be_bytes().to_vec();
        header.extend_from_slice(&[0; 2 * MAX_HANDSHAKE]);
        client.write_all(&header).unwrap();
        while !server.conns.is_empty() {
            iteration(&mut poll, &mut server, Duration::from_secs(5), |_, req| {
                panic!("served {req:?} before the handshake")
            });
        }
    }

    /// One loop iteration's worth of the server's side, as the runtime does it: poll (without
    /// waiting while input is left), note the events, serve the requests. Returns how many
    /// requests `handle` got.
    fn iteration(
        poll: &mut mio::Poll,
        server: &mut ControlServer,
        wait: Duration,
        mut handle: impl FnMut(&mut Connection, Request) -> Result<(), Close>,
    ) -> usize {
        let mut events = mio::Events::with_capacity(8);
        let timeout = if server.has_input() {
            Duration::ZERO
        } else {
            wait
        };
        poll.poll(&mut events, Some(timeout)).unwrap();
        for event in events.iter() {
            server.on_event(event);
        }
        let mut handled = 0;
        server.serve(poll.registry(), |conn, req| {
            handled += 1;
            handle(conn, req)
        });
        // As a node with nothing to persist: the answers may leave at once.
        server.hold(0, 0);
        handled
    }

    /// The complete frames the client can read now, decoded; a partial one stays in `partial`.
    fn read_available(client: &mut std::net::TcpStream, partial: &mut Vec<u8>) -> Vec<Response> {
        let mut buf = vec![0u8; 1 << 16];
        client.set_nonblocking(true).unwrap();
        loop {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => partial.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        client.set_nonblocking(false).unwrap();
        let mut got = Vec::new();
        let mut at = 0;
        while let Some((resp, used)) = control::decode_frame(&partial[at..]).unwrap() {
            got.push(resp);
            at += used;
        }
        partial.drain(..at);
        got
    }

    const STARTED: Response = Response::Started {
        index: 7,
        term: 3,
        is_leader: true,
    };

    /// An answer leaves in `flush_all`, which the runtime calls after it made the iteration's
    /// changes durable, even when the request arrives in an event that is also WRITABLE.
    #[test]
    fn answers_leave_only_in_flush_all() {
        let (mut poll, mut server, mut client) = connected();
        let token = *server.conns.keys().next().unwrap();
        // Fill the socket until output stays pending and WRITABLE interest is registered.
        let filler = Response::Error {
            message: "x".repeat(1000),
        };
        while !server.conns[&token].wants_write {
            server.conns.get_mut(&token).unwrap().reply(&filler);
            server.hold(0, 0);
            server.flush_all(poll.registry());
        }
        control::write_frame(&mut client, &Request::GetState).unwrap();
        // The client takes all it can, so the next event is READABLE and WRITABLE at once.
        let mut partial = Vec::new();
        let reply = |conn: &mut Connection, _| {
            conn.reply(&STARTED);
            Ok(())
        };
        loop {
            read_available(&mut client, &mut partial);
            if iteration(&mut poll, &mut server, Duration::from_secs(5), reply) == 1 {
                break;
            }
            server.flush_all(poll.registry());
        }
        assert!(
            !read_available(&mut client, &mut partial).contains(&STARTED),
            "answered before flush_all"
        );
        loop {
            server.flush_all(poll.registry());
            if read_available(&mut client, &mut partial).contains(&STARTED) {
                break;
            }
            iteration(&mut poll, &mut server, Duration::from_secs(5), reply);
        }
    }

    /// A client that half-closes after its requests gets every answer, then the close.
    #[test]
    fn a_half_closed_client_gets_its_answers() {
        let (mut poll, mut server, mut client) = connected();
        control::write_frame(&mut client, &Request::GetState).unwrap();
        control::write_frame(&mut client, &Request::GetState).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut handled = 0;
        while !server.conns.values().all(|c| c.eof) {
            handled += iteration(&mut poll, &mut server, Duration::from_secs(5), |conn, _| {
                conn.reply(&STARTED);
                Ok(())
            });
        }
        assert_eq!(handled, 2);
        server.flush_all(poll.registry());
        assert!(server.conns.is_empty(), "closed once its answers were out");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, control::encode_frame(&STARTED).repeat(2));
    }

    /// A client that writes requests without pause and never reads its answers gets a turn of
    /// requests per iteration, then none once its answers pile up: it neither holds the loop
    /// nor grows the server's memory past the pause threshold, and it is not dropped.
    #[test]
    fn a_flooding_client_is_paced_and_pushed_back() {
        let (mut poll, mut server, client) = connected();
        let flooder = std::thread::spawn(move || {
            let mut client = client;
            let frame = control::encode_frame(&Request::GetState);
            let batch = frame.repeat(10_000);
            // Ends when the server closes the connection.
            while client.write_all(&batch).is_ok() {}
        });
        let answer = Response::Error {
            message: "y".repeat(100),
        };
        let mut paused = false;
        for _ in 0..100_000 {
            let handled = iteration(&mut poll, &mut server, Duration::from_secs(5), |conn, _| {
                conn.reply(&answer);
                Ok(())
            });
            assert!(
                handled <= REQUESTS_PER_TURN,
                "{handled} requests in one turn"
            );
            server.flush_all(poll.registry());
            let conn = server.conns.values().next().expect("still connected");
            assert!(
                conn.out.pending() <= PAUSE_READING_AT + 200,
                "{}",
                conn.out.pending()
            );
            if !server.has_input() {
                paused = true;
                break;
            }
        }
        assert!(paused, "never stopped reading the flooding client");
        drop(server);
        flooder.join().unwrap();
    }

    /// The core counts items as applied once they are queued in its `Ready`, so a Subscribe
    /// handled before that `Ready` is taken replays them and then is offered them again. A
    /// replay from a compacted index starts with the snapshot.
    #[test]
    fn a_subscriber_gets_replayed_and_ready_items_once_each() {
        let (mut poll, mut server, mut client) = connected();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        control::write_frame(&mut client, &Request::Subscribe { from: 1 }).unwrap();
        let items = [snapshot(2), entry(3), entry(4)];
        while iteration(
            &mut poll,
            &mut server,
            Duration::from_secs(5),
            |conn, req| {
                assert_eq!(req, Request::Subscribe { from: 1 });
                conn.subscribe(1, &items[..2])
            },
        ) == 0
        {}
        // The Ready taken after that batch of events, then the next one.
        server.deliver(poll.registry(), &items[..2]);
        server.deliver(poll.registry(), &items[2..]);
        server.hold(0, 0);
        server.flush_all(poll.registry());

        let expected = [
            Response::ApplySnapshot(SnapshotMsg {
                index: 2,
                term: 1,
                data: vec![2; 3],
            }),
            Response::Apply(ApplyMsg {
                index: 3,
                term: 1,
                command: vec![3],
            }),
            Response::Apply(ApplyMsg {
                index: 4,
                term: 1,
                command: vec![4],
            }),
        ];
        for want in expected {
            let got: Response = control::read_frame(&mut client).unwrap();
            assert_eq!(got, want);
        }
        client
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(
            control::read_frame::<Response>(&mut client).is_err(),
            "an item was sent twice"
        );
    }

    #[test]
    fn subscription_sends_each_index_once_in_order() {
        let mut sub = Subscription::new(1);
        let offers: Vec<Offer> = [1, 2, 2, 1, 3]
            .into_iter()
            .map(|i| sub.offer(&entry(i)))
            .collect();
        assert_eq!(
            offers,
            [
                Offer::Send,
                Offer::Send,
                Offer::Skip,
                Offer::Skip,
                Offer::Send
            ]
        );
        assert_eq!(sub.offer(&entry(5)), Offer::Gap);
        assert_eq!(sub.offer(&entry(4)), Offer::Send);
    }

    #[test]
    fn subscription_skips_entries_before_from() {
        let mut sub = Subscription::new(3);
        assert_eq!(sub.offer(&entry(1)), Offer::Skip);
        assert_eq!(sub.offer(&entry(2)), Offer::Skip);
        assert_eq!(sub.offer(&entry(3)), Offer::Send);
    }

    #[test]
    fn subscription_from_zero_starts_at_one() {
        let mut sub = Subscription::new(0);
        assert_eq!(sub.offer(&entry(1)), Offer::Send);
    }

    /// A snapshot stands for every entry through its index: it may jump ahead, and it is
    /// skipped when the stream is already past it.
    #[test]
    fn subscription_jumps_to_a_snapshot() {
        let mut sub = Subscription::new(1);
        assert_eq!(sub.offer(&entry(1)), Offer::Send);
        assert_eq!(sub.offer(&snapshot(5)), Offer::Send);
        assert_eq!(sub.offer(&entry(5)), Offer::Skip);
        assert_eq!(sub.offer(&snapshot(4)), Offer::Skip);
        assert_eq!(sub.offer(&snapshot(5)), Offer::Skip);
        assert_eq!(sub.offer(&entry(6)), Offer::Send);
        assert_eq!(sub.offer(&entry(8)), Offer::Gap);
    }
}
