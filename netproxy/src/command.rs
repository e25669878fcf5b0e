//! The control language: one line of text per command, shared by the CLI and the daemon.
//!
//! The CLI parses what the user typed (so a typo fails before anything is sent) and sends the
//! canonical form that `Display` produces; the daemon parses that line again, because the wire
//! is not trusted, and checks the nodes and clerks named against its own with
//! [`Command::check`]. For every command, `cmd.to_string().parse() == Ok(cmd)`.

use crate::endpoint::{is_link, Endpoint, Endpoints};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A request to the daemon: a change to the simulated network, or a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Change(Change),
    Status,
    Stats,
    ResetStats,
    /// A node joins: the proxy binds the next face for it (FACE, or the port after the last
    /// node's face) and carries its datagrams from then on. Its id is the next one.
    AddNode {
        addr: SocketAddr,
        face: Option<SocketAddr>,
    },
    /// Node N leaves: nothing passes to or from it any more, and its id is not reused.
    RemoveNode(usize),
}

/// A change to connectivity or to the fault rules; the daemon logs each one.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Links across groups go down, links within a group come up. Nodes named in no group
    /// form one more group together; a clerk named in no group keeps its links as they are (the
    /// lab partitions servers, never clerks, unless a test confines one).
    Partition(Vec<Vec<Endpoint>>),
    Down(Vec<Link>),
    Up(Vec<Link>),
    /// The lab's disable of a server (or of a clerk): a per-endpoint flag, independent of the
    /// link matrix, that cuts every link of the endpoint, a node's clerk links included.
    Disconnect(Endpoint),
    Connect(Endpoint),
    /// Every link up, every node and clerk connected, every fault rule cleared.
    Heal,
    Drop {
        p: Probability,
        target: Target,
    },
    Delay {
        delay: DelayRange,
        target: Target,
    },
    /// With probability `p` a datagram is delivered twice.
    Duplicate {
        p: Probability,
        target: Target,
    },
    /// With probability `p` a datagram waits an extra draw from `delay`, skewed toward its
    /// minimum (labrpc's long reordering).
    Reorder {
        p: Probability,
        delay: DelayRange,
        target: Target,
    },
    /// labrpc's unreliable network on every link; reordering only with `long_reordering`.
    Unreliable {
        long_reordering: bool,
    },
    /// Clears every drop, delay, duplicate and reorder rule; connectivity stays as it is.
    Reliable,
}

/// labrpc drops a request or a reply with probability 100/1000.
pub const UNRELIABLE_DROP: Probability = Probability(0.1);
/// labrpc's short delay is rand 0..26 ms on a *request* only, so a round trip waits 0..26 ms,
/// 13 ms on average. The proxy cannot tell a reply from a request and delays both, so each
/// datagram draws half of it: a round trip then waits 0..26 ms, 13 ms on average, as in the lab.
/// (0..26 ms on each datagram would double every round trip: a slower network than the lab's,
/// against which the lab's times cannot be compared.)
pub const UNRELIABLE_DELAY: DelayRange = DelayRange::between_ms(0, 13);
/// labrpc's long reordering delays 600 of 900 *replies*, so 2/3 of round trips. The proxy cannot
/// tell a reply from a request, so it delays each datagram with p = 1 - sqrt(1/3) ≈ 0.423: a
/// request and its reply then both pass undelayed with probability (1 - p)² = 1/3, as in the lab.
/// (Delaying 2/3 of every datagram would leave only 1/9 of round trips fast, a harsher network
/// than the lab's, on which elections with 300–600 ms timeouts rarely complete.)
pub const LONG_REORDER: Probability = Probability(0.423);
/// labrpc's long reordering delay: 200..2200 ms, drawn skewed short as labrpc draws it
/// (`faults::draw_skewed`).
pub const LONG_REORDER_DELAY: DelayRange = DelayRange::between_ms(200, 2200);

/// Delays longer than this are surely typos, and would hold buffers for no purpose.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// A directed link `from->to`, or both directions of a pair (`from<->to`); never between two
/// clerks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub from: Endpoint,
    pub to: Endpoint,
    pub both_ways: bool,
}

/// Where a fault rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every link, clerks' included.
    All,
    /// Every link to and from a node or a clerk.
    Endpoint(Endpoint),
    Link(Link),
}

/// A probability, always within [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Probability(f64);

/// A delay drawn uniformly from `min..=max`; `min == max` is a fixed delay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DelayRange {
    min: Duration,
    max: Duration,
}

/// Why a command line was rejected; the message names the bad part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandError(String);

impl Command {
    /// Rejects nodes and clerks the proxy does not have.
    pub fn check(&self, endpoints: Endpoints) -> Result<(), CommandError> {
        if let Command::RemoveNode(id) = *self {
            if id >= endpoints.nodes {
                return error(format!(
                    "node {id} does not exist (cluster has nodes 0..={})",
                    endpoints.nodes.saturating_sub(1)
                ));
            }
        }
        let Command::Change(change) = self else {
            return Ok(());
        };
        let Some(missing) = (change.endpoints().into_iter()).find(|&e| !endpoints.contains(e))
        else {
            return Ok(());
        };
        let (count, kind) = match missing {
            Endpoint::Node(_) => (endpoints.nodes, "node"),
            Endpoint::Clerk(_) => (endpoints.clerks, "clerk"),
        };
        let has = match count {
            0 => format!("no {kind}s"),
            1 => format!("1 {kind}"),
            _ => format!("{count} {kind}s"),
        };
        error(format!(
            "{} does not exist (cluster has {has})",
            missing.describe()
        ))
    }
}

impl Change {
    /// Every node and clerk the change names.
    fn endpoints(&self) -> Vec<Endpoint> {
        let target_endpoints = |target: &Target| match *target {
            Target::All => vec![],
            Target::Endpoint(endpoint) => vec![endpoint],
            Target::Link(link) => vec![link.from, link.to],
        };
        match self {
            Change::Partition(groups) => groups.concat(),
            Change::Down(links) | Change::Up(links) => {
                links.iter().flat_map(|l| [l.from, l.to]).collect()
            }
            Change::Disconnect(endpoint) | Change::Connect(endpoint) => vec![*endpoint],
            Change::Drop { target, .. }
            | Change::Delay { target, .. }
            | Change::Duplicate { target, .. }
            | Change::Reorder { target, .. } => target_endpoints(target),
            Change::Heal | Change::Unreliable { .. } | Change::Reliable => vec![],
        }
    }
}

impl Link {
    /// The directed links this names: one, or both directions.
    pub fn directed(self) -> impl Iterator<Item = (Endpoint, Endpoint)> {
        let back = self.both_ways.then_some((self.to, self.from));
        std::iter::once((self.from, self.to)).chain(back)
    }
}

impl Target {
    /// The directed links among `endpoints` this target covers.
    pub fn links(self, endpoints: Endpoints) -> Vec<(Endpoint, Endpoint)> {
        let every = endpoints.links();
        match self {
            Target::All => every.collect(),
            Target::Endpoint(e) => every.filter(|&(from, to)| from == e || to == e).collect(),
            Target::Link(link) => link.directed().collect(),
        }
    }
}

impl Probability {
    pub const ZERO: Probability = Probability(0.0);

    pub fn new(p: f64) -> Option<Probability> {
        (0.0..=1.0).contains(&p).then_some(Probability(p))
    }

    pub fn get(self) -> f64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0.0
    }
}

impl DelayRange {
    pub const ZERO: DelayRange = DelayRange::fixed(Duration::ZERO);

    pub const fn fixed(delay: Duration) -> DelayRange {
        DelayRange {
            min: delay,
            max: delay,
        }
    }

    /// `None` if `min > max`.
    pub fn new(min: Duration, max: Duration) -> Option<DelayRange> {
        (min <= max).then_some(DelayRange { min, max })
    }

    const fn between_ms(min: u64, max: u64) -> DelayRange {
        DelayRange {
            min: Duration::from_millis(min),
            max: Duration::from_millis(max),
        }
    }

    pub fn min(self) -> Duration {
        self.min
    }

    pub fn max(self) -> Duration {
        self.max
    }

    pub fn is_zero(self) -> bool {
        self.max.is_zero()
    }
}

fn error<T>(message: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError(message.into()))
}

/// Each command's syntax, for the error that a wrong number of arguments gets.
const USAGE: &[(&str, &str)] = &[
    (
        "partition",
        "partition GROUP... (a GROUP is nodes and clerks joined by commas: 0,1,c0)",
    ),
    (
        "down",
        "down LINK... (a LINK is i->j or i<->j; i or j may be a clerk c0)",
    ),
    (
        "up",
        "up LINK... (a LINK is i->j or i<->j; i or j may be a clerk c0)",
    ),
    ("disconnect", "disconnect NODE|CLERK"),
    ("connect", "connect NODE|CLERK"),
    ("heal", "heal"),
    ("drop", "drop P [TARGET]"),
    ("delay", "delay MIN..MAX|FIXED [TARGET]"),
    ("duplicate", "duplicate P [TARGET]"),
    ("reorder", "reorder P [MIN..MAX] [TARGET]"),
    ("unreliable", "unreliable [--long-reordering]"),
    ("reliable", "reliable"),
    ("status", "status"),
    ("stats", "stats"),
    ("reset-stats", "reset-stats"),
    ("add-node", "add-node ADDR [FACE]"),
    ("remove-node", "remove-node NODE"),
];

impl FromStr for Command {
    type Err = CommandError;

    fn from_str(line: &str) -> Result<Command, CommandError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&name, args)) = words.split_first() else {
            return error("empty command");
        };
        let change = match (name, args) {
            ("status", []) => return Ok(Command::Status),
            ("stats", []) => return Ok(Command::Stats),
            ("reset-stats", []) => return Ok(Command::ResetStats),
            ("add-node", [addr, face @ ..]) if face.len() <= 1 => {
                let parse = |word: &str| {
                    word.parse::<SocketAddr>().map_err(|_| {
                        CommandError(format!("bad address \"{word}\": expected IP:PORT"))
                    })
                };
                return Ok(Command::AddNode {
                    addr: parse(addr)?,
                    face: face.first().map(|f| parse(f)).transpose()?,
                });
            }
            ("remove-node", [id]) => {
                return match id.parse::<usize>() {
                    Ok(id) => Ok(Command::RemoveNode(id)),
                    Err(_) => error(format!("bad node \"{id}\": expected a node id (3)")),
                }
            }
            ("partition", groups) if !groups.is_empty() => parse_partition(groups)?,
            ("down", links) if !links.is_empty() => Change::Down(parse_links(links)?),
            ("up", links) if !links.is_empty() => Change::Up(parse_links(links)?),
            ("disconnect", [endpoint]) => Change::Disconnect(parse_endpoint(endpoint)?),
            ("connect", [endpoint]) => Change::Connect(parse_endpoint(endpoint)?),
            ("heal", []) => Change::Heal,
            ("drop", [p, target @ ..]) if target.len() <= 1 => Change::Drop {
                p: p.parse()?,
                target: parse_target_or_all(target)?,
            },
            ("delay", [delay, target @ ..]) if target.len() <= 1 => Change::Delay {
                delay: delay.parse()?,
                target: parse_target_or_all(target)?,
            },
            ("duplicate", [p, target @ ..]) if target.len() <= 1 => Change::Duplicate {
                p: p.parse()?,
                target: parse_target_or_all(target)?,
            },
            ("reorder", [p, rest @ ..]) if rest.len() <= 2 => parse_reorder(p, rest)?,
            ("unreliable", []) => Change::Unreliable {
                long_reordering: false,
            },
            ("unreliable", ["--long-reordering"]) => Change::Unreliable {
                long_reordering: true,
            },
            ("reliable", []) => Change::Reliable,
            _ => {
                return match USAGE.iter().find(|(n, _)| *n == name) {
                    Some((_, usage)) => error(format!("usage: {usage}")),
                    None => error(format!("unknown command \"{name}\"")),
                }
            }
        };
        Ok(Command::Change(change))
    }
}

fn parse_partition(words: &[&str]) -> Result<Change, CommandError> {
    let mut named = Vec::new();
    let mut groups = Vec::new();
    for word in words {
        let group = word
            .split(',')
            .map(parse_endpoint)
            .collect::<Result<Vec<_>, _>>()?;
        for &endpoint in &group {
            if named.contains(&endpoint) {
                return error(format!("{} is named in two groups", endpoint.describe()));
            }
            named.push(endpoint);
        }
        groups.push(group);
    }
    Ok(Change::Partition(groups))
}

fn parse_links(words: &[&str]) -> Result<Vec<Link>, CommandError> {
    words.iter().map(|word| word.parse()).collect()
}

fn parse_endpoint(word: &str) -> Result<Endpoint, CommandError> {
    word.parse()
        .map_err(|e: crate::endpoint::BadEndpoint| CommandError(e.to_string()))
}

fn parse_target_or_all(words: &[&str]) -> Result<Target, CommandError> {
    words.first().map_or(Ok(Target::All), |word| word.parse())
}

/// `reorder P [MIN..MAX] [TARGET]`: a lone second word is a delay if it ends in a duration
/// unit (every unit ends in `s`), and a target otherwise.
fn parse_reorder(p: &str, rest: &[&str]) -> Result<Change, CommandError> {
    let (delay, target) = match rest {
        [] => (None, None),
        [word] if word.ends_with('s') => (Some(word), None),
        [word] => (None, Some(word)),
        [delay, target] => (Some(delay), Some(target)),
        _ => unreachable!("the caller passes at most two words"),
    };
    Ok(Change::Reorder {
        p: p.parse()?,
        delay: delay.map_or(Ok(LONG_REORDER_DELAY), |word| word.parse())?,
        target: target.map_or(Ok(Target::All), |word| word.parse())?,
    })
}

impl FromStr for Link {
    type Err = CommandError;

    fn from_str(word: &str) -> Result<Link, CommandError> {
        let (ends, both_ways) = match word.split_once("<->") {
            Some(ends) => (Some(ends), true),
            None => (word.split_once("->"), false),
        };
        let Some((from, to)) = ends else {
            return error(format!("bad link \"{word}\": expected i->j or i<->j"));
        };
        let (from, to) = (parse_endpoint(from)?, parse_endpoint(to)?);
        if !is_link(from, to) {
            return error(format!(
                "bad link \"{word}\": clerks talk to nodes, not to clerks"
            ));
        }
        Ok(Link {
            from,
            to,
            both_ways,
        })
    }
}

impl FromStr for Target {
    type Err = CommandError;

    fn from_str(word: &str) -> Result<Target, CommandError> {
        if word == "all" {
            Ok(Target::All)
        } else if word.contains("->") {
            Ok(Target::Link(word.parse()?))
        } else if let Ok(endpoint) = word.parse() {
            Ok(Target::Endpoint(endpoint))
        } else {
            error(format!(
                "bad target \"{word}\": expected all, a node id, a clerk c<k>, or a link i->j or i<->j"
            ))
        }
    }
}

impl FromStr for Probability {
    type Err = CommandError;

    fn from_str(word: &str) -> Result<Probability, CommandError> {
        match word.parse().ok().and_then(Probability::new) {
            Some(p) => Ok(p),
            None => error(format!(
                "bad probability \"{word}\": must be between 0 and 1"
            )),
        }
    }
}

impl TryFrom<f64> for Probability {
    type Error = String;

    fn try_from(p: f64) -> Result<Probability, String> {
        Probability::new(p).ok_or_else(|| format!("probability {p} is not between 0 and 1"))
    }
}

impl From<Probability> for f64 {
    fn from(p: Probability) -> f64 {
        p.0
    }
}

impl FromStr for DelayRange {
    type Err = CommandError;

    fn from_str(word: &str) -> Result<DelayRange, CommandError> {
        let Some((min, max)) = word.split_once("..") else {
            return Ok(DelayRange::fixed(parse_duration(word)?));
        };
        match DelayRange::new(parse_duration(min)?, parse_duration(max)?) {
            Some(range) => Ok(range),
            None => error(format!("bad delay range \"{word}\": MIN exceeds MAX")),
        }
    }
}

impl TryFrom<String> for DelayRange {
    type Error = String;

    fn try_from(text: String) -> Result<DelayRange, String> {
        text.parse().map_err(|e: CommandError| e.0)
    }
}

impl From<DelayRange> for String {
    fn from(range: DelayRange) -> String {
        range.to_string()
    }
}

/// A whole number of `us`, `ms` or `s`.
fn parse_duration(word: &str) -> Result<Duration, CommandError> {
    let bad = || {
        error(format!(
            "bad duration \"{word}\": expected e.g. 500us, 10ms or 2s"
        ))
    };
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = word.split_at(digits);
    let micros_per_unit = match unit {
        "us" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        _ => return bad(),
    };
    let Some(micros) = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(micros_per_unit))
    else {
        return bad();
    };
    let duration = Duration::from_micros(micros);
    if duration > MAX_DELAY {
        return error(format!(
            "bad duration \"{word}\": at most {}",
            FormatDuration(MAX_DELAY)
        ));
    }
    Ok(duration)
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Command::Change(change) => change.fmt(f),
            Command::Status => f.write_str("status"),
            Command::Stats => f.write_str("stats"),
            Command::ResetStats => f.write_str("reset-stats"),
            Command::AddNode { addr, face: None } => write!(f, "add-node {addr}"),
            Command::AddNode {
                addr,
                face: Some(face),
            } => write!(f, "add-node {addr} {face}"),
            Command::RemoveNode(id) => write!(f, "remove-node {id}"),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Change::Partition(groups) => {
                f.write_str("partition")?;
                for group in groups {
                    let ids: Vec<String> = group.iter().map(Endpoint::to_string).collect();
                    write!(f, " {}", ids.join(","))?;
                }
                Ok(())
            }
            Change::Down(links) => {
                f.write_str("down")?;
                links.iter().try_for_each(|link| write!(f, " {link}"))
            }
            Change::Up(links) => {
                f.write_str("up")?;
                links.iter().try_for_each(|link| write!(f, " {link}"))
            }
            Change::Disconnect(endpoint) => write!(f, "disconnect {endpoint}"),
            Change::Connect(endpoint) => write!(f, "connect {endpoint}"),
            Change::Heal => f.write_str("heal"),
            Change::Drop { p, target } => write!(f, "drop {p} {target}"),
            Change::Delay { delay, target } => write!(f, "delay {delay} {target}"),
            Change::Duplicate { p, target } => write!(f, "duplicate {p} {target}"),
            Change::Reorder { p, delay, target } => write!(f, "reorder {p} {delay} {target}"),
            Change::Unreliable {
                long_reordering: false,
            } => f.write_str("unreliable"),
            Change::Unreliable {
                long_reordering: true,
            } => f.write_str("unreliable --long-reordering"),
            Change::Reliable => f.write_str("reliable"),
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let arrow = if self.both_ways { "<->" } else { "->" };
        write!(f, "{}{arrow}{}", self.from, self.to)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Target::All => f.write_str("all"),
            Target::Endpoint(endpoint) => endpoint.fmt(f),
            Target::Link(link) => link.fmt(f),
        }
    }
}

impl fmt::Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // f64's Display is the shortest text that parses back to the same value.
        self.0.fmt(f)
    }
}

impl fmt::Display for DelayRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.min == self.max {
            FormatDuration(self.min).fmt(f)
        } else {
            write!(
                f,
                "{}..{}",
                FormatDuration(self.min),
                FormatDuration(self.max)
            )
        }
    }
}

/// A duration in the largest of `s`, `ms`, `us` that holds it exactly.
struct FormatDuration(Duration);

impl fmt::Display for FormatDuration {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let micros = self.0.as_micros();
        if micros != 0 && micros % 1_000_000 == 0 {
            write!(f, "{}s", micros / 1_000_000)
        } else if micros % 1_000 == 0 {
            write!(f, "{}ms", micros / 1_000)
        } else {
            write!(f, "{micros}us")
        }
    }
}

impl CommandError {
    pub fn new(message: impl Into<String>) -> CommandError {
        CommandError(message.into())
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandError {}

#[cfg(test)]
mod tests;
