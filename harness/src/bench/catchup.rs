//! Learner catch-up (Raft thesis §4.2.1): a 3-node cluster commits `megabytes` of log, then a
//! fourth node joins as a learner on an empty data dir; measured from the AddLearner request
//! until the learner holds the whole log as it stood at the request, and until the leader
//! accepts its promotion (the catch-up gate: within a bound of the leader's log, and heard
//! from). The log path, not a snapshot: the harness is the service here and takes none (`just
//! bench kv` measures installing a snapshot of a million keys).

use super::{command, ms, node_clients, wait_for_leader, SETTLE_TIMEOUT};
use harness::cluster::{Cluster, NodeOptions};
use raft_node::control::{encode_frame, read_frame, Request, Response};
use raft_node::core::MembershipChange;
use std::io::{self, BufReader, Write};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes per command of the log the learner catches up: large, so the log is mostly payload.
const COMMAND_SIZE: usize = 4096;
/// `Start`s written at once while the log is filled.
const DEPTH: usize = 64;
/// How often the learner's and leader's states are read while it catches up.
const POLL: Duration = Duration::from_millis(5);
/// How long the learner may take: far beyond a healthy catch-up of a few hundred MB.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Outcome {
    /// Bytes of commands in the log the learner caught up.
    pub bytes: u64,
    pub entries: u64,
    /// AddLearner to the learner holding every entry the leader had then.
    pub caught_up: Duration,
    /// AddLearner to the leader accepting its promotion.
    pub promoted: Duration,
    /// How long the cluster took to commit the same log, from the first `Start`.
    pub written: Duration,
}

impl Outcome {
    pub fn rate(&self, took: Duration) -> f64 {
        self.bytes as f64 / f64::from(1 << 20) / took.as_secs_f64()
    }
}

/// Runs the phase on a fresh cluster of three nodes and one spare id.
pub fn run(options: NodeOptions, megabytes: u64) -> io::Result<Outcome> {
    let cluster = Cluster::launch_with_spares("raft-bench-catchup", 3, 1, options)?;
    let clients = node_clients(&cluster);
    let leader = wait_for_leader(&cluster, &clients)?.id;
    let entries = (megabytes << 20).div_ceil(COMMAND_SIZE as u64);
    eprintln!(
        "catch-up: n{leader} leads; committing {megabytes} MiB ({entries} commands of \
         {COMMAND_SIZE} bytes), then n3 joins as a learner"
    );
    let started = Instant::now();
    let last = fill(&clients[leader], entries)?;
    wait_until(CATCH_UP_TIMEOUT, "the log to commit", || {
        Ok(clients[leader].get_state()?.commit_index >= last)
    })?;
    let written = started.elapsed();
    eprintln!("  committed through index {last} in {}", ms(written));

    let mut cluster = cluster;
    cluster.add_node(3)?;
    let learner = cluster.client(3);
    let target = clients[leader].get_state()?.last_log_index;
    let asked = Instant::now();
    propose(&clients[leader], MembershipChange::AddLearner(3))?;
    wait_until(CATCH_UP_TIMEOUT, "the learner to catch up", || {
        Ok(learner.get_state()?.last_log_index >= target)
    })?;
    let caught_up = asked.elapsed();
    wait_until(
        CATCH_UP_TIMEOUT,
        "the leader to promote the learner",
        || {
            Ok(clients[leader]
                .change_membership(MembershipChange::Promote(3))?
                .is_ok())
        },
    )?;
    let promoted = asked.elapsed();
    eprintln!(
        "  n3 held index {target} after {}, promoted after {}",
        ms(caught_up),
        ms(promoted)
    );
    Ok(Outcome {
        bytes: entries * COMMAND_SIZE as u64,
        entries,
        caught_up,
        promoted,
        written,
    })
}

/// Appends `entries` commands through `leader`, [`DEPTH`] in flight; returns the last index.
fn fill(leader: &harness::node_client::NodeClient, entries: u64) -> io::Result<u64> {
    let mut writer = leader.connect()?;
    writer.set_read_timeout(Some(SETTLE_TIMEOUT))?;
    let mut reader = BufReader::with_capacity(64 * 1024, writer.try_clone()?);
    let (mut seq, mut last) = (0, 0);
    let mut batch = Vec::new();
    while seq < entries {
        batch.clear();
        let count = (entries - seq).min(DEPTH as u64);
        for _ in 0..count {
            let command = command(7, seq, COMMAND_SIZE);
            batch.extend_from_slice(&encode_frame(&Request::Start { command }));
            seq += 1;
        }
        writer.write_all(&batch)?;
        for _ in 0..count {
            match read_frame::<Response>(&mut reader)? {
                Response::Started {
                    is_leader: true,
                    index,
                    ..
                } => last = last.max(index),
                other => {
                    return Err(io::Error::other(format!(
                        "the leader stopped taking commands while the log was filled: {other:?}"
                    )))
                }
            }
        }
    }
    Ok(last)
}

/// Asks `leader` for `change` until it accepts.
fn propose(leader: &harness::node_client::NodeClient, change: MembershipChange) -> io::Result<()> {
    wait_until(SETTLE_TIMEOUT, "the leader to accept the learner", || {
        Ok(leader.change_membership(change)?.is_ok())
    })
}

fn wait_until(
    timeout: Duration,
    what: &str,
    mut done: impl FnMut() -> io::Result<bool>,
) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        // A node busy installing what it receives may answer late: only the deadline is fatal.
        if done().unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("waited {timeout:?} for {what}"),
            ));
        }
        thread::sleep(POLL);
    }
}
