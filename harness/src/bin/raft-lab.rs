//! `raft-lab`: run a cluster in the foreground and talk to it (`just cluster`, `just status`,
//! `just watch`, `just submit`, `just kv`, `just add-node`, `just dashboard`); the commands that talk to it find it
//! through the `layout.json` it writes (`harness::cluster_file`). Proxy commands (partition,
//! heal, ...) are netproxy's own CLI.

use clap::{Parser, Subcommand};
use harness::clerk::{Clerk, ClerkError};
use harness::cluster::{
    Cluster, GroupSpecs, Layout, NodeOptions, DEFAULT_BASE_PORT, MAX_CLERKS, MAX_NODES,
};
use harness::cluster_file::{self, ClusterFile, Sharded, FILE_NAME};
use harness::cluster_socket;
use harness::dashboard::replay::Replay;
use harness::dashboard::view::View;
use harness::dashboard::{self, Dashboard};
use harness::netns;
use harness::node_client::NodeClient;
use harness::ports;
use harness::shardcli::{self, ShardOp, System};
use harness::shardtest;
use harness::shardview;
use harness::watch::{self, frame, frame::Style, Watch};
use raft_auth::Secret;
use raft_node::control::NodeState;
use raft_node::core::MembershipChange;
use raft_node::kv::Op;
use raft_node::runtime::ServiceKind;
use raft_node::wire::ClusterKey;
use serde_json::json;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(version, about = "Run a local raft-lab cluster and talk to it")]
struct Cli {
    /// The running cluster's secret (`cluster` writes a new one into its data dir at every
    /// start), for every command that talks to it.
    #[arg(
        long,
        global = true,
        env = "RAFT_LAB_SECRET_FILE",
        default_value = ".raft-lab/secret",
        value_name = "FILE"
    )]
    secret_file: PathBuf,
    /// The first of the cluster's well-known ports: `cluster` listens from there (nodes +0..,
    /// faces +100.., netproxy control +200, node controls +300.., clerks +400.., clerk faces
    /// +500..), the other commands talk to the cluster there [default: 7000, or what the
    /// cluster wrote to layout.json beside the secret file]
    #[arg(long, global = true, env = "RAFT_LAB_BASE_PORT", value_name = "PORT",
          value_parser = clap::value_parser!(u16).range(1..=MAX_BASE_PORT))]
    base_port: Option<u16>,
    #[command(subcommand)]
    command: Cmd,
}

/// The highest base port whose cluster's ports (up to base + 531) all exist.
const MAX_BASE_PORT: i64 = u16::MAX as i64 - 500 - MAX_CLERKS as i64;

#[derive(Subcommand)]
enum Cmd {
    /// Start netproxy and N raft-nodes on the well-known ports (loopback, or a network
    /// namespace per node with --netns), in the foreground.
    Cluster {
        /// Number of nodes (1 to 8).
        #[arg(default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=MAX_NODES as i64))]
        nodes: u8,
        /// Where the nodes keep their data (one node-N directory each) and the cluster secret
        /// (`secret`, mode 0600, new at every start).
        #[arg(long, default_value = ".raft-lab")]
        data_dir: PathBuf,
        /// The service the nodes host: kv (clerks talk to it: `just kv`) or digest (it folds
        /// every submitted command into a digest).
        #[arg(long, value_enum, default_value_t = ClusterService::Kv)]
        service: ClusterService,
        /// The digest service snapshots every N applied entries (0: never).
        #[arg(long, default_value_t = 100)]
        snapshot_every: u64,
        /// The KV service snapshots once a node's Raft state on disk reaches BYTES.
        #[arg(long, default_value_t = 64 * 1024)]
        max_raft_state: u64,
        /// Also serve the dashboard, with controls that kill, restart and pause nodes.
        #[arg(long)]
        dashboard: bool,
        /// The dashboard's port on 127.0.0.1 (0: any free one).
        #[arg(long, default_value_t = DASHBOARD_PORT)]
        dashboard_port: u16,
        /// Run each node in a Linux network namespace of its own (root only): node i at
        /// 10.77.0.(10+i), netproxy and the clerks on the host's bridge address 10.77.0.1.
        /// Whatever a crashed run left of them is removed first.
        #[arg(long)]
        netns: bool,
        /// The namespaces' subnet, a /24 (the host takes .1, node i .(10+i)).
        #[arg(long, value_name = "A.B.C.0/24", default_value = "10.77.0.0/24", value_parser = subnet_24)]
        netns_subnet: [u8; 3],
        /// A sharded KV (lab 4) instead: 3 shard controllers and N replica groups of 3 servers
        /// (gids 100, 101, …; NODES and --service do not apply), none joined yet (`just shard
        /// join 100`), or all with --join.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=3),
              conflicts_with = "netns")]
        groups: Option<u8>,
        /// With --groups: join every group once the system is up.
        #[arg(long, requires = "groups")]
        join: bool,
    },
    /// The shard controller of a sharded cluster (`cluster --groups N`): join, leave, move, query.
    Shard {
        #[command(subcommand)]
        op: ShardCmd,
        /// Give up (exit 1) after this many seconds.
        #[arg(long, default_value_t = 5.0, value_name = "SECONDS", global = true)]
        timeout: f64,
    },
    /// Print a table of the running cluster's nodes.
    Status {
        /// Print one JSON document instead: {"nodes": [{"id", "answering", "state"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Submit TEXT as a command through the current leader.
    Submit {
        text: String,
        /// Print one JSON document instead: {"node", "index", "term"}.
        #[arg(long)]
        json: bool,
    },
    /// Ask the current leader to hand leadership to node N (Raft thesis §3.10), and wait until
    /// N leads.
    Transfer { to: usize },
    /// Start a node on the next id, add it to the configuration as a learner, and promote it
    /// to voter once it has caught up (Raft thesis §4.2.1).
    AddNode {
        /// Give up after this many seconds (waiting for the learner to catch up included).
        #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
        timeout: f64,
    },
    /// Remove node N from the configuration (§4.1; a leader steps down once it commits), then
    /// stop it and take it out of netproxy.
    RemoveNode {
        n: usize,
        #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
        timeout: f64,
    },
    /// Replace node N: add a node on the next id (learner, then voter), then remove N.
    ReplaceNode {
        n: usize,
        #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
        timeout: f64,
    },
    /// A KV clerk's operation on the running cluster (--service kv), retried across leaders.
    Kv {
        #[command(subcommand)]
        op: KvOp,
        /// Give up (exit 1) when no node has completed it after this many seconds.
        #[arg(long, default_value_t = 5.0, value_name = "SECONDS", global = true)]
        timeout: f64,
        /// Print one JSON document instead: {"op", "key", "value"} (value: what a get read;
        /// null for put and append).
        #[arg(long, global = true)]
        json: bool,
    },
    /// A live table of the running cluster, redrawn every 200 ms: nodes, faults, traffic.
    Watch {
        /// Print one frame (traffic rates measured over one second) and exit; also what
        /// happens when stdout is not a terminal.
        #[arg(long)]
        once: bool,
        /// Print the frame as one JSON document instead (the dashboard's view: `view` in its
        /// /api/state).
        #[arg(long, requires = "once")]
        json: bool,
    },
    /// Serve the live dashboard of the running cluster on 127.0.0.1 (netproxy controls, commands
    /// and KV operations; kill, restart and pause need `cluster --dashboard`).
    Dashboard {
        /// The port (0: any free one).
        #[arg(long, default_value_t = DASHBOARD_PORT)]
        port: u16,
        /// Play a kept run back instead: its directory (run.log in it) or a log file, with a
        /// time slider.
        #[arg(long, value_name = "RUN_DIR")]
        replay: Option<PathBuf>,
    },
}

/// The dashboard's port unless told otherwise: beside the cluster's well-known 7000-7531.
const DASHBOARD_PORT: u16 = 7800;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = || Target::find(&cli.secret_file, cli.base_port);
    let result = match cli.command {
        Cmd::Cluster {
            nodes,
            data_dir,
            service,
            snapshot_every,
            max_raft_state,
            dashboard,
            dashboard_port,
            netns,
            netns_subnet,
            groups,
            join,
        } => {
            let options = match service {
                ClusterService::Kv => NodeOptions {
                    service: ServiceKind::Kv,
                    max_raft_state: Some(max_raft_state),
                    ..NodeOptions::lab()
                },
                ClusterService::Digest => NodeOptions {
                    service: ServiceKind::Digest,
                    snapshot_every,
                    ..NodeOptions::lab()
                },
            };
            let place = Placement {
                base_port: cli.base_port.unwrap_or(DEFAULT_BASE_PORT),
                netns: netns.then_some(netns_subnet),
            };
            let dashboard = dashboard.then_some(dashboard_port);
            match groups {
                Some(groups) => {
                    let sharding = (groups as usize, join, max_raft_state);
                    run_sharded(sharding, data_dir, place, dashboard)
                }
                None => run_cluster(nodes as usize, data_dir, options, place, dashboard, None),
            }
        }
        Cmd::Shard { op, timeout } => target().and_then(|t| shard(&t, op, timeout)),
        Cmd::Status { json } => target().and_then(|t| status(&t, Output::new(json))),
        Cmd::Submit { text, json } => target().and_then(|t| submit(&t, text, Output::new(json))),
        Cmd::Transfer { to } => target().and_then(|t| transfer(&t, to)),
        Cmd::AddNode { timeout } => {
            seconds(timeout).and_then(|t| add_node(&cli.secret_file, cli.base_port, t))
        }
        Cmd::RemoveNode { n, timeout } => {
            seconds(timeout).and_then(|t| remove_node(&cli.secret_file, cli.base_port, n, t))
        }
        Cmd::ReplaceNode { n, timeout } => seconds(timeout).and_then(|t| {
            add_node(&cli.secret_file, cli.base_port, t)?;
            remove_node(&cli.secret_file, cli.base_port, n, t)
        }),
        Cmd::Kv { op, timeout, json } => {
            target().and_then(|t| kv(&t, op, timeout, Output::new(json)))
        }
        Cmd::Watch { once, json } => target().and_then(|t| watch(&t, once, Output::new(json))),
        Cmd::Dashboard { port, replay } => match replay {
            Some(dir) => serve_replay(port, &dir),
            None => target().and_then(|t| serve_dashboard(&t, port)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-lab: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ClusterService {
    Kv,
    Digest,
}

/// Where `cluster` puts its processes.
struct Placement {
    base_port: u16,
    /// A network namespace per node, on this subnet (the first three octets of a /24).
    netns: Option<[u8; 3]>,
}

/// `A.B.C.0/24` as its first three octets.
fn subnet_24(text: &str) -> Result<[u8; 3], String> {
    let bad = || format!("give a /24 such as 10.77.0.0/24, not {text:?}");
    let (addr, bits) = text.split_once('/').ok_or_else(bad)?;
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
    match (addr.octets(), bits) {
        ([a, b, c, 0], "24") => Ok([a, b, c]),
        _ => Err(bad()),
    }
}

/// `cluster --groups N`: controllers and N groups of 3 behind one proxy (`harness::shardtest`'s
/// layout), the groups joined with `join`, each server's `--max-raft-state`.
fn run_sharded(
    (groups, join, max_raft_state): (usize, bool, u64),
    data_dir: PathBuf,
    place: Placement,
    dashboard: Option<u16>,
) -> Result<(), String> {
    const PER_GROUP: usize = 3;
    let sharded = Sharded {
        groups,
        per_group: PER_GROUP,
    };
    let specs = move |layout: &Layout, dir: &Path| {
        shardtest::specs(layout, dir, groups, PER_GROUP, Some(max_raft_state))
    };
    let n = shardtest::NCTRLERS + groups * PER_GROUP;
    let joined = join.then_some(groups);
    run_cluster(
        n,
        data_dir,
        NodeOptions::lab(),
        place,
        dashboard,
        Some((sharded, &specs, joined)),
    )
}

/// A sharded cluster's description, how its processes run, and how many groups to join.
type ShardedStart<'a> = (Sharded, GroupSpecs<'a>, Option<usize>);

/// `cluster`: netproxy and `n` nodes in the foreground until Ctrl-C; `dashboard`: serve it on
/// this port, with control of the nodes.
fn run_cluster(
    n: usize,
    data_dir: PathBuf,
    options: NodeOptions,
    place: Placement,
    dashboard: Option<u16>,
    sharded: Option<ShardedStart<'_>>,
) -> Result<(), String> {
    if place.netns.is_some() {
        if let Some(why) = netns::unavailable() {
            return Err(format!("cluster --netns: {why}"));
        }
    }
    // Two clusters on one data dir would share the nodes' data and overwrite each other's secret.
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let _data_dir_lock = ports::try_lock(data_dir.join("lock"))
        .map_err(|e| format!("cannot lock {}: {e}", data_dir.display()))?
        .ok_or_else(|| {
            format!(
                "{} is the data dir of another running cluster: give this one its own \
                 (--data-dir DIR, and RAFT_LAB_SECRET_FILE=DIR/secret for the commands that \
                 talk to it)",
                data_dir.display()
            )
        })?;
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;

    let specs = sharded.as_ref().map(|(_, specs, _)| *specs);
    let cluster =
        Cluster::launch_foreground(n, &data_dir, options, place.base_port, place.netns, specs)
            .map_err(|e| format!("cannot start the cluster: {e}"))?;
    let layout = cluster.layout().clone();
    if let Some((system, _, Some(groups))) = &sharded {
        let target = Target {
            layout: layout.clone(),
            cluster_id: cluster.key().id,
            secret: cluster.secret().clone(),
            sharded: Some(*system),
        };
        let gids = (0..*groups).map(shardtest::gid_of).collect();
        shard(&target, ShardCmd::Join { gids }, 10.0)?;
    }
    let file = ClusterFile {
        base_port: place.base_port,
        cluster_id: cluster.key().id,
        layout: layout.clone(),
        shards: sharded.as_ref().map(|(system, _, _)| *system),
    };
    file.write(&data_dir)
        .map_err(|e| format!("cannot write {}: {e}", data_dir.join(FILE_NAME).display()))?;
    eprintln!(
        "raft-lab: {n} nodes up (UDP {}..., control {}...{}), netproxy control {}, data and \
         log in {} (just logs {}; just timeline {})",
        layout.nodes[0],
        layout.controls[0],
        if place.netns.is_some() {
            ", each in its network namespace rlab0-nI"
        } else {
            ""
        },
        layout.proxy_control,
        data_dir.display(),
        cluster.log().path().display(),
        cluster.log().path().display()
    );
    let cluster = Arc::new(Mutex::new(cluster));
    // `just add-node` and `just remove-node` ask this process to start and stop nodes.
    cluster_socket::serve(&data_dir, Arc::clone(&cluster), file)
        .map_err(|e| format!("cannot serve {}: {e}", cluster_socket::FILE_NAME))?;
    let dashboard = match dashboard {
        Some(port) => {
            let config = dashboard::Config {
                layout,
                key: cluster.lock().unwrap().key(),
                cluster: Some(Arc::clone(&cluster)),
                port,
                sharded: sharded.as_ref().map(|(system, _, _)| *system),
            };
            let served = Dashboard::start(config)
                .map_err(|e| format!("cannot serve the dashboard on port {port}: {e}"))?;
            eprintln!("raft-lab: dashboard on http://{}/", served.addr());
            Some(served)
        }
        None => None,
    };
    eprintln!(
        "raft-lab: from another terminal: just watch | just dashboard | just status | \
         just submit hello | just partition 0,1 2,3,4 | just heal | just disconnect 2 | \
         just connect 2"
    );
    eprintln!("raft-lab: Ctrl-C stops everything");
    loop {
        match stop_rx.recv_timeout(Duration::from_millis(500)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                for (i, status) in cluster.lock().unwrap().reap_exited() {
                    eprintln!("raft-lab: node {i} exited ({status})");
                }
            }
        }
    }
    eprintln!("raft-lab: stopping");
    ClusterFile::remove(&data_dir);
    cluster_socket::remove(&data_dir);
    // The dashboard first: it holds the cluster too.
    drop(dashboard);
    drop(cluster);
    Ok(())
}

/// The running cluster a command talks to, and the secret it proves.
struct Target {
    layout: Layout,
    cluster_id: u64,
    secret: Secret,
    /// A sharded cluster's groups (`cluster --groups N`).
    sharded: Option<Sharded>,
}

impl Target {
    fn find(secret_file: &Path, base_port: Option<u16>) -> Result<Target, String> {
        let secret = Secret::read_file(secret_file).map_err(|e| {
            format!("{e} (a running 'just cluster' writes it; or give --secret-file)")
        })?;
        let file = cluster_file::resolve(secret_file, base_port)?;
        Ok(Target {
            layout: file.layout,
            cluster_id: file.cluster_id,
            secret,
            sharded: file.shards,
        })
    }

    /// What the cluster's datagrams are sealed with.
    fn key(&self) -> ClusterKey {
        ClusterKey {
            id: self.cluster_id,
            secret: self.secret.clone(),
        }
    }

    fn client(&self, i: usize) -> NodeClient {
        NodeClient::new(self.layout.controls[i], self.secret.clone())
    }

    /// The sharded system, or an error if the cluster is not one.
    fn system(&self) -> Result<System<'_>, String> {
        let sharded = self.sharded.ok_or(
            "the running cluster is not sharded: start one with 'just cluster --groups 3'",
        )?;
        Ok(System {
            layout: &self.layout,
            key: self.key(),
            secret: self.secret.clone(),
            sharded,
        })
    }

    /// Said when no node answers.
    fn nobody_answers(&self) -> String {
        format!(
            "no node answers on {}.. (start a cluster with 'just cluster')",
            self.layout.controls[0]
        )
    }
}

/// A kept run played back through the dashboard, until Ctrl-C.
fn serve_replay(port: u16, dir: &Path) -> Result<(), String> {
    let stop = init_dashboard_process()?;
    let replay = Replay::open(dir)?;
    let (start, end) = replay.span();
    let log = replay.path.display().to_string();
    let served = Dashboard::replay(replay, port).map_err(|e| cannot_serve(port, e))?;
    eprintln!(
        "raft-lab: replay of {log} ({:.1} s) at http://{}/; Ctrl-C stops it",
        (end - start) as f64 / 1e6,
        served.addr()
    );
    let _ = stop.recv();
    drop(served);
    Ok(())
}

/// The dashboard of the running cluster, until Ctrl-C.
fn serve_dashboard(target: &Target, port: u16) -> Result<(), String> {
    let stop = init_dashboard_process()?;
    let config = dashboard::Config {
        layout: target.layout.clone(),
        key: target.key(),
        cluster: None,
        port,
        sharded: target.sharded,
    };
    let served = Dashboard::start(config).map_err(|e| cannot_serve(port, e))?;
    eprintln!(
        "raft-lab: dashboard of the cluster at {}.. on http://{}/ (kill, restart and pause \
         need 'just cluster --dashboard'); Ctrl-C stops it",
        target.layout.controls[0],
        served.addr()
    );
    let _ = stop.recv();
    drop(served);
    Ok(())
}

/// Logging, and a channel that Ctrl-C sends on.
fn init_dashboard_process() -> Result<mpsc::Receiver<()>, String> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(stop_rx)
}

fn cannot_serve(port: u16, e: io::Error) -> String {
    format!("cannot serve the dashboard on port {port}: {e}")
}

/// The nodes that answer on the cluster's control addresses, by id (`None`: not answering). A
/// node that refuses the secret is an error: the wrong cluster, or a stale secret file.
fn poll_nodes(target: &Target) -> Result<Vec<Option<NodeState>>, String> {
    let mut states = Vec::new();
    for (i, addr) in target.layout.controls.iter().enumerate() {
        match target.client(i).get_state() {
            Ok(state) => states.push(Some(state)),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(format!("node at {addr}: {e}"))
            }
            Err(_) => states.push(None),
        }
    }
    while states.last().is_some_and(Option::is_none) {
        states.pop();
    }
    Ok(states)
}

fn status(target: &Target, output: Output) -> Result<(), String> {
    let states = poll_nodes(target)?;
    if states.is_empty() {
        return Err(target.nobody_answers());
    }
    if output == Output::Json {
        let nodes: Vec<_> = (states.iter().enumerate())
            .map(|(id, state)| json!({"id": id, "answering": state.is_some(), "state": state}))
            .collect();
        return print_json(&json!({ "nodes": nodes }));
    }
    // A sharded system's processes form several Raft clusters: a `group` column says which
    // each row belongs to (its `leader` is an id within that group).
    let groups = target
        .sharded
        .map(shardview::raft_groups)
        .unwrap_or_default();
    let group_cell = |row| frame::group_cell(&groups, row);
    println!(
        "{}{:>4}  {:<9}  {:>5}  {:>6}  {:>7}  {:>7}  {:>7}  {:>8}  {:>9}  {:>7}  {:>7}  {:>13}  config",
        group_cell(None),
        "node",
        "role",
        "term",
        "leader",
        "commit",
        "applied",
        "log",
        "snapshot",
        "disk",
        "kv keys",
        "unauth",
        "relay s/f/r/d"
    );
    for (i, state) in states.iter().enumerate() {
        match state {
            Some(s) => println!(
                "{}{:>4}  {:<9}  {:>5}  {:>6}  {:>7}  {:>7}  {:>7}  {:>8}  {:>9}  {:>7}  {:>7}  {:>13}  {}",
                group_cell(Some(i)),
                i,
                s.role_label(),
                s.term,
                s.leader.map_or("-".to_string(), |l| l.to_string()),
                s.commit_index,
                s.last_applied,
                s.last_log_index,
                s.snapshot_index,
                s.raft_state_bytes,
                s.kv_keys.map_or("-".to_string(), |k| k.to_string()),
                s.unauthenticated,
                relay_label(&s.relay),
                s.config_label()
            ),
            None => println!("{}{i:>4}  down", group_cell(Some(i))),
        }
    }
    if let Some(sharded) = target.sharded {
        let nodes: Vec<_> = states.iter().map(Option::as_ref).collect();
        print!("\n{}", shardview::render(&nodes, sharded));
    }
    Ok(())
}

/// A node's relayed copies (issue 16): sent through a relay / forwarded as one / received
/// through one / refused.
fn relay_label(r: &raft_node::control::RelayStats) -> String {
    format!("{}/{}/{}/{}", r.sent, r.forwarded, r.received, r.dropped)
}

#[derive(Subcommand)]
enum KvOp {
    /// Print the value of KEY ("" if it was never written).
    Get { key: String },
    /// Set KEY to VALUE.
    Put { key: String, value: String },
    /// Append VALUE to the value of KEY.
    Append { key: String, value: String },
}

#[derive(Subcommand)]
enum ShardCmd {
    /// Join groups GID… (one Join; each must have servers running).
    Join {
        #[arg(required = true, value_name = "GID")]
        gids: Vec<u64>,
    },
    /// Leave groups GID… (one Leave).
    Leave {
        #[arg(required = true, value_name = "GID")]
        gids: Vec<u64>,
    },
    /// Move SHARD (0..=9) to group GID.
    Move { shard: usize, gid: u64 },
    /// Print configuration N (the latest without N).
    Query { num: Option<u64> },
}

/// `raft-lab shard …` against a sharded cluster.
fn shard(target: &Target, op: ShardCmd, timeout: f64) -> Result<(), String> {
    let deadline = deadline_in(timeout)?;
    let system = target.system()?;
    let op = match op {
        ShardCmd::Join { gids } => ShardOp::Join(gids),
        ShardCmd::Leave { gids } => ShardOp::Leave(gids),
        ShardCmd::Move { shard, gid } => ShardOp::Move { shard, gid },
        ShardCmd::Query { num } => ShardOp::Query(num),
    };
    if let Some(config) = system.shard(op, deadline)? {
        print!("{}", shardcli::show(&config));
    }
    Ok(())
}

/// Now plus `timeout` seconds, which must be a positive number.
fn deadline_in(timeout: f64) -> Result<Instant, String> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(format!(
            "--timeout {timeout}: give a positive number of seconds"
        ));
    }
    Ok(Instant::now() + Duration::from_secs_f64(timeout))
}

fn kv(target: &Target, op: KvOp, timeout: f64, output: Output) -> Result<(), String> {
    deadline_in(timeout)?;
    if target.sharded.is_some() {
        return sharded_kv(target, op, timeout, output);
    }
    let n = poll_nodes(target)?.len();
    if n == 0 {
        return Err(target.nobody_answers());
    }
    // Through netproxy, as one of its clerks: `just partition 0,1,c0 2,3,4` applies to it.
    let layout = &target.layout;
    let faces = layout.faces[..n].to_vec();
    let (mut clerk, _) = Clerk::at_free_endpoint(&layout.clerks, faces, target.key())
        .map_err(|e| format!("cannot open the clerk's socket: {e}"))?;
    let (name, key, op) = match op {
        KvOp::Get { key } => ("get", key.clone(), Op::Get { key }),
        KvOp::Put { key, value } => ("put", key.clone(), Op::Put { key, value }),
        KvOp::Append { key, value } => ("append", key.clone(), Op::Append { key, value }),
    };
    let is_get = name == "get";
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    match clerk.call(op, Some(deadline)) {
        Ok(value) if output == Output::Json => {
            let value = is_get.then_some(value);
            print_json(&json!({"op": name, "key": key, "value": value}))
        }
        Ok(value) if is_get => {
            println!("{value}");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(ClerkError::Timeout) if !is_get => Err(format!(
            "no node completed it within {timeout} s (is there a leader? see 'just status'); \
             it may still be applied"
        )),
        Err(e) => Err(format!("{e} within {timeout} s (see 'just status')")),
    }
}

/// `raft-lab kv` on a sharded cluster: routed by shard, as the lab's clerk does.
fn sharded_kv(target: &Target, op: KvOp, timeout: f64, output: Output) -> Result<(), String> {
    let system = target.system()?;
    let (name, key, op) = match op {
        KvOp::Get { key } => ("get", key.clone(), Op::Get { key }),
        KvOp::Put { key, value } => ("put", key.clone(), Op::Put { key, value }),
        KvOp::Append { key, value } => ("append", key.clone(), Op::Append { key, value }),
    };
    let value = system.kv(op, deadline_in(timeout)?)?;
    let is_get = name == "get";
    if output == Output::Json {
        let value = is_get.then_some(value);
        return print_json(&json!({"op": name, "key": key, "value": value}));
    }
    if is_get {
        println!("{value}");
    }
    Ok(())
}

/// The node that leads in the highest term, among those that answer.
fn current_leader(target: &Target) -> Result<usize, String> {
    poll_nodes(target)?
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().filter(|s| s.is_leader).map(|s| (s.term, i)))
        .max()
        .map(|(_, i)| i)
        .ok_or_else(|| {
            "no leader right now (see 'just status'); try again after an election".to_string()
        })
}

fn submit(target: &Target, text: String, output: Output) -> Result<(), String> {
    let leader = current_leader(target)?;
    match target.client(leader).start(text.as_bytes()) {
        Ok(Some((index, term))) if output == Output::Json => {
            print_json(&json!({"node": leader, "index": index, "term": term}))
        }
        Ok(Some((index, term))) => {
            println!("submitted to node {leader}: index {index}, term {term}");
            Ok(())
        }
        Ok(None) => Err(format!("node {leader} is no longer leader; try again")),
        Err(e) => Err(format!("node {leader}: {e}")),
    }
}

fn transfer(target: &Target, to: usize) -> Result<(), String> {
    let leader = current_leader(target)?;
    if leader == to {
        println!("node {to} leads already");
        return Ok(());
    }
    let controls = &target.layout.controls;
    let target_addr = controls
        .get(to)
        .ok_or_else(|| format!("there is no node {to} (nodes are 0..{})", controls.len()))?;
    let started = Instant::now();
    target
        .client(leader)
        .transfer(to as u32)
        .map_err(|e| format!("node {leader} refused: {e}"))?;
    // The transfer ends within an election timeout, won or abandoned; wait a little longer.
    let deadline = started + Duration::from_secs(2);
    let new_leader = NodeClient::with_timeout(
        *target_addr,
        Duration::from_millis(500),
        target.secret.clone(),
    );
    while Instant::now() < deadline {
        if new_leader.get_state().is_ok_and(|s| s.is_leader) {
            println!(
                "node {to} leads (from node {leader}, after {} ms)",
                started.elapsed().as_millis()
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!(
        "node {to} did not take over within 2 s (down, cut off, or behind?); node {leader} \
         accepts commands again after an election timeout"
    ))
}

/// `--timeout SECONDS` as a duration.
fn seconds(timeout: f64) -> Result<Duration, String> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(format!(
            "--timeout {timeout}: give a positive number of seconds"
        ));
    }
    Ok(Duration::from_secs_f64(timeout))
}

/// A refusal that passes by itself: no leader yet, a change or a transfer under way, a term
/// not committed yet, a learner still catching up.
fn passes(refusal: &str) -> bool {
    [
        "try again",
        "not committed yet",
        "not caught up",
        "not the leader",
    ]
    .iter()
    .any(|what| refusal.contains(what))
}

/// Has the leader propose `change`, retrying refusals that pass, and waits until the leader
/// reports a committed configuration for which `done` holds. Returns the change's index.
fn propose_change(
    target: &Target,
    change: MembershipChange,
    done: impl Fn(&NodeState) -> bool,
    deadline: Instant,
) -> Result<u64, String> {
    let mut last = String::new();
    let index = loop {
        if Instant::now() > deadline {
            return Err(format!("{change:?} not accepted in time: {last}"));
        }
        let leader = match current_leader(target) {
            Ok(leader) => leader,
            Err(e) => {
                last = e;
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        match target.client(leader).change_membership(change) {
            Ok(Ok((index, term))) => {
                eprintln!(
                    "raft-lab: node {leader} proposed {change:?} at index {index}, term {term}"
                );
                break index;
            }
            Ok(Err(why)) if passes(&why) => last = format!("node {leader}: {why}"),
            Ok(Err(why)) => return Err(format!("node {leader} refused {change:?}: {why}")),
            Err(e) => last = format!("node {leader}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    loop {
        let committed = current_leader(target)
            .ok()
            .and_then(|leader| target.client(leader).get_state().ok())
            .filter(|s| s.commit_index >= s.membership_index && done(s));
        if let Some(s) = committed {
            eprintln!("raft-lab: committed: {}", s.config_label());
            return Ok(index);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{change:?} (index {index}) not committed in time; see 'just status'"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `just add-node`: a new process on the next id, added as a learner, promoted once caught up.
fn add_node(secret_file: &Path, base_port: Option<u16>, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let id: u32 = cluster_socket::request(secret_file, "add-node")?
        .parse()
        .map_err(|e| format!("the cluster's answer to add-node: {e}"))?;
    eprintln!("raft-lab: node {id} started; adding it as a learner");
    // The cluster wrote the grown layout: read it again to reach the new node.
    let target = Target::find(secret_file, base_port)?;
    propose_change(
        &target,
        MembershipChange::AddLearner(id),
        |s| s.learners.contains(&id) || s.voters.contains(&id),
        deadline,
    )?;
    eprintln!("raft-lab: node {id} is a learner; promoting it once it has caught up");
    propose_change(
        &target,
        MembershipChange::Promote(id),
        |s| s.voters.contains(&id),
        deadline,
    )?;
    println!("node {id} is a voter");
    Ok(())
}

/// `just remove-node N`: N leaves the configuration, then its process stops and netproxy
/// drops it.
fn remove_node(
    secret_file: &Path,
    base_port: Option<u16>,
    n: usize,
    timeout: Duration,
) -> Result<(), String> {
    let target = Target::find(secret_file, base_port)?;
    let id = n as u32;
    propose_change(
        &target,
        MembershipChange::Remove(id),
        |s| !s.voters.contains(&id) && !s.learners.contains(&id),
        Instant::now() + timeout,
    )?;
    cluster_socket::request(secret_file, &format!("retire {n}"))?;
    println!("node {n} removed and stopped");
    Ok(())
}

/// The live view of the cluster (the proxy tells how many nodes it has).
fn watch(target: &Target, once: bool, output: Output) -> Result<(), String> {
    let layout = &target.layout;
    let mut watch =
        Watch::new(&layout.controls, layout.proxy_control, &target.secret).sharded(target.sharded);
    if once || !std::io::stdout().is_terminal() {
        // A first stats snapshot, so that the frame shows rates over a full window.
        let first = watch.poll();
        if first.nodes.is_empty() && first.proxy.state.is_err() {
            return Err(format!(
                "neither netproxy ({}) nor any node ({}..) answers (start a cluster with \
                 'just cluster')",
                layout.proxy_control, layout.controls[0]
            ));
        }
        std::thread::sleep(watch::RATE_WINDOW);
        if output == Output::Json {
            return print_json(&View::new(&watch.poll(), &[], &watch.groups()));
        }
        print!("{}", watch.frame(Style::Plain));
        return Ok(());
    }
    watch::terminal::run(&mut watch)
}

/// How a command prints what it found: for people, or as one JSON document on stdout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

impl Output {
    fn new(json: bool) -> Output {
        if json {
            Output::Json
        } else {
            Output::Text
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string(value).map_err(|e| format!("cannot write JSON: {e}"))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_netns_subnet_is_a_24() {
        assert_eq!(subnet_24("10.99.3.0/24"), Ok([10, 99, 3]));
        for bad in [
            "10.99.3.0",
            "10.99.3.1/24",
            "10.99.0.0/16",
            "10.99.3/24",
            "x/24",
        ] {
            let e = subnet_24(bad).unwrap_err();
            assert!(e.contains("10.77.0.0/24") && e.contains(bad), "{e}");
        }
    }
}
