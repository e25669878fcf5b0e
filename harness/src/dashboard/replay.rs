//! `raft-lab dashboard --replay RUN_DIR`: a kept run's `run.log` as the readings the live
//! dashboard would have made, at any moment of the run, so the same page plays it back.
//!
//! The log holds each node's terms, leadership, commit index and crashes (what `just timeline`
//! draws, read by [`Story`]) and every change the proxy made; it holds no traffic counters, no
//! applied or last index, snapshot or disk size, so a replayed card shows only what it has.

use crate::cluster::MAX_CLERKS;
use crate::logs::parse::{read_log, Record, Who};
use crate::logs::timeline::{Span, Story};
use crate::watch::frame::{NodeReading, ProxyReading, ProxyState, Reading, Unanswered};
use crate::watch::known::known;
use netproxy::command::Change;
use netproxy::status::Status;
use netproxy::{Command, Endpoints, Network};
use raft_node::control::NodeState;
use raft_node::core::Role;
use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

pub struct Replay {
    /// The log read.
    pub path: PathBuf,
    story: Story,
    /// The proxy's changes in log order, in µs of the log's clock.
    changes: Vec<(u64, Change)>,
    endpoints: Endpoints,
}

impl Replay {
    /// `path`: a run directory (its `run.log`) or a log file.
    pub fn open(path: &Path) -> Result<Replay, String> {
        let path = if path.is_dir() {
            path.join("run.log")
        } else {
            path.to_path_buf()
        };
        let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let records =
            read_log(BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()))?;
        let story = Story::read(&records).map_err(|e| format!("{}: {e}", path.display()))?;
        // As Story reads them: a harness proxy has at most MAX_CLERKS clerks.
        let endpoints = Endpoints::new(story.terms.len(), MAX_CLERKS);
        let changes = (records.iter())
            .filter_map(|record| match record {
                Record::Line(line) if line.who == Who::Proxy => match line.text.parse() {
                    Ok(cmd @ Command::Change(_)) if cmd.check(endpoints).is_ok() => {
                        let Command::Change(change) = cmd else {
                            unreachable!("matched above")
                        };
                        Some((line.micros, change))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        Ok(Replay {
            path,
            story,
            changes,
            endpoints,
        })
    }

    /// The first and last moment of the log, in µs of its clock.
    pub fn span(&self) -> (u64, u64) {
        (self.story.start, self.story.end)
    }

    /// What a poll at `at` would have seen, as far as the log tells. Its clock is the log's:
    /// `at` µs after the epoch.
    pub fn reading(&self, at: u64) -> Reading {
        let nodes = (0..self.endpoints.nodes)
            .map(|id| self.node(id, at))
            .collect();
        let mut network = Network::new(self.endpoints);
        for (_, change) in self.changes.iter().take_while(|(t, _)| *t <= at) {
            network.apply(change);
        }
        Reading {
            at: UNIX_EPOCH + Duration::from_micros(at),
            nodes,
            proxy: ProxyReading {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                state: Ok(ProxyState {
                    status: status(&network),
                    traffic: None,
                }),
            },
        }
    }

    fn node(&self, id: usize, at: u64) -> NodeReading {
        let story = &self.story;
        // Spans end at the log's last line, exclusive; that moment reads as the one before.
        let at = at.min(story.end.saturating_sub(1));
        if story.down[id]
            .iter()
            .any(|&(from, to)| from <= at && at < to)
        {
            return Err(Unanswered::Down);
        }
        let Some(term) = span_at(&story.terms[id], at) else {
            return Err(Unanswered::Silent("no line of it in the log here".into()));
        };
        let is_leader = span_at(&story.leaders[id], at).is_some();
        // The leader of its term, if the log shows one leading then.
        let leader = (0..story.leaders.len()).find(|&other| {
            span_at(&story.leaders[other], at).is_some_and(|span| span.term == term.term)
        });
        let commits = &story.commits[id];
        let commit = commits[..commits.partition_point(|&(t, _)| t <= at)]
            .last()
            .map_or(0, |&(_, index)| index);
        let role = if is_leader {
            Role::Leader
        } else {
            Role::Follower
        };
        // The rest is not in the log: the page shows a replayed card without it.
        Ok(NodeState {
            commit_index: commit,
            ..known(id as u32, role, term.term, leader.map(|l| l as u32))
        })
    }
}

/// The span of `spans` (in time order, not overlapping) that holds `at`.
fn span_at(spans: &[Span], at: u64) -> Option<Span> {
    let after = spans.partition_point(|s| s.from <= at);
    spans[..after].last().filter(|s| at < s.to).copied()
}

/// The proxy's status as its daemon would report this network (addresses unknown to the log).
fn status(network: &Network) -> Status {
    let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
    network.status(0, 0, |_| (nowhere, nowhere))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::view::View;

    /// Three nodes: n0 leads term 1, is crashed at 2 s while the proxy cuts n1 off; n2 leads
    /// term 2 from 2.5 s; n0 comes back at 3 s.
    const LOG: &str = "\
1.000000 INFO  n0 t0 NODE starting
1.000000 INFO  n1 t0 NODE starting
1.000000 INFO  n2 t0 NODE starting
1.300000 INFO  n0 t1 ELECT became leader (last_log_index=0 commit_index=0)
1.300000 INFO  n1 t1 ELECT new term (was t0), leader=None
1.300000 INFO  n2 t1 ELECT new term (was t0), leader=None
1.400000 INFO  n0 t1 COMMIT commit_index=1
2.000000 INFO  test - FAULT crash n0
2.000000 INFO  proxy - PROXY disconnect 1
2.500000 INFO  n2 t2 ELECT became leader (last_log_index=1 commit_index=1)
3.000000 INFO  test - FAULT start n0
3.100000 INFO  n0 t2 ELECT started as follower
3.200000 INFO  proxy - PROXY heal
";

    fn replay() -> Replay {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.log"), LOG).unwrap();
        Replay::open(dir.path()).unwrap()
    }

    #[test]
    fn a_moment_of_the_log_reads_as_the_dashboard_would_have_seen_it() {
        let replay = replay();
        assert_eq!(replay.span(), (1_000_000, 3_200_000));
        let view = |at| View::new(&replay.reading(at), &[], &[]);

        let led = view(1_500_000);
        assert_eq!((led.leader, led.term), (Some(0), Some(1)));
        let n0 = led.nodes[0].state.as_ref().unwrap();
        assert_eq!((n0.role, n0.commit_index), (Role::Leader, 1));
        assert_eq!(led.nodes[1].state.as_ref().unwrap().leader, Some(0));
        assert_eq!(led.network.summary, "all links up, no faults");

        let crashed = view(2_200_000);
        assert_eq!(crashed.nodes[0].status, "down");
        assert!(!crashed.nodes[1].connected);
        assert_eq!(crashed.network.summary, "disconnected: 1");
        assert_eq!(crashed.leader, None);

        let later = view(3_150_000);
        assert_eq!((later.leader, later.term), (Some(2), Some(2)));
        assert_eq!(later.nodes[0].status, "up");
        assert_eq!(later.nodes[0].state.as_ref().unwrap().leader, Some(2));
        assert!(!later.nodes[1].connected);
        // The last moment of the log still shows every node as its last lines left it.
        let end = view(3_200_000);
        assert_eq!(end.network.summary, "all links up, no faults");
        assert!(end.nodes.iter().all(|n| n.status == "up" && n.connected));
    }
}
