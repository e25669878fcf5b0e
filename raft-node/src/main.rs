//! `raft-node run` runs one Raft peer; `raft-node ctl` talks to a running one over its control
//! channel.

use clap::{Args, Parser, Subcommand};
use raft_auth::Secret;
use raft_node::control::{self, read_frame, write_frame, Request, Response};
use raft_node::core::{Index, MembershipChange, VoterSet};
use raft_node::runtime::{self, logging, NodeConfig, ServiceKind, ShardKvConfig};
use raft_node::storage::Storage;
use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// The log target of lines about the data dir, so they carry the storage's topic (PERSIST).
const STORAGE: &str = "raft_node::storage";

#[derive(Parser, Debug)]
#[command(name = "raft-node", version, about = "One Raft peer as an OS process")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one peer of a cluster.
    Run(Box<RunArgs>),
    /// Query or drive a running node over its control channel.
    Ctl(CtlArgs),
    /// Write a fresh cluster secret (32 random bytes, as hex) to FILE, readable by you only.
    /// Give every node (`run --secret-file`) and netproxy the same file.
    Secret {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Where `ctl` finds the cluster secret unless told (`raft-lab cluster` writes it there).
const DEFAULT_SECRET_FILE: &str = ".raft-lab/secret";

#[derive(Args, Debug)]
struct RunArgs {
    /// This node's id: its position in --peers.
    #[arg(long)]
    id: u32,
    /// The id its log lines carry (`n<ID>`; default: --id): a process of a sharded system logs
    /// as its index among all the system's processes, so run.log names each process once.
    #[arg(long, value_name = "ID")]
    log_id: Option<u32>,
    /// UDP address to receive peer datagrams on.
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Comma-separated UDP addresses to send to, one per node id, ours included (unused, it
    /// keeps the positions aligned). The cluster size is their number.
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',', required = true)]
    peers: Vec<SocketAddr>,
    /// The bootstrap configuration: ids 0..N vote (default: every id of --peers). Ids beyond
    /// join later as learners (`ctl add-learner`), so --peers may list more addresses than the
    /// cluster starts with: every node of a cluster must be given the same --voters.
    #[arg(long, value_name = "N")]
    voters: Option<u32>,
    /// TCP address of the control channel.
    #[arg(long, value_name = "ADDR")]
    control: SocketAddr,
    /// Directory for durable state; created if missing.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Datagrams of any other cluster are dropped.
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    /// The cluster secret (`raft-node secret FILE` makes one): it keys every datagram's MAC
    /// and the control channel's handshake. Required: a node never runs unauthenticated.
    #[arg(long, value_name = "FILE")]
    secret_file: PathBuf,
    /// Election timeouts are drawn uniformly from MIN..MAX.
    #[arg(long, value_name = "MIN..MAX", default_value = "300ms..600ms", value_parser = parse_range)]
    election_timeout: (Duration, Duration),
    /// Leader heartbeat interval; must be below the minimum election timeout.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    heartbeat: Duration,
    /// Seed of the election-timeout randomness (default: from the id and the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// The service to host on the log: none (a control client plays the service, as the lab 2
    /// tests do), digest (folds every command into a digest) or kv (the lab 3 key/value store,
    /// which clerks talk to).
    #[arg(long, value_enum, default_value_t = ServiceArg::None)]
    service: ServiceArg,
    /// Snapshot the service at every index that is a multiple of N (0: never). Needs --service.
    #[arg(long, value_name = "N", default_value_t = 0)]
    snapshot_every: Index,
    /// Snapshot the service once the Raft state on disk (state and log files) reaches BYTES:
    /// the lab's maxraftstate. Needs --service.
    #[arg(long, value_name = "BYTES")]
    max_raft_state: Option<u64>,
    /// Force group commit off: sync each log entry on its own instead of everything a loop
    /// iteration changed at once (for measuring what group commit buys).
    #[arg(long)]
    sync_every_entry: bool,
    /// With --service shardkv: this replica group's id (above 0).
    #[arg(long, value_name = "G")]
    gid: Option<u64>,
    /// With --service shardkv: the shard controllers' addresses (their netproxy faces).
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',')]
    ctrlers: Vec<SocketAddr>,
    /// With --service shardkv: where every server named in a configuration is reached, one
    /// `NAME ADDR` a line (the tester's `server-G-I` names and their netproxy faces).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ServiceArg {
    None,
    Digest,
    Kv,
    Shardctrler,
    Shardkv,
}

#[derive(Args, Debug)]
struct CtlArgs {
    /// The node's control address.
    #[arg(long, value_name = "ADDR")]
    control: SocketAddr,
    /// The cluster secret the node was started with.
    #[arg(long, value_name = "FILE", env = "RAFT_LAB_SECRET_FILE", default_value = DEFAULT_SECRET_FILE)]
    secret_file: PathBuf,
    #[command(subcommand)]
    action: CtlAction,
}

#[derive(Subcommand, Debug)]
enum CtlAction {
    /// Print the node's state as key=value pairs.
    Status,
    /// Propose TEXT as a command (the lab's Start).
    Submit { text: String },
    /// Print what the node applies as it comes (commands, and snapshots installed from the
    /// leader), from index --from on.
    Watch {
        #[arg(long, default_value_t = 1)]
        from: Index,
    },
    /// Ask the node, the leader, to hand leadership to node TO (Raft thesis §3.10).
    Transfer { to: u32 },
    /// Ask the node, the leader, to add node ID as a learner (Raft thesis §4.2.1): it receives
    /// the log but does not vote.
    AddLearner { id: u32 },
    /// Ask the node, the leader, to make learner ID a voter; refused until ID has caught up.
    Promote { id: u32 },
    /// Ask the node, the leader, to remove node ID (a voter or a learner) from the
    /// configuration; a leader that removes itself steps down once the change commits.
    Remove { id: u32 },
    /// Ask the node, the leader, to make IDS (comma-separated) the voters through joint
    /// consensus (Raft thesis §4.3): C_old,new, then C_new once that commits. Each must be a
    /// member already (add new servers as learners first).
    Joint {
        #[arg(value_delimiter = ',', required = true)]
        ids: Vec<u32>,
    },
    /// Ask the node to exit.
    Shutdown,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => run(*args),
        Command::Ctl(args) => ctl(args),
        Command::Secret { file } => match Secret::create_file(&file) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("raft-node secret: {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
    }
}

fn run(args: RunArgs) -> ExitCode {
    let data_dir = args.data_dir.clone();
    let secret = match Secret::read_file(&args.secret_file) {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!(
                "raft-node run: {e}\n(make one with `raft-node secret FILE` and give every node \
                 and netproxy the same --secret-file)"
            );
            return ExitCode::from(2);
        }
    };
    let log_id = args.log_id.unwrap_or(args.id);
    let config = match validate(args, secret, default_seed) {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("raft-node run: {msg}");
            return ExitCode::from(2);
        }
    };
    logging::init(log_id);
    // Opening creates a missing data dir and fails at once on one we cannot write, or on
    // durable state that does not check out: never start empty over a damaged store.
    let opened = Storage::open(&data_dir).and_then(|(storage, restored)| {
        storage.check_restored(&restored, config.peers.len() as u32)?;
        Ok((storage, restored))
    });
    let (storage, restored) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            log::error!(target: STORAGE, "cannot open --data-dir {}: {e}", data_dir.display());
            return ExitCode::FAILURE;
        }
    };
    // Lines from here on carry the restored term, not 0.
    logging::set_term(restored.hard_state.current_term);
    log::info!(
        "starting: seed {} (pass --seed {} to repeat it), election timeout {:?}..{:?}, \
         heartbeat {:?}",
        config.seed,
        config.seed,
        config.election_timeout_min,
        config.election_timeout_max,
        config.heartbeat
    );
    log::info!(
        target: STORAGE,
        "data dir {}: restored term {}, voted for {:?}, snapshot through {}, {} log \
         entries after it",
        data_dir.display(),
        restored.hard_state.current_term,
        restored.hard_state.voted_for,
        restored
            .snapshot
            .as_ref()
            .map_or(0, |s| s.last_included_index),
        restored.entries.len()
    );
    match runtime::run(config, storage, restored) {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("fatal: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Checks what clap cannot check field by field.
fn validate(
    args: RunArgs,
    secret: Secret,
    default_seed: fn(u32) -> u64,
) -> Result<NodeConfig, String> {
    let n = args.peers.len();
    if args.id as usize >= n {
        return Err(format!(
            "--id {} is not a position in --peers, which lists {n} address(es) (ids 0..={})",
            args.id,
            n - 1
        ));
    }
    let voters = args.voters.unwrap_or(n as u32);
    if voters == 0 || voters as usize > n {
        return Err(format!(
            "--voters {voters}: the bootstrap voters are ids 0..N, with N from 1 to the {n} \
             address(es) of --peers"
        ));
    }
    let (min, max) = args.election_timeout;
    if args.heartbeat >= min {
        return Err(format!(
            "--heartbeat {:?} must be shorter than the minimum election timeout {min:?}, or \
             followers time out between heartbeats",
            args.heartbeat
        ));
    }
    if args.service == ServiceArg::None
        && (args.snapshot_every > 0 || args.max_raft_state.is_some())
    {
        return Err(
            "--snapshot-every and --max-raft-state snapshot a hosted service: add --service \
             digest or --service kv"
                .to_string(),
        );
    }
    if args.max_raft_state == Some(0) {
        return Err("--max-raft-state must be above 0 bytes".to_string());
    }
    let shardkv = if args.service == ServiceArg::Shardkv {
        let gid = match args.gid {
            Some(gid) if gid > 0 => gid,
            _ => return Err("--service shardkv needs --gid G, a group id above 0".to_string()),
        };
        if args.ctrlers.is_empty() {
            return Err(
                "--service shardkv needs --ctrlers ADDR,... (the shard controllers)".into(),
            );
        }
        let Some(file) = &args.directory else {
            return Err("--service shardkv needs --directory FILE (NAME ADDR a line)".into());
        };
        Some(ShardKvConfig {
            gid,
            ctrlers: args.ctrlers.clone(),
            directory: read_directory(file)?,
        })
    } else {
        if args.gid.is_some() || !args.ctrlers.is_empty() || args.directory.is_some() {
            return Err("--gid, --ctrlers and --directory are for --service shardkv".into());
        }
        None
    };
    Ok(NodeConfig {
        id: args.id,
        listen: args.listen,
        peers: args.peers,
        voters,
        control: args.control,
        cluster_id: args.cluster_id,
        secret,
        election_timeout_min: min,
        election_timeout_max: max,
        heartbeat: args.heartbeat,
        seed: args.seed.unwrap_or_else(|| default_seed(args.id)),
        service: match args.service {
            ServiceArg::None => ServiceKind::None,
            ServiceArg::Digest => ServiceKind::Digest,
            ServiceArg::Kv => ServiceKind::Kv,
            ServiceArg::Shardctrler => ServiceKind::ShardCtrler,
            ServiceArg::Shardkv => ServiceKind::ShardKv,
        },
        shardkv,
        snapshot_every: args.snapshot_every,
        max_raft_state: args.max_raft_state,
        sync_every_entry: args.sync_every_entry,
    })
}

/// A directory file: `NAME ADDR` a line; blank lines and `#` comments are skipped.
fn read_directory(file: &std::path::Path) -> Result<BTreeMap<String, SocketAddr>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("--directory {}: {e}", file.display()))?;
    let mut directory = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            format!(
                "--directory {} line {}: expected NAME ADDR, got {line:?}",
                file.display(),
                n + 1
            )
        };
        let (name, addr) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let addr: SocketAddr = addr.trim().parse().map_err(|_| bad())?;
        directory.insert(name.to_string(), addr);
    }
    Ok(directory)
}

/// Different for every node and every start, so peers do not time out in lockstep.
fn default_seed(id: u32) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A whole number with a unit: `250us`, `300ms`, `2s`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration: use a whole number with us, ms or s (300ms)");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(format!("'{s}': the duration must be above zero"));
    }
    Ok(d)
}

/// `MIN..MAX`, two durations with MIN < MAX.
fn parse_range(s: &str) -> Result<(Duration, Duration), String> {
    let (lo, hi) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' is not a range: use MIN..MAX, e.g. 300ms..600ms"))?;
    let (lo, hi) = (parse_duration(lo)?, parse_duration(hi)?);
    if lo >= hi {
        return Err(format!(
            "'{s}': the minimum must be below the maximum, e.g. 300ms..600ms"
        ));
    }
    Ok((lo, hi))
}

fn ctl(args: CtlArgs) -> ExitCode {
    let addr = args.control;
    let result = Secret::read_file(&args.secret_file)
        .map_err(|e| e.to_string())
        .and_then(|secret| {
            let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .map_err(|e| format!("no node answers on {addr}: {e}"))?;
            control::authenticate(&mut conn, &secret).map_err(|e| format!("{addr}: {e}"))?;
            Ok(conn)
        })
        .and_then(|mut conn| {
            ctl_action(&mut conn, args.action).map_err(|e| format!("talking to {addr}: {e}"))
        });
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("raft-node ctl: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// `0,1,2` (`-` for none).
fn ids(ids: &[u32]) -> String {
    if ids.is_empty() {
        return "-".to_string();
    }
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn call(conn: &mut TcpStream, req: &Request) -> io::Result<Response> {
    write_frame(conn, req)?;
    read_frame(conn)
}

fn unexpected(resp: Response) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected answer {resp:?}"),
    )
}

fn ctl_action(conn: &mut TcpStream, action: CtlAction) -> io::Result<ExitCode> {
    match action {
        CtlAction::Status => match call(conn, &Request::GetState)? {
            Response::State(s) => {
                let leader = s.leader.map_or("none".to_string(), |l| format!("n{l}"));
                println!(
                    "id={} term={} role={:?} leader={leader} commit_index={} last_applied={} \
                     last_log_index={} snapshot_index={} raft_state_bytes={} \
                     unauthenticated={} voters={} learners={} membership_index={}",
                    s.id,
                    s.term,
                    s.role,
                    s.commit_index,
                    s.last_applied,
                    s.last_log_index,
                    s.snapshot_index,
                    s.raft_state_bytes,
                    s.unauthenticated,
                    ids(&s.voters),
                    ids(&s.learners),
                    s.membership_index,
                );
            }
            other => return Err(unexpected(other)),
        },
        CtlAction::Submit { text } => {
            let start = Request::Start {
                command: text.into_bytes(),
            };
            match call(conn, &start)? {
                Response::Started {
                    index,
                    term,
                    is_leader: true,
                } => println!("index={index} term={term}"),
                Response::Started { .. } => {
                    // Start does not name the leader; the node's state does.
                    let hint = match call(conn, &Request::GetState)? {
                        Response::State(s) => s.leader.map_or("none".into(), |l| format!("n{l}")),
                        other => return Err(unexpected(other)),
                    };
                    println!("not leader (leader hint: {hint})");
                    return Ok(ExitCode::FAILURE);
                }
                Response::Error { message } => {
                    println!("refused: {message}");
                    return Ok(ExitCode::FAILURE);
                }
                other => return Err(unexpected(other)),
            }
        }
        CtlAction::Watch { from } => {
            write_frame(conn, &Request::Subscribe { from })?;
            loop {
                match read_frame(conn) {
                    Ok(Response::Apply(m)) => println!(
                        "index={} term={} {}",
                        m.index,
                        m.term,
                        String::from_utf8_lossy(&m.command)
                    ),
                    Ok(Response::ApplySnapshot(m)) => println!(
                        "index={} term={} snapshot of {} bytes",
                        m.index,
                        m.term,
                        m.data.len()
                    ),
                    Ok(other) => return Err(unexpected(other)),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        println!("node closed the stream");
                        return Ok(ExitCode::SUCCESS);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        CtlAction::Transfer { to } => match call(conn, &Request::Transfer { to })? {
            Response::TransferStarted => println!("transferring leadership to n{to}"),
            Response::Error { message } => {
                println!("refused: {message}");
                return Ok(ExitCode::FAILURE);
            }
            other => return Err(unexpected(other)),
        },
        CtlAction::AddLearner { id } => {
            return ctl_membership(conn, MembershipChange::AddLearner(id))
        }
        CtlAction::Promote { id } => return ctl_membership(conn, MembershipChange::Promote(id)),
        CtlAction::Remove { id } => return ctl_membership(conn, MembershipChange::Remove(id)),
        CtlAction::Joint { ids } => {
            let Some(set) = VoterSet::of(ids.iter().copied()) else {
                println!("refused: node ids are below 64");
                return Ok(ExitCode::FAILURE);
            };
            return ctl_membership(conn, MembershipChange::Joint(set));
        }
        CtlAction::Shutdown => match call(conn, &Request::Shutdown)? {
            Response::ShuttingDown => println!("shutting down"),
            other => return Err(unexpected(other)),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// One membership change: `index=I term=T` once it is in the leader's log, or why not.
fn ctl_membership(conn: &mut TcpStream, change: MembershipChange) -> io::Result<ExitCode> {
    match call(conn, &Request::ChangeMembership { change })? {
        Response::MembershipProposed { index, term } => {
            println!("index={index} term={term} (proposed {change:?}; in effect once committed)");
            Ok(ExitCode::SUCCESS)
        }
        Response::Error { message } => {
            println!("refused: {message}");
            Ok(ExitCode::FAILURE)
        }
        other => Err(unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    const PEERS: &str = "127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102";

    /// A valid `run` command line with `overrides` replacing or adding flags.
    fn parse(overrides: &[(&str, &str)]) -> Result<RunArgs, clap::Error> {
        let mut flags = vec![
            ("--id", "0"),
            ("--listen", "127.0.0.1:7000"),
            ("--peers", PEERS),
            ("--control", "127.0.0.1:7300"),
            ("--data-dir", "/tmp/x"),
            ("--secret-file", "/tmp/secret"),
        ];
        for &(flag, value) in overrides {
            match flags.iter_mut().find(|(f, _)| *f == flag) {
                Some(slot) => slot.1 = value,
                None => flags.push((flag, value)),
            }
        }
        let argv = ["raft-node", "run"]
            .into_iter()
            .chain(flags.iter().flat_map(|&(f, v)| [f, v]));
        match Cli::try_parse_from(argv)?.command {
            Command::Run(args) => Ok(*args),
            Command::Ctl(_) | Command::Secret { .. } => {
                unreachable!("parsed a run command line")
            }
        }
    }

    fn config(overrides: &[(&str, &str)]) -> Result<NodeConfig, String> {
        let secret = Secret::from_bytes(&[0; 32]);
        validate(parse(overrides).map_err(|e| e.to_string())?, secret, |_| 42)
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_us_ms_and_s() {
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn bad_durations_are_rejected() {
        for s in ["", "300", "ms", "1.5s", "-3ms", "3 ms", "3m", "3msx", "0ms"] {
            assert!(parse_duration(s).is_err(), "{s:?} was accepted");
        }
    }

    #[test]
    fn ranges_need_min_below_max() {
        assert_eq!(
            parse_range("300ms..600ms"),
            Ok((Duration::from_millis(300), Duration::from_millis(600)))
        );
        assert_eq!(
            parse_range("300000us..1s"),
            Ok((Duration::from_millis(300), Duration::from_secs(1)))
        );
        for s in ["600ms..300ms", "300ms..300ms", "300ms", "300ms..", "..1s"] {
            assert!(parse_range(s).is_err(), "{s:?} was accepted");
        }
    }

    #[test]
    fn defaults() {
        let c = config(&[("--id", "1")]).unwrap();
        assert_eq!(c.id, 1);
        assert_eq!(c.peers.len(), 3);
        assert_eq!(c.cluster_id, 1);
        assert_eq!(c.election_timeout_min, Duration::from_millis(300));
        assert_eq!(c.election_timeout_max, Duration::from_millis(600));
        assert_eq!(c.heartbeat, Duration::from_millis(100));
        assert_eq!(c.seed, 42);
        assert_eq!(c.snapshot_every, 0);
    }

    #[test]
    fn explicit_values() {
        let c = config(&[
            ("--id", "2"),
            ("--cluster-id", "9"),
            ("--election-timeout", "150ms..300ms"),
            ("--heartbeat", "50000us"),
            ("--seed", "7"),
            ("--service", "digest"),
            ("--snapshot-every", "10"),
            ("--max-raft-state", "1000"),
        ])
        .unwrap();
        assert_eq!(c.cluster_id, 9);
        assert_eq!(c.election_timeout_min, Duration::from_millis(150));
        assert_eq!(c.heartbeat, Duration::from_millis(50));
        assert_eq!(c.seed, 7);
        assert_eq!(c.snapshot_every, 10);
        assert_eq!(c.max_raft_state, Some(1000));
        assert_eq!(c.service, ServiceKind::Digest);
    }

    #[test]
    fn snapshots_need_a_service() {
        for flag in [("--snapshot-every", "10"), ("--max-raft-state", "1000")] {
            let err = config(&[("--id", "1"), flag]).unwrap_err();
            assert!(err.contains("--service"), "{err}");
        }
    }

    #[test]
    fn id_must_index_peers() {
        let err = config(&[("--id", "3")]).unwrap_err();
        assert!(err.contains("--id 3"), "{err}");
    }

    #[test]
    fn voters_are_a_prefix_of_peers() {
        assert_eq!(config(&[]).unwrap().voters, 3);
        assert_eq!(config(&[("--voters", "2")]).unwrap().voters, 2);
        for bad in ["0", "4"] {
            let err = config(&[("--voters", bad)]).unwrap_err();
            assert!(err.contains("--voters"), "{err}");
        }
    }

    #[test]
    fn heartbeat_must_be_below_the_election_timeout() {
        let err = config(&[("--heartbeat", "300ms")]).unwrap_err();
        assert!(err.contains("--heartbeat"), "{err}");
    }

    #[test]
    fn bad_arguments_are_rejected_by_clap() {
        assert!(parse(&[]).is_ok());
        let cases = [
            ("--election-timeout", "600ms..300ms"),
            ("--heartbeat", "100"),
            ("--id", "x"),
            ("--listen", "localhost"),
            ("--listen", "127.0.0.1"),
            ("--peers", "127.0.0.1:1,nonsense"),
            ("--peers", ""),
            ("--control", "127.0.0.1:99999"),
            ("--seed", "x"),
            ("--cluster-id", "-3"),
        ];
        for case in cases {
            assert!(parse(&[case]).is_err(), "{case:?} was accepted");
        }
    }
}
