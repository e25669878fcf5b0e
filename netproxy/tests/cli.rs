//! The CLI and the control protocol: commands, rejections, errors, signals, and an idle proxy.

mod common;

use common::{cli, secret_file, text, Cluster, Proxy, BIN, PATIENCE, SECRET};
use netproxy::Endpoint;
use raft_auth::Secret;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Connects to the control socket and reads the challenge: the stream and the nonce.
fn challenged(control: SocketAddr) -> (TcpStream, Vec<u8>) {
    let stream = TcpStream::connect(control).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut line = String::new();
    // One line, byte by byte, so nothing after it is taken from the stream.
    let mut reader = BufReader::with_capacity(1, &stream);
    reader.read_line(&mut line).unwrap();
    let nonce = line.trim_end().strip_prefix("challenge ").unwrap();
    let nonce = raft_auth::unhex::<{ raft_auth::NONCE_LEN }>(nonce).unwrap();
    (stream, nonce.to_vec())
}

/// Sends `auth <proof> ` with the test secret, then the raw bytes, and returns the whole reply.
fn raw_request(control: SocketAddr, request: &[u8]) -> String {
    let (mut stream, nonce) = challenged(control);
    let proof = raft_auth::hex(&Secret::from_bytes(&SECRET).proof(&nonce));
    stream
        .write_all(format!("auth {proof} ").as_bytes())
        .unwrap();
    stream.write_all(request).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

/// A client without the secret changes nothing: no proof, a proof by another secret, a proof
/// of another challenge. Each gets one error line.
#[test]
fn a_client_without_the_secret_is_refused() {
    let cluster = Cluster::start(3);
    let control = cluster.proxy.control;
    let before = cluster.status();
    let other = Secret::from_bytes(&[1; 32]);
    let stale = raft_auth::hex(&Secret::from_bytes(&SECRET).proof(&[0; 32]));
    let requests = [
        ("disconnect 0\n".to_string(), "authentication required"),
        ("status\n".to_string(), "authentication required"),
        (
            format!("auth {} disconnect 0\n", "0".repeat(64)),
            "authentication failed",
        ),
        (
            format!("auth {stale} disconnect 0\n"),
            "authentication failed",
        ),
    ];
    for (request, message) in requests {
        let (mut stream, _) = challenged(control);
        stream.write_all(request.as_bytes()).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(
            reply.starts_with(&format!("error: {message}")),
            "{request:?}: {reply}"
        );
        assert_eq!(reply.lines().count(), 1, "{reply}");
    }
    let (mut stream, nonce) = challenged(control);
    let proof = raft_auth::hex(&other.proof(&nonce));
    stream
        .write_all(format!("auth {proof} disconnect 0\n").as_bytes())
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, format!("error: {}\n", raft_auth::WRONG_SECRET));
    assert_eq!(cluster.status(), before);

    // The CLI with another secret file: the daemon's error, exit 1.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("secret");
    Secret::create_file(&wrong).unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--secret-file")
        .arg(&wrong)
        .args(["--control", &control.to_string(), "heal"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("netproxy: {}\n", raft_auth::WRONG_SECRET)
    );
}

#[test]
fn the_daemon_needs_a_secret_file() {
    let out = std::process::Command::new(BIN)
        .args(["run", "--nodes", "127.0.0.1:7", "--faces", "127.0.0.1:0"])
        .args(["--control", "127.0.0.1:0"])
        .env_remove("RAFT_LAB_SECRET_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no ready line");
    assert!(
        text(&out.stderr).contains("--secret-file is required"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_cli_changes_and_reports_the_network() {
    let cluster = Cluster::start(3);
    let proxy = &cluster.proxy;
    for args in [
        &["partition", "0", "1,2"][..],
        &["drop", "0.25", "1->2"],
        &["delay", "5ms..10ms", "2"],
        &["reorder", "0.5", "1ms..2ms"],
        &["duplicate", "0.5", "0<->1"],
        &["disconnect", "2"],
    ] {
        let out = proxy.cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{args:?} says nothing"
        );
    }
    let status = cluster.status();
    assert_eq!(status.down.len(), 4);
    assert!(!status.nodes[2].connected);
    let faults = status
        .faults
        .iter()
        .find(|l| (l.from, l.to) == (Endpoint::Node(1), Endpoint::Node(2)))
        .unwrap();
    assert_eq!(
        faults.faults.to_string(),
        "drop 0.25, delay 5ms..10ms, reorder 0.5 1ms..2ms"
    );

    let out = proxy.cli(&["status", "--json"]);
    let json: netproxy::Status = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, status);
    let human = text(&proxy.cli(&["status"]).stdout);
    assert!(human.contains("links down: 0<->1 0<->2"), "{human}");
    assert!(human.contains("disconnected"), "{human}");

    cluster.send(1, 0, b"x");
    cluster.wait_for_stats("the datagram", |s| s.total().dropped_down == 1);
    let table = text(&proxy.cli(&["stats"]).stdout);
    assert!(table.lines().nth(1).unwrap().starts_with("1->0"), "{table}");
    assert!(table.contains("\ntotal"), "{table}");
    let out = proxy.cli(&["stats", "--json"]);
    let stats: netproxy::Stats = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats.link(1, 0).dropped_down, 1);

    assert!(proxy.cli(&["reset-stats"]).status.success());
    assert!(cluster.stats().links.is_empty());
    assert!(proxy
        .cli(&["unreliable", "--long-reordering"])
        .status
        .success());
    assert!(proxy.cli(&["reliable"]).status.success());
    assert!(proxy.cli(&["connect", "2"]).status.success());
    assert!(proxy.cli(&["up", "0<->1", "0->2", "2->0"]).status.success());
    assert!(proxy.cli(&["heal"]).status.success());
    let status = cluster.status();
    assert!(status.down.is_empty() && status.faults.is_empty());
}

#[test]
fn bad_commands_are_rejected_by_name_and_change_nothing() {
    let cluster = Cluster::start(5);
    cluster.command("partition 0,1 2,3,4");
    cluster.command("drop 0.2 3");
    let before = cluster.status();
    let control = cluster.proxy.control;
    let long_line = [&[b'x'; 5000][..], b"\n"].concat();
    let cases: [(&[u8], &str); 10] = [
        (
            b"drop 1.5\n",
            "bad probability \"1.5\": must be between 0 and 1",
        ),
        (
            b"disconnect 7\n",
            "node 7 does not exist (cluster has 5 nodes)",
        ),
        (
            b"down 0->1 4<->5\n",
            "node 5 does not exist (cluster has 5 nodes)",
        ),
        (b"partition 0,1 1,2\n", "node 1 is named in two groups"),
        (
            b"delay 10xs\n",
            "bad duration \"10xs\": expected e.g. 500us, 10ms or 2s",
        ),
        (b"frobnicate\n", "unknown command \"frobnicate\""),
        (b"\n", "empty command"),
        (b"heal\xff\n", "request is not UTF-8"),
        (&long_line, "request longer than 4096 bytes"),
        (&[b'x'; 5000], "request longer than 4096 bytes"),
    ];
    for (request, message) in cases {
        let reply = raw_request(control, request);
        assert_eq!(reply, format!("error: {message}\n"), "{}", text(request));
    }
    assert_eq!(cluster.status(), before);

    // The CLI says the same and exits 1 when the daemon refuses.
    let out = cluster.proxy.cli(&["disconnect", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "netproxy: node 7 does not exist (cluster has 5 nodes)\n"
    );
    assert_eq!(cluster.status(), before);
}

#[test]
fn a_command_without_a_proxy_fails_in_one_clear_line() {
    // A port that was just free: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = cli(&["--control", &addr], &["heal"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "netproxy: no proxy is listening on {addr} \
             (start one with 'netproxy run' or 'just cluster')\n"
        )
    );
}

#[test]
fn malformed_arguments_fail_before_anything_is_sent() {
    // The local parse catches these, so no proxy is needed; nothing listens on port 9.
    let control = ["--control", "127.0.0.1:9"];
    let cases: [(&[&str], &str); 4] = [
        (
            &["drop", "1.5"],
            "bad probability \"1.5\": must be between 0 and 1",
        ),
        (&["delay", "10xs", "all"], "bad duration \"10xs\""),
        (&["down", "0-1"], "bad link \"0-1\""),
        (&["partition", "0", "0"], "node 0 is named in two groups"),
    ];
    for (args, message) in cases {
        let out = cli(&control, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("netproxy: {message}")),
            "{args:?}: {stderr}"
        );
    }
    let usage_errors: [&[&str]; 9] = [
        &["drop"],
        &["frobnicate"],
        &["run", "--nodes", "127.0.0.1:7000"],
        &[
            "run",
            "--nodes",
            "127.0.0.1:7000,127.0.0.1:7001",
            "--faces",
            "127.0.0.1:0",
        ],
        &["run", "--nodes", "0.0.0.0:7000", "--faces", "127.0.0.1:0"],
        &["run", "--nodes", "127.0.0.1:7000", "--faces", "somewhere"],
        &[
            "run",
            "--nodes",
            "127.0.0.1:7000",
            "--faces",
            "127.0.0.1:0",
            "--clerks",
            "127.0.0.1:7400,127.0.0.1:7401",
            "--clerk-faces",
            "127.0.0.1:0",
        ],
        &[
            "run",
            "--nodes",
            "127.0.0.1:7000",
            "--faces",
            "127.0.0.1:0",
            "--clerk-faces",
            "127.0.0.1:0",
        ],
        &[
            "run",
            "--nodes",
            "127.0.0.1:7000",
            "--faces",
            "127.0.0.1:0",
            "--clerks",
            "127.0.0.1:0",
            "--clerk-faces",
            "127.0.0.1:0",
        ],
    ];
    for args in usage_errors {
        let out = cli(&control, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("error"), "{args:?}");
    }
    let out = cli(&control, usage_errors[3]);
    assert!(text(&out.stderr).contains("give one face per node"));
    for args in &usage_errors[6..8] {
        let stderr = text(&cli(&control, args).stderr);
        assert!(stderr.contains("give one face per clerk"), "{stderr}");
    }
    let stderr = text(&cli(&control, usage_errors[8]).stderr);
    assert!(stderr.contains("needs a concrete IP and port"), "{stderr}");
}

#[test]
fn the_daemon_stops_cleanly_on_sigint_and_sigterm() {
    for signal in ["-INT", "-TERM"] {
        let mut proxy = Proxy::start(&["127.0.0.1:7".parse().unwrap()], &[]);
        let killed = std::process::Command::new("kill")
            .args([signal, &proxy.pid().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = proxy.wait_exit(PATIENCE).expect("the daemon exits");
        assert!(status.success(), "{signal}: {status}");
    }
}

#[test]
fn the_daemon_cannot_bind_a_port_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let control = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(BIN)
        .args(["run", "--nodes", "127.0.0.1:7", "--faces", "127.0.0.1:0"])
        .args(["--control", &control])
        .arg("--secret-file")
        .arg(secret_file())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no ready line");
    assert!(
        text(&out.stderr).contains(&format!("cannot bind control on {control}")),
        "{}",
        text(&out.stderr)
    );
}

/// CPU time (user + system, in clock ticks) a process has used, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn an_idle_proxy_uses_no_cpu() {
    let cluster = Cluster::start(2);
    // A delayed datagram arms the poll timeout; once it is sent the loop must block again.
    cluster.command("delay 50ms");
    cluster.send(0, 1, b"late");
    cluster.recv_from(1, 0);
    let pid = cluster.proxy.pid();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(pid) - before;
    // A spinning loop would burn about 100 ticks in that second.
    assert!(used <= 2, "idle proxy used {used} ticks in one second");
}

#[test]
fn a_reply_larger_than_the_socket_buffer_arrives_whole() {
    // A rule on each of 256 × 256 links makes a status of several megabytes, more than the
    // socket buffers hold: the daemon must write it as the client reads it.
    let nodes: Vec<SocketAddr> = (0..256)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], 20_000 + i)))
        .collect();
    let proxy = Proxy::start(&nodes, &[]);
    proxy.client().set_unreliable(true).unwrap();
    let (mut stream, nonce) = challenged(proxy.control);
    let proof = raft_auth::hex(&Secret::from_bytes(&SECRET).proof(&nonce));
    stream
        .write_all(format!("auth {proof} status\n").as_bytes())
        .unwrap();
    // Read only once the buffers are surely full.
    std::thread::sleep(Duration::from_millis(300));
    let mut reply = String::new();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.read_to_string(&mut reply).unwrap();
    let json = reply.strip_prefix("ok\n").expect("an ok reply");
    assert!(json.len() > 6_000_000, "{} bytes", json.len());
    let status: netproxy::Status = serde_json::from_str(json).unwrap();
    assert_eq!(status.faults.len(), 256 * 256);
}
