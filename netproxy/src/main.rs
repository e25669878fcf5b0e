//! The `netproxy` command: `netproxy run` is the daemon; every other subcommand is a client
//! that sends one command to a running daemon's control socket.

use clap::{Args, CommandFactory, Parser, Subcommand};
use log::info;
use netproxy::daemon::{Config, Daemon};
use netproxy::{Client, Command};
use raft_auth::Secret;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the client commands find the cluster secret unless told (`raft-lab cluster` writes it).
const DEFAULT_SECRET_FILE: &str = ".raft-lab/secret";

/// Fault-injecting UDP proxy: every raft-lab peer datagram passes through it.
#[derive(Parser)]
#[command(name = "netproxy", version, after_help = EXAMPLES)]
struct Cli {
    /// The daemon's control address: where `run` listens and where every other command connects
    #[arg(
        long,
        global = true,
        env = "NETPROXY_CONTROL",
        default_value = "127.0.0.1:7200",
        value_name = "ADDR"
    )]
    control: SocketAddr,

    /// The cluster secret: the control socket takes only clients that hold it. `run` needs it
    /// given; the other commands default to .raft-lab/secret
    #[arg(long, global = true, env = "RAFT_LAB_SECRET_FILE", value_name = "FILE")]
    secret_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Cmd,
}

const EXAMPLES: &str = "\
Examples (quote links: the shell reads > as a redirection):
  netproxy run --nodes 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 \\
               --faces 127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102 \\
               --clerks 127.0.0.1:7400 --clerk-faces 127.0.0.1:7500
  netproxy partition 0,1 2
  netproxy partition 0,1,c0 2
  netproxy down '0->1'
  netproxy down 'c0<->2'
  netproxy drop 0.1 '1<->2'
  netproxy delay 5ms..20ms 2
  netproxy unreliable --long-reordering
  netproxy stats";

#[derive(Subcommand)]
enum Cmd {
    /// Run the proxy daemon in the foreground; prints one `ready ...` line once bound
    Run(RunArgs),
    /// Split the cluster into groups: links across groups go down, links within a group come up
    ///
    /// Nodes named in no group form one more group together; clerks named in no group keep
    /// their links.
    Partition {
        /// Node ids and clerks (c0) joined by commas, e.g. 0,1,c0
        #[arg(required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Take links down: i->j blocks one direction, i<->j both (i or j may be a clerk c0)
    Down {
        #[arg(required = true, value_name = "LINK")]
        links: Vec<String>,
    },
    /// Bring links up: i->j one direction, i<->j both (i or j may be a clerk c0)
    Up {
        #[arg(required = true, value_name = "LINK")]
        links: Vec<String>,
    },
    /// Cut node N (or clerk cK) off from everyone (the lab's disconnect); its links keep their state
    Disconnect {
        #[arg(value_name = "N|cK")]
        node: String,
    },
    /// Reconnect node N (or clerk cK) (the lab's connect): the links it had come back
    Connect {
        #[arg(value_name = "N|cK")]
        node: String,
    },
    /// Every link up, every node and clerk connected, every fault rule cleared
    Heal,
    /// Drop each datagram with probability P
    Drop(Rule),
    /// Delay each datagram by a uniform draw from MIN..MAX, or by a fixed time (us, ms or s)
    Delay {
        /// A range such as 0ms..26ms, or a fixed delay such as 10ms
        #[arg(value_name = "MIN..MAX|FIXED")]
        delay: String,
        #[command(flatten)]
        target: TargetArg,
    },
    /// Deliver each datagram twice with probability P (each copy has its own delay)
    Duplicate(Rule),
    /// With probability P, delay a datagram an extra MIN..MAX (default 200ms..2200ms), skewed short as labrpc draws it
    Reorder {
        /// A probability between 0 and 1
        #[arg(value_name = "P")]
        p: String,
        /// The extra delay's range (default 200ms..2200ms)
        #[arg(value_name = "MIN..MAX")]
        delay: Option<String>,
        #[command(flatten)]
        target: TargetArg,
    },
    /// The lab's unreliable network on every link: drop 0.1, delay 0ms..13ms (a round trip 0..26 ms, as labrpc's)
    Unreliable {
        /// Also the lab's long reordering: 2/3 of round trips delayed 200ms..2200ms
        #[arg(long)]
        long_reordering: bool,
    },
    /// Clear every drop, delay, duplicate and reorder rule; connectivity stays as it is
    Reliable,
    /// Show the nodes, the clerks, the links down and the fault rules in force
    Status {
        /// Print the JSON the daemon sends
        #[arg(long)]
        json: bool,
    },
    /// Show each link's datagram and byte counters
    Stats {
        /// Print the JSON the daemon sends
        #[arg(long)]
        json: bool,
    },
    /// Zero every counter
    ResetStats,
    /// A node joins at run time: bind the next face for it (the port after the last node's
    /// face, or FACE) and carry its datagrams; prints its id and face
    AddNode {
        /// The node's own UDP address
        #[arg(value_name = "ADDR")]
        addr: String,
        /// Where to bind its face (default: the port after the last node's face)
        #[arg(value_name = "FACE")]
        face: Option<String>,
    },
    /// Node N leaves at run time: its face closes and nothing passes to or from it; its id is
    /// not reused
    RemoveNode {
        #[arg(value_name = "N")]
        node: String,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Each node's own UDP address, in node-id order
    #[arg(long, required = true, value_delimiter = ',', value_name = "ADDR,...", value_parser = endpoint_addr)]
    nodes: Vec<SocketAddr>,
    /// Where to bind each node's face, in node-id order (port 0 picks a free port)
    #[arg(long, required = true, value_delimiter = ',', value_name = "ADDR,...")]
    faces: Vec<SocketAddr>,
    /// Each clerk's own UDP address, clerk c0 first: clients of the nodes' service
    #[arg(long, value_delimiter = ',', value_name = "ADDR,...", value_parser = endpoint_addr)]
    clerks: Vec<SocketAddr>,
    /// Where to bind each clerk's face, the address the nodes see it at (port 0 picks one)
    #[arg(long, value_delimiter = ',', value_name = "ADDR,...")]
    clerk_faces: Vec<SocketAddr>,
    /// Seed of the fault draws (random if absent; always printed)
    #[arg(long)]
    seed: Option<u64>,
    /// Delayed datagrams one directed link may hold at once; more are dropped and counted as
    /// overflow, so a long delay under load cannot eat the proxy's memory
    #[arg(long, default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_delayed_per_link: u32,
}

#[derive(Args)]
struct Rule {
    /// A probability between 0 and 1
    #[arg(value_name = "P")]
    p: String,
    #[command(flatten)]
    target: TargetArg,
}

#[derive(Args)]
struct TargetArg {
    /// all (default), a node id or a clerk cK (all its links, both ways), or a link i->j or i<->j
    #[arg(value_name = "TARGET")]
    target: Option<String>,
}

impl TargetArg {
    fn word(&self) -> Option<&str> {
        self.target.as_deref()
    }
}

/// A node or a clerk is recognised by its datagrams' source address, so it must be a
/// concrete one.
fn endpoint_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|e: std::net::AddrParseError| e.to_string())?;
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err("a node's or clerk's address needs a concrete IP and port".to_string());
    }
    Ok(addr)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run(args) => run(cli.control, cli.secret_file, args),
        cmd => send(cli.control, cli.secret_file, &cmd),
    }
}

fn run(control: SocketAddr, secret_file: Option<PathBuf>, args: RunArgs) -> ExitCode {
    for (what, endpoints, faces) in [
        ("node", &args.nodes, &args.faces),
        ("clerk", &args.clerks, &args.clerk_faces),
    ] {
        if endpoints.len() != faces.len() {
            let faces_flag = if what == "node" {
                "faces"
            } else {
                "clerk-faces"
            };
            Cli::command()
                .error(
                    clap::error::ErrorKind::WrongNumberOfValues,
                    format!(
                        "--{what}s names {} {what}s but --{faces_flag} {} faces: \
                         give one face per {what}",
                        endpoints.len(),
                        faces.len()
                    ),
                )
                .exit();
        }
    }
    let Some(secret_file) = secret_file else {
        eprintln!(
            "netproxy run: --secret-file is required: the control socket takes only clients that \
             hold the cluster secret (make one with `raft-node secret FILE`)"
        );
        return ExitCode::from(2);
    };
    let secret = match Secret::read_file(&secret_file) {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!("netproxy run: {e}");
            return ExitCode::from(2);
        }
    };
    netproxy::logging::init();
    let seed = args.seed.unwrap_or_else(rand::random);
    let config = Config {
        nodes: args.nodes,
        faces: args.faces,
        clerks: args.clerks,
        clerk_faces: args.clerk_faces,
        control,
        seed,
        max_delayed_per_link: args.max_delayed_per_link as usize,
        secret,
    };
    let result = Daemon::bind(config).and_then(|daemon| {
        let waker = daemon.shutdown_waker();
        ctrlc::set_handler(move || {
            let _ = waker.wake();
        })
        .map_err(std::io::Error::other)?;
        let ready = daemon.ready_line()?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{ready}")?;
        stdout.flush()?;
        info!("{ready}");
        daemon.run()
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netproxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends one client command. Exit codes: 1 if the daemon refuses it or cannot be reached,
/// 2 if it is malformed (caught here, before sending).
fn send(control: SocketAddr, secret_file: Option<PathBuf>, cmd: &Cmd) -> ExitCode {
    let command: Command = match words(cmd).join(" ").parse() {
        Ok(command) => command,
        Err(e) => {
            eprintln!("netproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let secret_file = secret_file.unwrap_or_else(|| DEFAULT_SECRET_FILE.into());
    let secret = match Secret::read_file(Path::new(&secret_file)) {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!("netproxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = Client::new(control, secret);
    let output = match cmd {
        Cmd::Status { json } => client.status().map(|status| match json {
            true => to_json(&status),
            false => status.to_string(),
        }),
        Cmd::Stats { json } => client.stats().map(|stats| match json {
            true => to_json(&stats),
            false => stats.to_string(),
        }),
        _ => client.send(&command),
    };
    match output {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("netproxy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("status and stats serialize") + "\n"
}

/// The command's words as typed, for the parser the daemon uses too.
fn words(cmd: &Cmd) -> Vec<&str> {
    let (name, args): (&str, Vec<Option<&str>>) = match cmd {
        Cmd::Run(_) => unreachable!("run is not sent to a daemon"),
        Cmd::Partition { groups } => (
            "partition",
            groups.iter().map(|g| Some(g.as_str())).collect(),
        ),
        Cmd::Down { links } => ("down", links.iter().map(|l| Some(l.as_str())).collect()),
        Cmd::Up { links } => ("up", links.iter().map(|l| Some(l.as_str())).collect()),
        Cmd::Disconnect { node } => ("disconnect", vec![Some(node.as_str())]),
        Cmd::Connect { node } => ("connect", vec![Some(node.as_str())]),
        Cmd::Heal => ("heal", vec![]),
        Cmd::Drop(rule) => ("drop", vec![Some(rule.p.as_str()), rule.target.word()]),
        Cmd::Delay { delay, target: t } => ("delay", vec![Some(delay.as_str()), t.word()]),
        Cmd::Duplicate(rule) => ("duplicate", vec![Some(rule.p.as_str()), rule.target.word()]),
        Cmd::Reorder {
            p,
            delay,
            target: t,
        } => (
            "reorder",
            vec![Some(p.as_str()), delay.as_deref(), t.word()],
        ),
        Cmd::Unreliable { long_reordering } => (
            "unreliable",
            vec![long_reordering.then_some("--long-reordering")],
        ),
        Cmd::Reliable => ("reliable", vec![]),
        Cmd::Status { .. } => ("status", vec![]),
        Cmd::Stats { .. } => ("stats", vec![]),
        Cmd::ResetStats => ("reset-stats", vec![]),
        Cmd::AddNode { addr, face } => ("add-node", vec![Some(addr.as_str()), face.as_deref()]),
        Cmd::RemoveNode { node } => ("remove-node", vec![Some(node.as_str())]),
    };
    std::iter::once(name)
        .chain(args.into_iter().flatten())
        .collect()
}
