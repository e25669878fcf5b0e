//! `raft-node run` as real processes talking to each other directly over UDP (no proxy), driven
//! over the control channel the way the harness drives them.

use raft_auth::Secret;
use raft_node::control::{self, read_frame, write_frame, NodeState, Request, Response};
use raft_node::core::{Message, MessageBody};
use raft_node::wire;
use rand::Rng;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use std::{fs, io, thread};

const CLUSTER_ID: u64 = 77;
/// The test clusters' secret.
const SECRET: [u8; 32] = [0x5a; 32];
/// Generous: a debug build on a loaded machine. Every wait polls and returns as soon as it can.
const DEADLINE: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A port free for both UDP and TCP on loopback (we use it for one of each).
fn free_port() -> u16 {
    let mut rng = rand::thread_rng();
    loop {
        let port = rng.gen_range(20000..32000);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok() {
            return port;
        }
    }
}

struct Node {
    child: Child,
    listen: SocketAddr,
    control: SocketAddr,
}

/// Processes that are SIGKILLed and reaped on drop, also when a test panics, so no test leaves
/// orphans; the work dir (logs, data dirs) is removed unless the test failed.
struct Cluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl Cluster {
    fn launch(n: usize, name: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!("raft-node-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let secret_file = dir.join("secret");
        fs::write(&secret_file, raft_auth::hex(&SECRET)).unwrap();
        fs::set_permissions(&secret_file, fs::Permissions::from_mode(0o600)).unwrap();
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < n {
            let p = free_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let addrs: Vec<SocketAddr> = ports
            .iter()
            .map(|&p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let peers = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir,
        };
        for (i, &addr) in addrs.iter().enumerate() {
            let log = fs::File::create(cluster.dir.join(format!("node-{i}.log"))).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_raft-node"))
                .arg("run")
                .args(["--id", &i.to_string()])
                .args(["--listen", &addr.to_string()])
                .args(["--peers", &peers])
                .args(["--control", &addr.to_string()])
                .arg("--data-dir")
                .arg(cluster.dir.join(format!("node-{i}")))
                .args(["--cluster-id", &CLUSTER_ID.to_string()])
                .arg("--secret-file")
                .arg(&secret_file)
                .env("RUST_LOG", "debug")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .unwrap();
            cluster.nodes.push(Node {
                child,
                listen: addr,
                control: addr,
            });
            let line = cluster.ready_line(i);
            assert_eq!(
                line,
                format!("ready id={i} listen={addr} control={addr}"),
                "node {i}'s ready line"
            );
        }
        cluster
    }

    /// The first line node `i` prints, which must come once its sockets are bound.
    fn ready_line(&mut self, i: usize) -> String {
        let stdout = self.nodes[i].child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("node {i} printed no ready line; see {:?}", self.dir));
        line.trim_end().to_string()
    }

    fn state(&self, i: usize) -> io::Result<NodeState> {
        match call(self.nodes[i].control, &Request::GetState)? {
            Response::State(s) => Ok(s),
            other => panic!("GetState answered {other:?}"),
        }
    }

    /// Polls until exactly one node leads and every node agrees on it and its term.
    fn wait_for_one_leader(&self) -> usize {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let states: Vec<NodeState> = (0..self.nodes.len())
                .map(|i| self.state(i).unwrap())
                .collect();
            let leaders: Vec<&NodeState> = states.iter().filter(|s| s.is_leader).collect();
            if let [leader] = leaders[..] {
                let agreed = states
                    .iter()
                    .all(|s| s.term == leader.term && s.leader == Some(leader.id));
                if agreed {
                    return leader.id as usize;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no single agreed leader within {DEADLINE:?}: {states:#?}"
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Proposes `command` on the leader, following leadership changes; returns its index.
    fn submit(&self, command: &[u8]) -> u64 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let leader = self.wait_for_one_leader();
            let start = Request::Start {
                command: command.to_vec(),
            };
            match call(self.nodes[leader].control, &start).unwrap() {
                Response::Started {
                    index,
                    is_leader: true,
                    ..
                } => return index,
                Response::Started { .. } => {
                    assert!(Instant::now() < deadline, "no leader accepted {command:?}")
                }
                other => panic!("Start answered {other:?}"),
            }
        }
    }

    fn shutdown_all(&mut self) {
        for i in 0..self.nodes.len() {
            assert_eq!(
                call(self.nodes[i].control, &Request::Shutdown).unwrap(),
                Response::ShuttingDown
            );
            let status = wait_for_exit(&mut self.nodes[i].child);
            assert!(status.success(), "node {i} exited with {status}");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        if thread::panicking() {
            eprintln!("node logs kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A connection through the handshake.
fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(DEADLINE))?;
    control::authenticate(&mut stream, &Secret::from_bytes(&SECRET))?;
    Ok(stream)
}

fn key(id: u64, secret: [u8; 32]) -> wire::ClusterKey {
    wire::ClusterKey {
        id,
        secret: Secret::from_bytes(&secret),
    }
}

/// One request on a fresh connection.
fn call(addr: SocketAddr, req: &Request) -> io::Result<Response> {
    let mut stream = connect(addr)?;
    write_frame(&mut stream, req)?;
    read_frame(&mut stream)
}

fn subscribe(addr: SocketAddr, from: u64) -> TcpStream {
    let mut stream = connect(addr).unwrap();
    write_frame(&mut stream, &Request::Subscribe { from }).unwrap();
    stream
}

fn next_apply(stream: &mut TcpStream) -> (u64, Vec<u8>) {
    match read_frame(stream).unwrap() {
        Response::Apply(m) => (m.index, m.command),
        other => panic!("subscription carried {other:?}"),
    }
}

fn wait_for_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "node did not exit");
        thread::sleep(POLL_INTERVAL);
    }
}

/// Datagrams a node must drop: garbage, a truncated message, a foreign cluster, another
/// protocol version, a sender that is not a peer, a message for someone else; and the
/// [`UNAUTHENTICATED`] first ones, well-formed but sealed with another secret or without a MAC.
const UNAUTHENTICATED: usize = 2;
fn bad_datagrams(to: u32) -> Vec<Vec<u8>> {
    let msg = |from, to| Message {
        from,
        to,
        term: 1_000,
        body: MessageBody::RequestVote {
            last_log_index: 1_000,
            last_log_term: 1_000,
        },
        via: None,
        hears: Default::default(),
    };
    let ours = key(CLUSTER_ID, SECRET);
    let good = wire::encode(&ours, &msg(1, to));
    let mut no_mac = good[..9].to_vec();
    no_mac.extend_from_slice(&good[wire::BODY..]);
    let mut version = good.clone();
    version[0] = wire::PROTOCOL_VERSION + 1;
    let mut random = vec![0u8; 1200];
    rand::thread_rng().fill(&mut random[..]);
    vec![
        wire::encode(&key(CLUSTER_ID, [1; 32]), &msg(1, to)),
        no_mac,
        b"hello".to_vec(),
        random,
        Vec::new(),
        good[..8].to_vec(),
        wire::encode(&key(CLUSTER_ID + 1, SECRET), &msg(1, to)),
        version,
        wire::encode(&ours, &msg(99, to)),
        wire::encode(&ours, &msg(1, to + 1)),
    ]
}

#[test]
fn three_nodes_elect_replicate_and_ignore_garbage() {
    let mut cluster = Cluster::launch(3, "three");
    cluster.wait_for_one_leader();

    let mut streams: Vec<TcpStream> = cluster
        .nodes
        .iter()
        .map(|n| subscribe(n.control, 1))
        .collect();
    assert_eq!(cluster.submit(b"hello"), 1);
    for (i, s) in streams.iter_mut().enumerate() {
        assert_eq!(next_apply(s), (1, b"hello".to_vec()), "node {i}");
    }

    let garbage = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..10 {
        for d in bad_datagrams(0) {
            garbage.send_to(&d, cluster.nodes[0].listen).unwrap();
        }
    }
    // Counted, and nothing else: the node still answers and commits.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let state = cluster.state(0).expect("node 0 still answers");
        if state.unauthenticated == 10 * UNAUTHENTICATED as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} unauthenticated",
            state.unauthenticated
        );
        thread::sleep(POLL_INTERVAL);
    }
    assert_eq!(cluster.submit(b"world"), 2);
    for (i, s) in streams.iter_mut().enumerate() {
        assert_eq!(next_apply(s), (2, b"world".to_vec()), "node {i}");
    }

    // A late subscriber gets the replay, from where it asked.
    let mut late = subscribe(cluster.nodes[1].control, 2);
    assert_eq!(next_apply(&mut late), (2, b"world".to_vec()));

    cluster.shutdown_all();
}

#[test]
fn bad_control_clients_do_not_hurt_the_node() {
    let mut cluster = Cluster::launch(1, "badclient");
    let addr = cluster.nodes[0].control;

    // An oversize frame header: the node closes that connection.
    let mut oversize = connect(addr).unwrap();
    oversize
        .write_all(&((control::MAX_FRAME + 1) as u32).to_be_bytes())
        .unwrap();
    assert!(read_frame::<Response>(&mut oversize).is_err());

    // Garbage in a well-formed frame, and a client that leaves mid-frame.
    let mut bad = connect(addr).unwrap();
    bad.write_all(&[0, 0, 0, 3, 0xc1, 0xc1, 0xc1]).unwrap();
    assert!(read_frame::<Response>(&mut bad).is_err());
    connect(addr).unwrap().write_all(&[0, 0, 1]).unwrap();

    // Another secret: one clear error, and the node does not serve that connection.
    let mut stranger = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stranger.set_read_timeout(Some(DEADLINE)).unwrap();
    let err = control::authenticate(&mut stranger, &Secret::from_bytes(&[1; 32])).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(err.to_string(), raft_auth::WRONG_SECRET);
    write_frame(&mut stranger, &Request::Shutdown).ok();
    assert!(read_frame::<Response>(&mut stranger).is_err());

    // Several requests in one write are answered in order.
    let mut many = connect(addr).unwrap();
    let batch: Vec<u8> = [Request::GetState, Request::GetState]
        .iter()
        .flat_map(control::encode_frame)
        .collect();
    many.write_all(&batch).unwrap();
    for _ in 0..2 {
        assert!(matches!(read_frame(&mut many), Ok(Response::State(_))));
    }

    cluster.shutdown_all();
}

#[test]
fn sigterm_exits_cleanly() {
    let mut cluster = Cluster::launch(3, "sigterm");
    let pid = cluster.nodes[2].child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = wait_for_exit(&mut cluster.nodes[2].child);
    assert!(status.success(), "SIGTERM gave {status}");
}
