//! The lab's apply-channel checker (config.go `checkLogs` / `applier`): every node must apply
//! the same command at each index, in order, without gaps.
//!
//! One thread per node incarnation reads that node's apply stream. What each node applied is
//! kept across crashes and restarts (a restarted node re-applies from its restart point and must
//! agree with what it and everyone else applied before).

use crate::node_client::ApplyStream;
use raft_node::control::ApplyMsg;
use raft_node::core::Index;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Default)]
struct Inner {
    /// logs[i][index] = the command node i applied at index.
    logs: Vec<HashMap<Index, Vec<u8>>>,
    /// The first apply error seen on each node (the lab fails the test with it).
    apply_err: Vec<Option<String>>,
    /// The highest index any node applied.
    max_index: Index,
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
                max_index: 0,
            })),
        }
    }

    /// Spawns the reader of node `i`'s apply stream; it ends when the node goes away.
    pub fn spawn_applier(&self, i: usize, mut stream: ApplyStream) -> JoinHandle<()> {
        let log = self.clone();
        std::thread::Builder::new()
            .name(format!("applier-{i}"))
            .spawn(move || loop {
                match stream.next_apply() {
                    Ok(Some(msg)) => {
                        if let Err(e) = log.record(i, &msg) {
                            eprintln!("apply error: {e}");
                            log.inner.lock().unwrap().apply_err[i].get_or_insert(e);
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let e = format!("server {i} apply stream failed: {e}");
                        log.inner.lock().unwrap().apply_err[i].get_or_insert(e);
                        return;
                    }
                }
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

    pub fn max_index(&self) -> Index {
        self.inner.lock().unwrap().max_index
    }
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
}
