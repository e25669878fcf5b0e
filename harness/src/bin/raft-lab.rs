//! `raft-lab`: run a cluster in the foreground and talk to it (`just cluster`, `just status`,
//! `just watch`, `just submit`, `just dashboard`). Proxy commands (partition, heal, ...) are netproxy's own CLI.

use clap::{Parser, Subcommand};
use harness::clerk::{Clerk, ClerkError};
use harness::cluster::{Cluster, Layout, NodeOptions, MAX_NODES};
use harness::dashboard::replay::Replay;
use harness::dashboard::{self, Dashboard};
use harness::node_client::NodeClient;
use harness::watch::{self, frame::Style, Watch};
use raft_node::control::NodeState;
use raft_node::kv::Op;
use raft_node::runtime::ServiceKind;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(version, about = "Run a local raft-lab cluster and talk to it")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start netproxy and N raft-nodes on the well-known loopback ports, in the foreground.
    Cluster {
        /// Number of nodes (1 to 8).
        #[arg(default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=MAX_NODES as i64))]
        nodes: u8,
        /// Where the nodes keep their data (one node-N directory each).
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
    },
    /// Print a table of the running cluster's nodes.
    Status,
    /// Submit TEXT as a command through the current leader.
    Submit { text: String },
    /// A KV clerk's operation on the running cluster (--service kv), retried across leaders.
    Kv {
        #[command(subcommand)]
        op: KvOp,
        /// Give up (exit 1) when no node has completed it after this many seconds.
        #[arg(long, default_value_t = 5.0, value_name = "SECONDS", global = true)]
        timeout: f64,
    },
    /// A live table of the running cluster, redrawn every 200 ms: nodes, faults, traffic.
    Watch {
        /// Print one frame (traffic rates measured over one second) and exit; also what
        /// happens when stdout is not a terminal.
        #[arg(long)]
        once: bool,
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
    let result = match cli.command {
        Cmd::Cluster {
            nodes,
            data_dir,
            service,
            snapshot_every,
            max_raft_state,
            dashboard,
            dashboard_port,
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
            let dashboard = dashboard.then_some(dashboard_port);
            run_cluster(nodes as usize, data_dir, options, dashboard)
        }
        Cmd::Status => status(),
        Cmd::Submit { text } => submit(text),
        Cmd::Kv { op, timeout } => kv(op, timeout),
        Cmd::Watch { once } => watch(once),
        Cmd::Dashboard { port, replay } => serve_dashboard(port, replay),
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

/// `dashboard`: serve it on this port, with control of the nodes.
fn run_cluster(
    n: usize,
    data_dir: PathBuf,
    options: NodeOptions,
    dashboard: Option<u16>,
) -> Result<(), String> {
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;

    let cluster = Cluster::launch_foreground(n, &data_dir, options)
        .map_err(|e| format!("cannot start the cluster: {e}"))?;
    let layout = Layout::well_known(n);
    eprintln!(
        "raft-lab: {n} nodes up (UDP {}..., control {}...), netproxy control {}, data and \
         log in {} (just logs {}; just timeline {})",
        layout.nodes[0],
        layout.controls[0],
        layout.proxy_control,
        data_dir.display(),
        cluster.log().path().display(),
        cluster.log().path().display()
    );
    let cluster = Arc::new(Mutex::new(cluster));
    let dashboard = match dashboard {
        Some(port) => {
            let config = dashboard::Config {
                layout: layout.clone(),
                cluster_id: cluster.lock().unwrap().cluster_id(),
                cluster: Some(Arc::clone(&cluster)),
                port,
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
    // The dashboard first: it holds the cluster too.
    drop(dashboard);
    drop(cluster);
    Ok(())
}

/// The dashboard of the cluster on the well-known ports, or of a kept run, until Ctrl-C.
fn serve_dashboard(port: u16, replay: Option<PathBuf>) -> Result<(), String> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    let cannot = |e| format!("cannot serve the dashboard on port {port}: {e}");
    let served = match replay {
        Some(dir) => {
            let replay = Replay::open(&dir)?;
            let (start, end) = replay.span();
            let log = replay.path.display().to_string();
            let served = Dashboard::replay(replay, port).map_err(cannot)?;
            eprintln!(
                "raft-lab: replay of {log} ({:.1} s) at http://{}/; Ctrl-C stops it",
                (end - start) as f64 / 1e6,
                served.addr()
            );
            served
        }
        None => {
            let config = dashboard::Config {
                layout: Layout::well_known(MAX_NODES),
                // `just cluster`'s nodes (Cluster::launch_foreground).
                cluster_id: 1,
                cluster: None,
                port,
            };
            let served = Dashboard::start(config).map_err(cannot)?;
            eprintln!(
                "raft-lab: dashboard of the cluster on 127.0.0.1:7000.. at http://{}/ (kill, \
                 restart and pause need 'just cluster --dashboard'); Ctrl-C stops it",
                served.addr()
            );
            served
        }
    };
    let _ = stop_rx.recv();
    drop(served);
    Ok(())
}

/// The nodes that answer on the well-known control ports, by id (`None`: not answering).
fn poll_nodes() -> Vec<Option<NodeState>> {
    let layout = Layout::well_known(MAX_NODES);
    let mut states: Vec<_> = layout
        .controls
        .iter()
        .map(|&addr| NodeClient::new(addr).get_state().ok())
        .collect();
    while states.last().is_some_and(Option::is_none) {
        states.pop();
    }
    states
}

fn status() -> Result<(), String> {
    let states = poll_nodes();
    if states.is_empty() {
        return Err(
            "no node answers on 127.0.0.1:7300.. (start a cluster with 'just cluster')".into(),
        );
    }
    println!(
        "{:>4}  {:<9}  {:>5}  {:>6}  {:>7}  {:>7}  {:>7}  {:>8}  {:>9}  {:>7}",
        "node", "role", "term", "leader", "commit", "applied", "log", "snapshot", "disk", "kv keys"
    );
    for (i, state) in states.iter().enumerate() {
        match state {
            Some(s) => println!(
                "{:>4}  {:<9}  {:>5}  {:>6}  {:>7}  {:>7}  {:>7}  {:>8}  {:>9}  {:>7}",
                i,
                format!("{:?}", s.role),
                s.term,
                s.leader.map_or("-".to_string(), |l| l.to_string()),
                s.commit_index,
                s.last_applied,
                s.last_log_index,
                s.snapshot_index,
                s.raft_state_bytes,
                s.kv_keys.map_or("-".to_string(), |k| k.to_string())
            ),
            None => println!("{i:>4}  down"),
        }
    }
    Ok(())
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

fn kv(op: KvOp, timeout: f64) -> Result<(), String> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(format!(
            "--timeout {timeout}: give a positive number of seconds"
        ));
    }
    let n = poll_nodes().len();
    if n == 0 {
        return Err(
            "no node answers on 127.0.0.1:7300.. (start a cluster with 'just cluster')".into(),
        );
    }
    // Through netproxy, as one of its clerks: `just partition 0,1,c0 2,3,4` applies to it.
    let layout = Layout::well_known(n);
    let (mut clerk, _) = Clerk::at_free_endpoint(&layout.clerks, layout.faces, 1)
        .map_err(|e| format!("cannot open the clerk's socket: {e}"))?;
    let (op, is_get) = match op {
        KvOp::Get { key } => (Op::Get { key }, true),
        KvOp::Put { key, value } => (Op::Put { key, value }, false),
        KvOp::Append { key, value } => (Op::Append { key, value }, false),
    };
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    match clerk.call(op, Some(deadline)) {
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

fn submit(text: String) -> Result<(), String> {
    let states = poll_nodes();
    let leader = states
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().filter(|s| s.is_leader).map(|s| (s.term, i)))
        .max()
        .map(|(_, i)| i)
        .ok_or("no leader right now (see 'just status'); try again after an election")?;
    let client = NodeClient::new(Layout::well_known(MAX_NODES).controls[leader]);
    match client.start(text.as_bytes()) {
        Ok(Some((index, term))) => {
            println!("submitted to node {leader}: index {index}, term {term}");
            Ok(())
        }
        Ok(None) => Err(format!("node {leader} is no longer leader; try again")),
        Err(e) => Err(format!("node {leader}: {e}")),
    }
}

/// The live view of the cluster on the well-known ports (the proxy tells how many nodes it has).
fn watch(once: bool) -> Result<(), String> {
    let layout = Layout::well_known(MAX_NODES);
    let mut watch = Watch::new(&layout.controls, layout.proxy_control);
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
        print!("{}", watch.frame(Style::Plain));
        return Ok(());
    }
    watch::terminal::run(&mut watch)
}
