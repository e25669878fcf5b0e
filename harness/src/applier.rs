//! The lab's apply-channel checkers (config.go `checkLogs`, `applier`, `applierSnap`): every
//! node must apply the same command at each index, in order, without gaps.
//!
//! One thread per node incarnation reads that node's apply stream. What each node applied is
//! kept across crashes and restarts (a restarted node re-applies from its restart point and must
//! agree with what it and everyone else applied before). In snapshot mode the tester plays the
//! service: it snapshots every [`SNAPSHOT_INTERVAL`] entries and ingests the snapshots a node
//! hands it.

use crate::node_client::{Applied, ApplyStream, NodeClient};
use raft_node::control::{ApplyMsg, SnapshotMsg};
use raft_node::core::Index;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// config.go SnapShotInterval: the tester snapshots after applying index i when (i+1) % 10 == 0.
pub const SNAPSHOT_INTERVAL: Index = 10;

#[derive(Default)]
struct Inner {
    /// logs[i][index] = the command node i applied at index.
    logs: Vec<HashMap<Index, Vec<u8>>>,
    /// The first apply error seen on each node (the lab fails the test with it).
    apply_err: Vec<Option<String>>,
    /// Snapshot mode: the last index each node's service applied.
    last_applied: Vec<Index>,
    /// The highest index any node applied.
    max_index: Index,
}

/// Why an applier stops.
enum Stop {
    /// What the node applied breaks the lab's rules: always a failure.
    Apply(String),
    /// The node went away (its stream ended, a call to it failed): a failure unless the tester
    /// crashed it.
    Gone(String),
}

/// The tester's record of what every node applied.
#[derive(Clone)]
pub struct ApplyLog {
    inner: Arc<Mutex<Inner>>,
}

impl ApplyLog {
    pub fn new(n: usize) -> ApplyLog {
        ApplyLog {
            inner: Arc::new(Mutex::new(Inner {
                logs: vec![HashMap::new(); n],
                apply_err: vec![None; n],
                last_applied: vec![0; n],
                max_index: 0,
            })),
        }
    }

    /// Spawns the reader of node `i`'s apply stream; it ends when the node goes away.
    /// With `snapshots`, it is config.go's `applierSnap` and snapshots node i through that
    /// client; without, it is `applier`.
    /// `ended` is set by the tester when it ends this incarnation of the node (a crash, the end
    /// of the test): until then the stream must not end, nor a snapshot call fail.
    pub fn spawn_applier(
        &self,
        i: usize,
        mut stream: ApplyStream,
        snapshots: Option<NodeClient>,
        ended: Arc<AtomicBool>,
    ) -> JoinHandle<()> {
        let log = self.clone();
        log.inner.lock().unwrap().last_applied[i] = 0;
        std::thread::Builder::new()
            .name(format!("applier-{i}"))
            .spawn(move || loop {
                let result = match stream.next_apply() {
                    Ok(Some(Applied::Command(m))) => match &snapshots {
                        None => log.record(i, &m).map_err(Stop::Apply),
                        Some(client) => log.record_in_order(i, &m, client),
                    },
                    Ok(Some(Applied::Snapshot(s))) => match snapshots {
                        None => Ok(()), // the lab's applier ignores what is not a command
                        Some(_) => log.ingest_snapshot(i, &s).map_err(Stop::Apply),
                    },
                    Ok(None) => Err(Stop::Gone(format!(
                        "server {i}'s apply stream ended, but the tester did not crash it"
                    ))),
                    Err(e) => Err(Stop::Gone(format!("server {i} apply stream failed: {e}"))),
                };
                let e = match result {
                    Ok(()) => continue,
                    Err(Stop::Apply(e)) => e,
                    // The tester crashed the node: its stream ends, and a Snapshot() it was
                    // owed is a call to a killed raft, which the lab ignores.
                    Err(Stop::Gone(_)) if ended.load(Ordering::SeqCst) => return,
                    Err(Stop::Gone(e)) => e,
                };
                eprintln!("apply error: {e}");
                log.inner.lock().unwrap().apply_err[i].get_or_insert(e);
                return;
            })
            .expect("spawn applier thread")
    }

    /// config.go `checkLogs` plus the applier's order check.
    fn record(&self, i: usize, m: &ApplyMsg) -> Result<(), String> {
        let mut inner = self.inner.lock().unwrap();
        for (j, log) in inner.logs.iter().enumerate() {
            if let Some(old) = log.get(&m.index) {
                if old != &m.command {
                    return Err(format!(
                        "commit index={} server={} {} != server={} {}",
                        m.index,
                        i,
                        show(&m.command),
                        j,
                        show(old)
                    ));
                }
            }
        }
        let prev_ok = inner.logs[i].contains_key(&(m.index - 1));
        inner.logs[i].insert(m.index, m.command.clone());
        inner.max_index = inner.max_index.max(m.index);
        if m.index > 1 && !prev_ok {
            return Err(format!("server {i} apply out of order {}", m.index));
        }
        Ok(())
    }

    /// config.go `applierSnap` for a command: strictly the next index, then `checkLogs`, then a
    /// snapshot every SNAPSHOT_INTERVAL entries, taken synchronously like the lab's.
    fn record_in_order(&self, i: usize, m: &ApplyMsg, client: &NodeClient) -> Result<(), Stop> {
        let expected = self.inner.lock().unwrap().last_applied[i] + 1;
        if m.index != expected {
            return Err(Stop::Apply(format!(
                "server {i} apply out of order, expected index {expected}, got {}",
                m.index
            )));
        }
        self.record(i, m).map_err(Stop::Apply)?;
        let snapshot = {
            let mut inner = self.inner.lock().unwrap();
            inner.last_applied[i] = m.index;
            (m.index + 1)
                .is_multiple_of(SNAPSHOT_INTERVAL)
                .then(|| encode_snapshot(m.index, &inner.logs[i]))
                .transpose()
                .map_err(Stop::Apply)?
        };
        if let Some(data) = snapshot {
            client
                .snapshot(m.index, data)
                .map_err(|e| Stop::Gone(format!("server {i} Snapshot({}) failed: {e}", m.index)))?;
        }
        Ok(())
    }

    /// config.go `ingestSnap`: the snapshot replaces what node i's service holds.
    fn ingest_snapshot(&self, i: usize, s: &SnapshotMsg) -> Result<(), String> {
        let (index, commands) =
            decode_snapshot(&s.data).ok_or_else(|| format!("server {i} snapshot decode error"))?;
        if index != s.index {
            return Err(format!("server {i} snapshot doesn't match m.SnapshotIndex"));
        }
        let mut inner = self.inner.lock().unwrap();
        inner.logs[i] = commands
            .into_iter()
            .enumerate()
            .map(|(j, c)| (j as Index + 1, c))
            .collect();
        inner.last_applied[i] = index;
        inner.max_index = inner.max_index.max(index);
        Ok(())
    }

    /// The first apply error of any node.
    pub fn first_error(&self) -> Option<String> {
        let inner = self.inner.lock().unwrap();
        inner.apply_err.iter().flatten().next().cloned()
    }

    /// How many nodes applied `index`, and what; `Err` if they disagree (config.go nCommitted).
    pub fn committed(&self, index: Index) -> Result<(usize, Option<Vec<u8>>), String> {
        let inner = self.inner.lock().unwrap();
        let mut count = 0;
        let mut cmd: Option<&Vec<u8>> = None;
        for log in &inner.logs {
            if let Some(c) = log.get(&index) {
                if let Some(prev) = cmd {
                    if prev != c {
                        return Err(format!(
                            "committed values do not match: index {index}, {}, {}",
                            show(prev),
                            show(c)
                        ));
                    }
                }
                count += 1;
                cmd = Some(c);
            }
        }
        Ok((count, cmd.cloned()))
    }

    /// What node `i` applied at `index`, if it did.
    pub fn applied(&self, i: usize, index: Index) -> Option<Vec<u8>> {
        self.inner.lock().unwrap().logs[i].get(&index).cloned()
    }

    pub fn max_index(&self) -> Index {
        self.inner.lock().unwrap().max_index
    }
}

/// The tester's snapshot: the last included index, then commands 1..=index, each length-prefixed
/// (the lab's: labgob of the index and the list of commands).
fn encode_snapshot(index: Index, log: &HashMap<Index, Vec<u8>>) -> Result<Vec<u8>, String> {
    let mut data = index.to_be_bytes().to_vec();
    for j in 1..=index {
        let cmd = log
            .get(&j)
            .ok_or_else(|| format!("snapshot at {index}: the service never applied index {j}"))?;
        data.extend_from_slice(&(cmd.len() as u32).to_be_bytes());
        data.extend_from_slice(cmd);
    }
    Ok(data)
}

fn decode_snapshot(mut data: &[u8]) -> Option<(Index, Vec<Vec<u8>>)> {
    fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (data.get(..n)?, data.get(n..)?);
        *data = rest;
        Some(head)
    }
    let index = Index::from_be_bytes(take(&mut data, 8)?.try_into().ok()?);
    let mut commands = Vec::new();
    while !data.is_empty() {
        let len = u32::from_be_bytes(take(&mut data, 4)?.try_into().ok()?) as usize;
        commands.push(take(&mut data, len)?.to_vec());
    }
    (commands.len() as Index == index).then_some((index, commands))
}

/// A command as the lab prints it: the int or string it encodes, shortened.
pub fn show(cmd: &[u8]) -> String {
    let s = String::from_utf8_lossy(cmd);
    if s.chars().count() > 40 {
        let head: String = s.chars().take(40).collect();
        format!("{head}…({} bytes)", cmd.len())
    } else {
        s.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_node::control::{read_frame, write_frame, Authenticate, Challenge, Request, Response};

    fn secret() -> raft_auth::Secret {
        raft_auth::Secret::from_bytes(&[3; 32])
    }

    fn msg(index: Index, cmd: &str) -> ApplyMsg {
        ApplyMsg {
            index,
            term: 1,
            command: cmd.as_bytes().to_vec(),
        }
    }

    #[test]
    fn agreeing_nodes_pass_and_are_counted() {
        let log = ApplyLog::new(3);
        for i in 0..3 {
            log.record(i, &msg(1, "100")).unwrap();
        }
        log.record(0, &msg(2, "200")).unwrap();
        assert_eq!(log.committed(1).unwrap(), (3, Some(b"100".to_vec())));
        assert_eq!(log.committed(2).unwrap().0, 1);
        assert_eq!(log.committed(3).unwrap(), (0, None));
        assert_eq!(log.max_index(), 2);
    }

    #[test]
    fn a_different_command_at_one_index_is_an_error() {
        let log = ApplyLog::new(2);
        log.record(0, &msg(1, "100")).unwrap();
        let err = log.record(1, &msg(1, "999")).unwrap_err();
        assert_eq!(err, "commit index=1 server=1 999 != server=0 100");
    }

    #[test]
    fn a_gap_is_an_error() {
        let log = ApplyLog::new(1);
        log.record(0, &msg(1, "1")).unwrap();
        let err = log.record(0, &msg(3, "3")).unwrap_err();
        assert_eq!(err, "server 0 apply out of order 3");
    }

    #[test]
    fn reapplying_after_a_restart_is_fine() {
        let log = ApplyLog::new(1);
        log.record(0, &msg(1, "1")).unwrap();
        log.record(0, &msg(2, "2")).unwrap();
        log.record(0, &msg(1, "1")).unwrap();
        log.record(0, &msg(2, "2")).unwrap();
    }

    #[test]
    fn snapshots_round_trip_and_replace_the_service_state() {
        let log = ApplyLog::new(2);
        for j in 1..=3 {
            log.record(0, &msg(j, &format!("{}", j * 10))).unwrap();
        }
        let data = encode_snapshot(3, &log.inner.lock().unwrap().logs[0]).unwrap();
        assert_eq!(
            decode_snapshot(&data),
            Some((3, vec![b"10".to_vec(), b"20".to_vec(), b"30".to_vec()]))
        );
        let snap = SnapshotMsg {
            index: 3,
            term: 1,
            data,
        };
        log.ingest_snapshot(1, &snap).unwrap();
        assert_eq!(log.committed(3).unwrap(), (2, Some(b"30".to_vec())));
        assert_eq!(log.inner.lock().unwrap().last_applied[1], 3);
    }

    /// A node's control channel that streams `count` applied commands to one subscriber, then
    /// closes the stream (the node went away). Returns the stream.
    fn node_that_applies(count: Index) -> ApplyStream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // The node's side of the handshake, taking any proof.
            let nonce = vec![0; 32];
            write_frame(&mut conn, &Challenge { nonce }).unwrap();
            let _: Authenticate = read_frame(&mut conn).unwrap();
            write_frame(&mut conn, &Response::Authenticated).unwrap();
            let _: Request = read_frame(&mut conn).unwrap();
            for index in 1..=count {
                write_frame(&mut conn, &Response::Apply(msg(index, &index.to_string()))).unwrap();
            }
        });
        NodeClient::new(addr, secret()).subscribe(1).unwrap()
    }

    /// A control address where nothing listens: the Snapshot() call of a crashed node.
    fn dead_node() -> NodeClient {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        NodeClient::new(addr, secret())
    }

    /// The lab's crash window: the applier recorded index 9 and then owes the node a
    /// Snapshot(9), but the tester crashed it in between. Like Snapshot() on a killed raft in
    /// Go, that is no error; nor is the stream's end.
    #[test]
    fn a_node_crashed_by_the_tester_between_apply_and_snapshot_is_no_error() {
        let log = ApplyLog::new(1);
        let ended = Arc::new(AtomicBool::new(true));
        let applier = log.spawn_applier(0, node_that_applies(9), Some(dead_node()), ended);
        applier.join().unwrap();
        assert_eq!(log.first_error(), None);
        assert_eq!(log.committed(9).unwrap(), (1, Some(b"9".to_vec())));
    }

    #[test]
    fn a_failed_snapshot_call_to_a_node_the_tester_did_not_crash_is_an_error() {
        let log = ApplyLog::new(1);
        let ended = Arc::new(AtomicBool::new(false));
        let applier = log.spawn_applier(0, node_that_applies(9), Some(dead_node()), ended);
        applier.join().unwrap();
        let error = log.first_error().expect("an apply error");
        assert!(error.starts_with("server 0 Snapshot(9) failed"), "{error}");
    }

    #[test]
    fn an_apply_stream_that_ends_without_a_crash_is_an_error() {
        let log = ApplyLog::new(1);
        let ended = Arc::new(AtomicBool::new(false));
        log.spawn_applier(0, node_that_applies(3), None, ended)
            .join()
            .unwrap();
        assert_eq!(
            log.first_error().as_deref(),
            Some("server 0's apply stream ended, but the tester did not crash it")
        );
        assert_eq!(log.committed(3).unwrap().0, 1);
    }

    #[test]
    fn a_snapshot_that_does_not_match_its_index_is_an_error() {
        let log = ApplyLog::new(1);
        let mut data = encode_snapshot(0, &HashMap::new()).unwrap();
        assert!(decode_snapshot(&data[..7]).is_none());
        data.extend_from_slice(&[0, 0, 0, 1, b'x']);
        let snap = SnapshotMsg {
            index: 0,
            term: 1,
            data,
        };
        // One command but index 0: the encoding itself is inconsistent.
        assert_eq!(
            log.ingest_snapshot(0, &snap).unwrap_err(),
            "server 0 snapshot decode error"
        );
    }
}
