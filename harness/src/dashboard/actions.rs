//! What the dashboard's controls do to the real cluster. Each action answers with the command
//! line a user would type for it, so the page teaches the CLI.

use super::view::Process;
use crate::clerk::{Clerk, ClerkError};
use crate::cluster::{Cluster, Layout, DEFAULT_BASE_PORT};
use crate::cluster_file::Sharded;
use crate::node_client::NodeClient;
use crate::shardcli::System;
use log::Level;
use netproxy::{Client, Command};
use raft_auth::Secret;
use raft_node::kv::Op;
use raft_node::wire::ClusterKey;
use serde::Serialize;
use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a KV operation from the page may retry across leaders (`just kv`'s default).
const KV_TIMEOUT: Duration = Duration::from_secs(5);

/// The answer to a control: the command it stands for and how it went.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub ok: bool,
    pub command: String,
    pub message: String,
}

impl Outcome {
    fn new(command: String, result: Result<String, String>) -> Outcome {
        match result {
            Ok(message) => Outcome {
                ok: true,
                command,
                message,
            },
            Err(message) => Outcome {
                ok: false,
                command,
                message,
            },
        }
    }
}

/// `netproxy` as the user would call it for this proxy: `--control` only off the default port.
pub fn proxy_cli(proxy: SocketAddr) -> String {
    if proxy == Layout::well_known(1, DEFAULT_BASE_PORT).proxy_control {
        "netproxy".to_string()
    } else {
        format!("netproxy --control {proxy}")
    }
}

/// A word as a POSIX shell reads it back: quoted unless every character is harmless.
pub fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || ",._/:=@%+-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs one netproxy command line (`partition 0,1 2,3,4`, `down 0->1`, `heal`...). Only
/// changes to the network: the page has the status and stats already.
pub fn proxy(proxy: SocketAddr, secret: &Secret, line: &str) -> Outcome {
    let parsed = line.parse::<Command>();
    let words: Vec<String> = line.split_whitespace().map(shell_word).collect();
    let shown = format!("{} {}", proxy_cli(proxy), words.join(" "));
    let result = match parsed {
        Ok(cmd @ Command::Change(_)) => Client::new(proxy, secret.clone())
            .send(&cmd)
            .map(|_| "done".to_string())
            .map_err(|e| e.to_string()),
        Ok(_) => Err("only commands that change the network are run from here".into()),
        Err(e) => Err(e.to_string()),
    };
    Outcome::new(shown, result)
}

/// Submits `text` as a raw command through the leader (`raft-lab submit`).
pub fn submit(
    controls: &[SocketAddr],
    secret: &Secret,
    leader: Option<usize>,
    text: &str,
) -> Outcome {
    let shown = format!("raft-lab submit {}", shell_word(text));
    let result = match leader {
        None => Err("no leader right now; try again after an election".to_string()),
        Some(i) => match NodeClient::new(controls[i], secret.clone()).start(text.as_bytes()) {
            Ok(Some((index, term))) => Ok(format!("node {i}: index {index}, term {term}")),
            Ok(None) => Err(format!("node {i} is no longer leader; try again")),
            Err(e) => Err(format!("node {i}: {e}")),
        },
    };
    Outcome::new(shown, result)
}

/// A KV clerk's `put K V`, `append K V` or `get K` through the proxy (`raft-lab kv`).
pub fn kv(layout: &Layout, key: &ClusterKey, nodes: usize, line: &str) -> Outcome {
    let (shown, op) = match kv_op(line) {
        Ok(parsed) => parsed,
        Err(refused) => return refused,
    };
    if nodes == 0 {
        return Outcome::new(shown, Err("no node answers".into()));
    }
    let is_get = matches!(op, Op::Get { .. });
    let faces = layout.faces[..nodes].to_vec();
    let result = match Clerk::at_free_endpoint(&layout.clerks, faces, key.clone()) {
        Err(e) => Err(format!("cannot open a clerk's socket: {e}")),
        Ok((mut clerk, k)) => match clerk.call(op, Some(Instant::now() + KV_TIMEOUT)) {
            Ok(value) if is_get => Ok(format!("c{k}: {value:?}")),
            Ok(_) => Ok(format!("c{k}: done")),
            Err(ClerkError::Timeout) => Err(format!(
                "c{k}: no node completed it within {} s; it may still be applied",
                KV_TIMEOUT.as_secs()
            )),
            Err(e) => Err(format!("c{k}: {e}")),
        },
    };
    Outcome::new(shown, result)
}

/// The same on a sharded system (`raft-lab cluster --groups N`): a shard clerk routes it to
/// the group that owns the key's shard, as the sharded `raft-lab kv` does.
pub fn sharded_kv(layout: &Layout, key: &ClusterKey, sharded: Sharded, line: &str) -> Outcome {
    let (shown, op) = match kv_op(line) {
        Ok(parsed) => parsed,
        Err(refused) => return refused,
    };
    let is_get = matches!(op, Op::Get { .. });
    let system = System {
        layout,
        key: key.clone(),
        secret: key.secret.clone(),
        sharded,
    };
    let result = match system.kv(op, Instant::now() + KV_TIMEOUT) {
        Ok(value) if is_get => Ok(format!("{value:?}")),
        Ok(_) => Ok("done".to_string()),
        Err(e) => Err(e),
    };
    Outcome::new(shown, result)
}

/// The command line a KV control shows, and its operation; or the refusal of a line that is
/// not one.
fn kv_op(line: &str) -> Result<(String, Op), Outcome> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let op = match words.as_slice() {
        ["get", key] => Some(Op::Get {
            key: key.to_string(),
        }),
        ["put", key, value] => Some(Op::Put {
            key: key.to_string(),
            value: value.to_string(),
        }),
        ["append", key, value] => Some(Op::Append {
            key: key.to_string(),
            value: value.to_string(),
        }),
        _ => None,
    };
    let quoted: Vec<String> = words.iter().map(|w| shell_word(w)).collect();
    let shown = format!("raft-lab kv {}", quoted.join(" "));
    match op {
        Some(op) => Ok((shown, op)),
        None => Err(Outcome::new(
            shown,
            Err("say put K V, append K V or get K".into()),
        )),
    }
}

/// Kill, restart, pause and resume of the nodes of a cluster this process runs: only such a
/// process owns the children (a separate dashboard could signal them, but not restart them).
///
/// The actions run on one thread that lives as long as this: a node gets SIGKILL when the
/// thread that spawned it ends (PR_SET_PDEATHSIG), so a restart must not happen on a request's
/// thread. Dropping this ends the thread and waits for it: the thread holds the cluster too,
/// and the cluster's owner, dropping it next, must be the last to hold it.
pub struct NodeControl {
    nodes: Arc<Nodes>,
    /// `None` once dropping: the closed queue ends the thread.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    worker: Option<JoinHandle<()>>,
}

/// An action's line and where its outcome goes.
type Job = (String, mpsc::Sender<Outcome>);

struct Nodes {
    cluster: Arc<Mutex<Cluster>>,
    done: Mutex<Done>,
}

/// What the dashboard did to the nodes, by id.
#[derive(Default)]
struct Done {
    killed: BTreeSet<usize>,
    paused: BTreeSet<usize>,
}

impl NodeControl {
    pub fn new(cluster: Arc<Mutex<Cluster>>) -> io::Result<NodeControl> {
        let nodes = Arc::new(Nodes {
            cluster,
            done: Mutex::new(Done::default()),
        });
        let (jobs, queue) = mpsc::channel::<Job>();
        let acting = Arc::clone(&nodes);
        let worker = std::thread::Builder::new()
            .name("dashboard-nodes".into())
            .spawn(move || {
                for (line, reply) in queue {
                    let _ = reply.send(acting.act(&line));
                }
            })?;
        Ok(NodeControl {
            nodes,
            jobs: Mutex::new(Some(jobs)),
            worker: Some(worker),
        })
    }

    /// Each node's process as the dashboard left it; `None` while the cluster is busy (a
    /// restart holds it until the node answers), so a frame never waits for it.
    pub fn processes(&self) -> Option<Vec<Process>> {
        let cluster = self.nodes.cluster.try_lock().ok()?;
        let done = self.nodes.done.lock().unwrap();
        Some(
            (0..cluster.len())
                .map(|i| Process {
                    pid: cluster.pid(i),
                    killed: done.killed.contains(&i) && !cluster.is_alive(i),
                    paused: done.paused.contains(&i),
                })
                .collect(),
        )
    }

    /// `kill 2`, `restart 2`, `pause 2` or `resume 2`, on the nodes' thread.
    pub fn act(&self, line: &str) -> Outcome {
        let (reply, answer) = mpsc::channel();
        let sent = (self.jobs.lock().unwrap().as_ref())
            .is_some_and(|jobs| jobs.send((line.to_string(), reply)).is_ok());
        match sent.then(|| answer.recv().ok()).flatten() {
            Some(outcome) => outcome,
            None => Outcome::new(line.to_string(), Err("the dashboard is stopping".into())),
        }
    }
}

impl Drop for NodeControl {
    fn drop(&mut self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Nodes {
    fn act(&self, line: &str) -> Outcome {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (verb, i) = match words.as_slice() {
            [verb, id] => (*verb, id.parse::<usize>().ok()),
            _ => ("", None),
        };
        let mut cluster = self.cluster.lock().unwrap();
        let Some(i) = i.filter(|&i| i < cluster.len()) else {
            return Outcome::new(
                line.to_string(),
                Err(format!(
                    "say kill N, restart N, pause N or resume N, N below {}",
                    cluster.len()
                )),
            );
        };
        let pid = cluster.pid(i);
        let signal_line = |sig: &str| match pid {
            Some(pid) => format!("kill -{sig} {pid}"),
            None => format!("kill -{sig} (node {i} is not running)"),
        };
        let mut done = self.done.lock().unwrap();
        let (shown, result) = match verb {
            "kill" => {
                cluster.crash(i);
                done.paused.remove(&i);
                done.killed.insert(i);
                (signal_line("KILL"), Ok(format!("node {i} killed")))
            }
            "pause" | "resume" => {
                let (sig, number) = match verb {
                    "pause" => ("STOP", libc::SIGSTOP),
                    _ => ("CONT", libc::SIGCONT),
                };
                let shown = signal_line(sig);
                match pid {
                    Some(pid) => {
                        // SAFETY: kill(2) with the pid of a child this process still owns
                        // (the cluster's lock is held, so it is not reaped meanwhile).
                        unsafe { libc::kill(pid as libc::pid_t, number) };
                        let text = format!("SIG{sig} n{i} (dashboard)");
                        cluster.log().event(Level::Info, "FAULT", &text);
                        if verb == "pause" {
                            done.paused.insert(i);
                        } else {
                            done.paused.remove(&i);
                        }
                        (shown, Ok(format!("node {i} {verb}d")))
                    }
                    None => (shown, Err(format!("node {i} is not running"))),
                }
            }
            "restart" => {
                // Start waits until the node answers; the frames go on meanwhile with the
                // processes as they were (see `processes`).
                drop(done);
                let result = cluster
                    .start(i)
                    .map(|()| format!("node {i} running again"))
                    .map_err(|e| format!("node {i}: {e}"));
                done = self.done.lock().unwrap();
                done.killed.remove(&i);
                (
                    // Its own arguments: in a sharded system `--id` is its place in its group.
                    format!("raft-node run ... (raft-lab cluster starts node {i} again on its data dir)"),
                    result,
                )
            }
            _ => (
                line.to_string(),
                Err(format!(
                    "no such action {verb:?}: kill, restart, pause or resume"
                )),
            ),
        };
        Outcome::new(shown, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_shown_as_a_shell_reads_them() {
        assert_eq!(shell_word("0,1"), "0,1");
        assert_eq!(shell_word("0->1"), "'0->1'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(
            proxy_cli(Layout::well_known(3, DEFAULT_BASE_PORT).proxy_control),
            "netproxy"
        );
        let other = SocketAddr::from(([127, 0, 0, 1], 21048));
        assert_eq!(proxy_cli(other), "netproxy --control 127.0.0.1:21048");
    }

    #[test]
    fn only_network_changes_are_run_and_bad_ones_say_why() {
        // Nothing listens on port 1: a command that parses would fail to connect instead.
        let nowhere = SocketAddr::from(([127, 0, 0, 1], 1));
        let secret = Secret::from_bytes(&[7; 32]);
        let query = proxy(nowhere, &secret, "stats");
        assert!(!query.ok && query.message.contains("only commands that change"));
        let typo = proxy(nowhere, &secret, "partiton 0 1");
        assert!(!typo.ok, "{typo:?}");
        assert_eq!(typo.command, "netproxy --control 127.0.0.1:1 partiton 0 1");
        let down = proxy(nowhere, &secret, "down 0->1");
        assert_eq!(down.command, "netproxy --control 127.0.0.1:1 down '0->1'");
        assert!(
            !down.ok && down.message.contains("no proxy is listening"),
            "{down:?}"
        );
        let key = ClusterKey { id: 1, secret };
        let kv_typo = kv(
            &Layout::well_known(3, DEFAULT_BASE_PORT),
            &key,
            3,
            "set k v",
        );
        assert!(
            !kv_typo.ok && kv_typo.message.contains("put K V"),
            "{kv_typo:?}"
        );
    }
}
