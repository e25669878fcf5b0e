//! The live view on a real cluster: the frame names the leader and its term, follows a fault
//! applied through the proxy and the election it causes, and shows crashed and stopped
//! processes without stalling.

use harness::cluster::Cluster;
use harness::timing::NodeTimers;
use harness::watch::frame::Style;
use harness::watch::{Watch, CALL_TIMEOUT, REFRESH};
use netproxy::Client;
use std::time::{Duration, Instant};

/// Generous: an election takes under a second, but the machine is shared.
const DEADLINE: Duration = Duration::from_secs(15);

fn watch(cluster: &Cluster) -> Watch {
    let controls: Vec<_> = (0..cluster.len())
        .map(|i| cluster.control_addr(i))
        .collect();
    Watch::new(&controls, cluster.proxy_control(), cluster.secret())
}

/// Renders frames until one satisfies `check` (which returns what it found), or panics with
/// the last frame at the deadline.
fn frame_until<T>(watch: &mut Watch, what: &str, check: impl Fn(&str) -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let frame = watch.frame(Style::Plain);
        if let Some(found) = check(&frame) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no frame showed {what} within {DEADLINE:?}; the last one:\n{frame}"
        );
        std::thread::sleep(REFRESH);
    }
}

/// The header's leader and term, if the frame has a leader whose own row agrees.
fn leader_and_term(frame: &str) -> Option<(usize, u64)> {
    let words: Vec<&str> = frame.lines().next()?.split_whitespace().collect();
    let at = |word: &str| words.iter().position(|w| *w == word).map(|i| words[i + 1]);
    let leader: usize = at("leader")?.parse().ok()?;
    let term: u64 = at("term")?.parse().ok()?;
    let row: Vec<&str> = row(frame, leader)?.split_whitespace().collect();
    (row[1] == "Leader" && row[2] == term.to_string()).then_some((leader, term))
}

fn row(frame: &str, node: usize) -> Option<&str> {
    let prefix = format!("{node:>4}  ");
    frame.lines().find(|line| line.starts_with(&prefix))
}

/// The traffic matrix's cells sent by `node`.
fn sent_by(frame: &str, node: usize) -> Option<Vec<String>> {
    let prefix = format!("{node:>7}");
    let line = frame.lines().find(|line| line.starts_with(&prefix))?;
    Some(
        line[7..]
            .split("  ")
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .map(String::from)
            .collect(),
    )
}

#[test]
fn the_view_shows_the_leader_then_a_disconnect_and_the_new_election() {
    let cluster = Cluster::launch("watch-disconnect", 3, NodeTimers::scaled()).unwrap();
    let mut watch = watch(&cluster);
    let (leader, term) = frame_until(&mut watch, "a leader and its term", leader_and_term);
    // With rates measured, the leader's heartbeats cross every link it has.
    frame_until(&mut watch, "the leader's traffic", |frame| {
        let cells = sent_by(frame, leader)?;
        (cells.len() == 3 && cells.iter().filter(|c| *c != "." && *c != "-").count() == 2)
            .then_some(())
    });

    Client::new(cluster.proxy_control(), cluster.secret().clone())
        .disconnect(leader)
        .unwrap();
    frame_until(&mut watch, "the disconnect", |frame| {
        let marked = row(frame, leader)?.contains("disconnected");
        let listed = frame.contains(&format!("  disconnected: {leader}\n"));
        let cut = sent_by(frame, leader)?
            .iter()
            .filter(|cell| cell.starts_with("cut"))
            .count()
            == 2;
        (marked && listed && cut).then_some(())
    });
    let (new_leader, new_term) = frame_until(&mut watch, "a new leader", |frame| {
        leader_and_term(frame).filter(|&(l, _)| l != leader)
    });
    assert!(
        new_term > term,
        "node {new_leader} leads term {new_term}, after node {leader}'s term {term}"
    );
}

#[test]
fn crashed_and_stopped_processes_are_shown_without_stalling_the_view() {
    let mut cluster = Cluster::launch("watch-stopped", 3, NodeTimers::scaled()).unwrap();
    let mut watch = watch(&cluster);
    frame_until(&mut watch, "a leader", leader_and_term);

    // SIGSTOP: the kernel still accepts connections, but nothing answers them.
    let proxy_pid = cluster.pids()[0];
    let node_pid = cluster.pid(1).unwrap();
    let signal = |pid: u32, sig| assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
    signal(proxy_pid, libc::SIGSTOP);
    signal(node_pid, libc::SIGSTOP);
    let started = Instant::now();
    let frame = watch.frame(Style::Plain);
    let took = started.elapsed();
    signal(proxy_pid, libc::SIGCONT);
    signal(node_pid, libc::SIGCONT);
    // The node and the proxy are asked at once, each for at most CALL_TIMEOUT.
    assert!(
        took < 4 * CALL_TIMEOUT,
        "a frame with a stopped node and proxy took {took:?}:\n{frame}"
    );
    let silent = format!(
        "not answering (no answer within {} ms)",
        CALL_TIMEOUT.as_millis()
    );
    assert_eq!(
        row(&frame, 1),
        Some(format!("   1  {silent}").as_str()),
        "{frame}"
    );
    assert!(
        frame.contains(&format!(
            "netproxy at {} is not answering: no answer within",
            cluster.proxy_control()
        )),
        "{frame}"
    );

    cluster.crash(2);
    frame_until(&mut watch, "node 2 down", |frame| {
        (row(frame, 2)? == "   2  down").then_some(())
    });
    // The others carry on and are shown so.
    let frame = frame_until(&mut watch, "nodes 0 and 1 answering", |frame| {
        let up = |i| row(frame, i).is_some_and(|r| !r.contains("not answering"));
        (up(0) && up(1)).then(|| frame.to_string())
    });
    assert!(frame.contains("2/3 nodes answering"), "{frame}");
}
