//! The control plane's sockets: a TCP listener and its connections, served inside the event
//! loop. Each connection carries one request line and gets one reply, then is closed.
//!
//! The daemon greets each connection with `challenge <nonce>` (hex); the request line must be
//! `auth <proof> <command>`, the proof the cluster secret's answer to that nonce
//! (`raft_auth::Secret::proof`). A wrong or missing proof gets an error and nothing is done.

use log::warn;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use raft_auth::{Secret, MAC_LEN, NONCE_LEN};
use std::collections::HashMap;
use std::io::{self, Read, Write};

/// Longer requests are rejected: every valid command is far shorter.
const MAX_REQUEST: usize = 4096;

pub struct Control {
    listener: TcpListener,
    connections: HashMap<Token, Connection>,
    /// Connection `k` gets `Token(first_token + k)`; tokens are never reused.
    first_token: usize,
    accepted: usize,
    /// What every client must prove it holds.
    secret: Secret,
}

struct Connection {
    stream: TcpStream,
    /// This connection's challenge.
    nonce: [u8; NONCE_LEN],
    request: Vec<u8>,
    /// Set once the request outgrew `MAX_REQUEST`; the rest of it is discarded.
    too_long: bool,
    /// Empty until the request is complete.
    reply: Vec<u8>,
    written: usize,
}

impl Control {
    /// Control connections take the tokens from `first_token` up.
    pub fn new(listener: TcpListener, first_token: usize, secret: Secret) -> Control {
        Control {
            listener,
            connections: HashMap::new(),
            first_token,
            accepted: 0,
            secret,
        }
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.first_token
    }

    pub fn accept(&mut self, registry: &Registry) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let token = Token(self.first_token + self.accepted);
                    self.accepted += 1;
                    let nonce = raft_auth::nonce();
                    // A fresh connection's send buffer is empty: the line goes out whole.
                    let challenge = format!("challenge {}\n", raft_auth::hex(&nonce));
                    match stream.write(challenge.as_bytes()) {
                        Ok(len) if len == challenge.len() => {}
                        result => {
                            warn!("control: cannot send the challenge: {result:?}");
                            continue;
                        }
                    }
                    if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
                        warn!("control: cannot register a connection: {e}");
                        continue;
                    }
                    let connection = Connection {
                        stream,
                        nonce,
                        request: Vec::new(),
                        too_long: false,
                        reply: Vec::new(),
                        written: 0,
                    };
                    self.connections.insert(token, connection);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Typically out of file descriptors: the pending connection stays queued
                    // and is retried when the next one arrives.
                    warn!("control: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Progresses connection `token`: reads its request, answers it with `execute` once the
    /// line is complete, writes the reply, and closes the connection when done or broken.
    pub fn ready(
        &mut self,
        token: Token,
        registry: &Registry,
        execute: impl FnOnce(&str) -> String,
    ) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let finished =
            connection
                .progress(&self.secret, execute)
                .and_then(|progress| match progress {
                    Progress::Reading => Ok(false),
                    // The reply did not fit the socket buffer: go on when it drains.
                    Progress::Writing => registry
                        .reregister(&mut connection.stream, token, Interest::WRITABLE)
                        .map(|()| false),
                    Progress::Done => Ok(true),
                });
        let done = finished.unwrap_or_else(|e| {
            warn!("control: connection failed: {e}");
            true
        });
        if done {
            if let Some(mut connection) = self.connections.remove(&token) {
                let _ = registry.deregister(&mut connection.stream);
            }
        }
    }
}

enum Progress {
    Reading,
    Writing,
    Done,
}

impl Connection {
    fn progress(
        &mut self,
        secret: &Secret,
        execute: impl FnOnce(&str) -> String,
    ) -> io::Result<Progress> {
        if self.reply.is_empty() {
            self.reply = match self.read_request()? {
                Request::Incomplete => return Ok(Progress::Reading),
                Request::Abandoned => return Ok(Progress::Done),
                Request::TooLong => {
                    format!("error: request longer than {MAX_REQUEST} bytes\n").into()
                }
                Request::Complete => match std::str::from_utf8(&self.request) {
                    Ok(line) => match authenticated(secret, &self.nonce, line) {
                        Ok(command) => execute(command).into(),
                        Err(message) => {
                            let client = self.stream.peer_addr();
                            let client = client.map_or("?".to_string(), |a| a.to_string());
                            warn!("control: connection from {client}: {message}");
                            format!("error: {message}\n").into()
                        }
                    },
                    Err(_) => b"error: request is not UTF-8\n".to_vec(),
                },
            };
        }
        while self.written < self.reply.len() {
            match self.stream.write(&self.reply[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(len) => self.written += len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Progress::Writing),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Progress::Done)
    }

    /// Reads until the request line is complete (newline or EOF). Of an over-long request, what
    /// has arrived is read and discarded before the error is sent: closing a socket with unread
    /// data would reset the connection, and the client might lose the error.
    fn read_request(&mut self) -> io::Result<Request> {
        let mut chunk = [0; 1024];
        loop {
            let len = match self.stream.read(&mut chunk) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(if self.too_long {
                        Request::TooLong
                    } else {
                        Request::Incomplete
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let data = &chunk[..len];
            let newline = data.iter().position(|&b| b == b'\n');
            if !self.too_long {
                self.request
                    .extend_from_slice(&data[..newline.unwrap_or(len)]);
                if self.request.len() > MAX_REQUEST {
                    self.too_long = true;
                    self.request = Vec::new();
                }
            }
            if newline.is_some() || len == 0 {
                return Ok(if self.too_long {
                    Request::TooLong
                } else if len == 0 && self.request.is_empty() {
                    Request::Abandoned
                } else {
                    Request::Complete
                });
            }
        }
    }
}

/// The command of an `auth <proof> <command>` line whose proof answers `nonce`.
fn authenticated<'a>(secret: &Secret, nonce: &[u8], line: &'a str) -> Result<&'a str, String> {
    let (proof, command) = line
        .strip_prefix("auth ")
        .map(|rest| rest.split_once(' ').unwrap_or((rest, "")))
        .ok_or_else(|| {
            "authentication required: answer the challenge with the cluster secret \
             (netproxy --secret-file)"
                .to_string()
        })?;
    match raft_auth::unhex::<MAC_LEN>(proof) {
        Some(proof) if secret.check_proof(nonce, &proof) => Ok(command),
        _ => Err(raft_auth::WRONG_SECRET.to_string()),
    }
}

enum Request {
    /// `request` holds the whole line, without its newline.
    Complete,
    Incomplete,
    TooLong,
    /// The client left without sending anything.
    Abandoned,
}
