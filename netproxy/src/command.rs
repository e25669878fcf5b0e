//! The control language: one line of text per command, shared by the CLI and the daemon.
//!
//! The CLI parses what the user typed (so a typo fails before anything is sent) and sends the
//! canonical form that `Display` produces; the daemon parses that line again, because the wire
//! is not trusted, and checks node ids against the cluster's size with [`Command::check`].
//! For every command, `cmd.to_string().parse() == Ok(cmd)`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A request to the daemon: a change to the simulated network, or a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Change(Change),
    Status,
    Stats,
    ResetStats,
}

/// A change to connectivity or to the fault rules; the daemon logs each one.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Links across groups go down, links within a group come up. Nodes named in no group
    /// form one more group together.
    Partition(Vec<Vec<usize>>),
    Down(Vec<Link>),
    Up(Vec<Link>),
    /// The lab's disable of a server: a per-node flag, independent of the link matrix.
    Disconnect(usize),
    Connect(usize),
    /// Every link up, every node connected, every fault rule cleared.
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
    /// With probability `p` a datagram waits an extra `delay` (labrpc's long reordering).
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
/// labrpc's short delay: rand 0..26 ms.
pub const UNRELIABLE_DELAY: DelayRange = DelayRange::between_ms(0, 26);
/// labrpc delays 600 of 900 replies under long reordering (rounded, so it reads well in logs).
pub const LONG_REORDER: Probability = Probability(0.667);
/// labrpc's long reordering delay: 200 + rand(0..2000) ms.
pub const LONG_REORDER_DELAY: DelayRange = DelayRange::between_ms(200, 2200);

/// Delays longer than this are surely typos, and would hold buffers for no purpose.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// A directed link `from->to`, or both directions of a pair (`from<->to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub from: usize,
    pub to: usize,
    pub both_ways: bool,
}

/// Where a fault rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    All,
    /// Every link to and from the node.
    Node(usize),
    Link(Link),
}

/// A probability, always within [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
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
    /// Rejects node ids the cluster does not have.
    pub fn check(&self, nodes: usize) -> Result<(), CommandError> {
        let Command::Change(change) = self else {
            return Ok(());
        };
        match change.node_ids().into_iter().find(|&id| id >= nodes) {
            None => Ok(()),
            Some(id) => Err(CommandError(format!(
                "node {id} does not exist (cluster has {nodes} node{})",
                if nodes == 1 { "" } else { "s" }
            ))),
        }
    }
}

impl Change {
    fn node_ids(&self) -> Vec<usize> {
        let target_ids = |target: &Target| match *target {
            Target::All => vec![],
            Target::Node(id) => vec![id],
            Target::Link(link) => vec![link.from, link.to],
        };
        match self {
            Change::Partition(groups) => groups.concat(),
            Change::Down(links) | Change::Up(links) => {
                links.iter().flat_map(|l| [l.from, l.to]).collect()
            }
            Change::Disconnect(id) | Change::Connect(id) => vec![*id],
            Change::Drop { target, .. }
            | Change::Delay { target, .. }
            | Change::Duplicate { target, .. }
            | Change::Reorder { target, .. } => target_ids(target),
            Change::Heal | Change::Unreliable { .. } | Change::Reliable => vec![],
        }
    }
}

impl Link {
    /// The directed links this names: one, or both directions.
    pub fn directed(self) -> impl Iterator<Item = (usize, usize)> {
        let back = self.both_ways.then_some((self.to, self.from));
        std::iter::once((self.from, self.to)).chain(back)
    }
}

impl Target {
    /// The directed links of an `nodes`-node cluster this target covers.
    pub fn links(self, nodes: usize) -> Vec<(usize, usize)> {
        let every = (0..nodes).flat_map(move |i| (0..nodes).map(move |j| (i, j)));
        match self {
            Target::All => every.collect(),
            Target::Node(id) => every.filter(|&(i, j)| i == id || j == id).collect(),
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

impl CommandError {
    pub fn message(&self) -> &str {
        &self.0
    }
}

fn error<T>(message: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError(message.into()))
}

/// Each command's syntax, for the error that a wrong number of arguments gets.
const USAGE: &[(&str, &str)] = &[
    (
        "partition",
        "partition GROUP... (a GROUP is node ids joined by commas: 0,1)",
    ),
    ("down", "down LINK... (a LINK is i->j or i<->j)"),
    ("up", "up LINK... (a LINK is i->j or i<->j)"),
    ("disconnect", "disconnect NODE"),
    ("connect", "connect NODE"),
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
            ("partition", groups) if !groups.is_empty() => parse_partition(groups)?,
            ("down", links) if !links.is_empty() => Change::Down(parse_links(links)?),
            ("up", links) if !links.is_empty() => Change::Up(parse_links(links)?),
            ("disconnect", [node]) => Change::Disconnect(parse_node(node)?),
            ("connect", [node]) => Change::Connect(parse_node(node)?),
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
            .map(parse_node)
            .collect::<Result<Vec<_>, _>>()?;
        for &id in &group {
            if named.contains(&id) {
                return error(format!("node {id} is named in two groups"));
            }
            named.push(id);
        }
        groups.push(group);
    }
    Ok(Change::Partition(groups))
}

fn parse_links(words: &[&str]) -> Result<Vec<Link>, CommandError> {
    words.iter().map(|word| word.parse()).collect()
}

fn parse_node(word: &str) -> Result<usize, CommandError> {
    // Digits only: usize's own parser would also take "+1".
    match word.parse() {
        Ok(id) if word.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => error(format!("bad node id \"{word}\"")),
    }
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
        Ok(Link {
            from: parse_node(from)?,
            to: parse_node(to)?,
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
        } else if word.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Target::Node(parse_node(word)?))
        } else {
            error(format!(
                "bad target \"{word}\": expected all, a node id, or a link i->j or i<->j"
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
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Change::Partition(groups) => {
                f.write_str("partition")?;
                for group in groups {
                    let ids: Vec<String> = group.iter().map(usize::to_string).collect();
                    write!(f, " {}", ids.join(","))?;
                }
                Ok(())
            }
            Change::Down(links) | Change::Up(links) => {
                f.write_str(if matches!(self, Change::Down(_)) {
                    "down"
                } else {
                    "up"
                })?;
                links.iter().try_for_each(|link| write!(f, " {link}"))
            }
            Change::Disconnect(id) => write!(f, "disconnect {id}"),
            Change::Connect(id) => write!(f, "connect {id}"),
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
            Target::Node(id) => write!(f, "{id}"),
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

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Command {
        line.parse()
            .unwrap_or_else(|e| panic!("{line:?} should parse: {e}"))
    }

    fn change(line: &str) -> Change {
        match parse(line) {
            Command::Change(change) => change,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn rejection(line: &str) -> String {
        match line.parse::<Command>() {
            Ok(cmd) => panic!("{line:?} should be rejected, parsed as {cmd:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn link(from: usize, to: usize) -> Link {
        Link {
            from,
            to,
            both_ways: false,
        }
    }

    fn both(from: usize, to: usize) -> Link {
        Link {
            from,
            to,
            both_ways: true,
        }
    }

    fn p(p: f64) -> Probability {
        Probability::new(p).unwrap()
    }

    fn ms(min: u64, max: u64) -> DelayRange {
        DelayRange::between_ms(min, max)
    }

    #[test]
    fn queries() {
        assert_eq!(parse("status"), Command::Status);
        assert_eq!(parse("stats"), Command::Stats);
        assert_eq!(parse("reset-stats"), Command::ResetStats);
    }

    #[test]
    fn connectivity_changes() {
        assert_eq!(
            change("partition 0,1 2,3,4"),
            Change::Partition(vec![vec![0, 1], vec![2, 3, 4]])
        );
        assert_eq!(change("partition 3"), Change::Partition(vec![vec![3]]));
        assert_eq!(
            change("down 0->1 2<->3"),
            Change::Down(vec![link(0, 1), both(2, 3)])
        );
        assert_eq!(change("up 4->0"), Change::Up(vec![link(4, 0)]));
        assert_eq!(change("disconnect 2"), Change::Disconnect(2));
        assert_eq!(change("connect 2"), Change::Connect(2));
        assert_eq!(change("heal"), Change::Heal);
    }

    #[test]
    fn fault_rules_and_their_targets() {
        assert_eq!(
            change("drop 0.3"),
            Change::Drop {
                p: p(0.3),
                target: Target::All
            }
        );
        assert_eq!(
            change("drop 1 2"),
            Change::Drop {
                p: p(1.0),
                target: Target::Node(2)
            }
        );
        assert_eq!(
            change("delay 0ms..26ms 0->1"),
            Change::Delay {
                delay: ms(0, 26),
                target: Target::Link(link(0, 1))
            }
        );
        assert_eq!(
            change("delay 10ms all"),
            Change::Delay {
                delay: ms(10, 10),
                target: Target::All
            }
        );
        assert_eq!(
            change("duplicate 0.05 0<->1"),
            Change::Duplicate {
                p: p(0.05),
                target: Target::Link(both(0, 1))
            }
        );
        assert_eq!(
            change("unreliable"),
            Change::Unreliable {
                long_reordering: false
            }
        );
        assert_eq!(
            change("unreliable --long-reordering"),
            Change::Unreliable {
                long_reordering: true
            }
        );
        assert_eq!(change("reliable"), Change::Reliable);
    }

    #[test]
    fn reorder_tells_a_lone_delay_from_a_lone_target() {
        let reorder = |p_: f64, delay, target| Change::Reorder {
            p: p(p_),
            delay,
            target,
        };
        assert_eq!(
            change("reorder 0.5"),
            reorder(0.5, LONG_REORDER_DELAY, Target::All)
        );
        assert_eq!(
            change("reorder 0.5 5ms..50ms"),
            reorder(0.5, ms(5, 50), Target::All)
        );
        assert_eq!(
            change("reorder 0.5 1s"),
            reorder(0.5, ms(1000, 1000), Target::All)
        );
        assert_eq!(
            change("reorder 0.5 3"),
            reorder(0.5, LONG_REORDER_DELAY, Target::Node(3))
        );
        assert_eq!(
            change("reorder 0.5 1->0"),
            reorder(0.5, LONG_REORDER_DELAY, Target::Link(link(1, 0)))
        );
        assert_eq!(
            change("reorder 0.5 5ms..50ms all"),
            reorder(0.5, ms(5, 50), Target::All)
        );
    }

    #[test]
    fn durations_take_us_ms_and_s() {
        let delay = |line: &str| match change(line) {
            Change::Delay { delay, .. } => delay,
            other => panic!("{other:?}"),
        };
        assert_eq!(delay("delay 250us").min(), Duration::from_micros(250));
        assert_eq!(delay("delay 10ms").max(), Duration::from_millis(10));
        assert_eq!(delay("delay 2s").min(), Duration::from_secs(2));
        assert_eq!(delay("delay 0ms"), DelayRange::ZERO);
        assert_eq!(delay("delay 3600s").max(), MAX_DELAY);
    }

    #[test]
    fn extra_whitespace_is_ignored() {
        assert_eq!(parse("  drop\t0.5   1->2 \r\n"), parse("drop 0.5 1->2"));
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        let canonical = [
            ("partition 0,1 2,3,4", "partition 0,1 2,3,4"),
            ("down 0->1 2<->3", "down 0->1 2<->3"),
            ("up 1<->0", "up 1<->0"),
            ("disconnect 4", "disconnect 4"),
            ("connect 4", "connect 4"),
            ("heal", "heal"),
            ("drop 0.30", "drop 0.3 all"),
            ("delay 1000ms 2", "delay 1s 2"),
            ("delay 1500us..2000ms", "delay 1500us..2s all"),
            ("delay 0s", "delay 0ms all"),
            ("duplicate 1.0 0->1", "duplicate 1 0->1"),
            ("reorder 0.667", "reorder 0.667 200ms..2200ms all"),
            ("unreliable", "unreliable"),
            (
                "unreliable --long-reordering",
                "unreliable --long-reordering",
            ),
            ("reliable", "reliable"),
            ("status", "status"),
            ("stats", "stats"),
            ("reset-stats", "reset-stats"),
        ];
        for (typed, expected) in canonical {
            let cmd = parse(typed);
            assert_eq!(cmd.to_string(), expected, "canonical form of {typed:?}");
            assert_eq!(parse(expected), cmd, "{expected:?} parses back");
        }
    }

    #[test]
    fn presets_match_labrpc() {
        assert_eq!(UNRELIABLE_DROP.to_string(), "0.1");
        assert_eq!(UNRELIABLE_DELAY.to_string(), "0ms..26ms");
        assert_eq!(LONG_REORDER_DELAY.to_string(), "200ms..2200ms");
        assert_eq!(LONG_REORDER.to_string(), "0.667");
    }

    #[test]
    fn malformed_commands_name_the_bad_part() {
        let cases = [
            ("", "empty command"),
            ("   ", "empty command"),
            ("frobnicate 1", "unknown command \"frobnicate\""),
            (
                "drop 1.5",
                "bad probability \"1.5\": must be between 0 and 1",
            ),
            (
                "drop -0.1",
                "bad probability \"-0.1\": must be between 0 and 1",
            ),
            (
                "drop NaN",
                "bad probability \"NaN\": must be between 0 and 1",
            ),
            (
                "duplicate lots",
                "bad probability \"lots\": must be between 0 and 1",
            ),
            (
                "delay 10xs",
                "bad duration \"10xs\": expected e.g. 500us, 10ms or 2s",
            ),
            (
                "delay 10",
                "bad duration \"10\": expected e.g. 500us, 10ms or 2s",
            ),
            (
                "delay ms",
                "bad duration \"ms\": expected e.g. 500us, 10ms or 2s",
            ),
            (
                "delay 1.5ms",
                "bad duration \"1.5ms\": expected e.g. 500us, 10ms or 2s",
            ),
            ("delay 3601s", "bad duration \"3601s\": at most 3600s"),
            (
                "delay 99999999999999999999s",
                "bad duration \"99999999999999999999s\": expected e.g. 500us, 10ms or 2s",
            ),
            (
                "delay 30ms..10ms",
                "bad delay range \"30ms..10ms\": MIN exceeds MAX",
            ),
            (
                "reorder 0.5 10xs",
                "bad duration \"10xs\": expected e.g. 500us, 10ms or 2s",
            ),
            (
                "reorder 0.5 1ms nowhere",
                "bad target \"nowhere\": expected all, a node id, or a link i->j or i<->j",
            ),
            (
                "drop 0.5 some",
                "bad target \"some\": expected all, a node id, or a link i->j or i<->j",
            ),
            ("disconnect x", "bad node id \"x\""),
            ("disconnect +1", "bad node id \"+1\""),
            ("connect -1", "bad node id \"-1\""),
            ("partition 0,1 1,2", "node 1 is named in two groups"),
            ("partition 0,0", "node 0 is named in two groups"),
            ("partition 0,,1", "bad node id \"\""),
            ("down 0-1", "bad link \"0-1\": expected i->j or i<->j"),
            ("up 0->x", "bad node id \"x\""),
            ("down 0<->", "bad node id \"\""),
        ];
        for (line, message) in cases {
            assert_eq!(rejection(line), message, "rejection of {line:?}");
        }
    }

    #[test]
    fn a_wrong_number_of_arguments_shows_the_usage() {
        let cases = [
            (
                "partition",
                "usage: partition GROUP... (a GROUP is node ids joined by commas: 0,1)",
            ),
            ("down", "usage: down LINK... (a LINK is i->j or i<->j)"),
            ("up", "usage: up LINK... (a LINK is i->j or i<->j)"),
            ("disconnect", "usage: disconnect NODE"),
            ("connect 1 2", "usage: connect NODE"),
            ("heal now", "usage: heal"),
            ("drop", "usage: drop P [TARGET]"),
            ("drop 0.1 1 2", "usage: drop P [TARGET]"),
            ("delay", "usage: delay MIN..MAX|FIXED [TARGET]"),
            ("duplicate 0.1 0 1", "usage: duplicate P [TARGET]"),
            ("reorder", "usage: reorder P [MIN..MAX] [TARGET]"),
            (
                "reorder 0.1 1ms 0 1",
                "usage: reorder P [MIN..MAX] [TARGET]",
            ),
            (
                "unreliable --short",
                "usage: unreliable [--long-reordering]",
            ),
            ("reliable 1", "usage: reliable"),
            ("status --json", "usage: status"),
            ("stats 1", "usage: stats"),
            ("reset-stats all", "usage: reset-stats"),
        ];
        for (line, message) in cases {
            assert_eq!(rejection(line), message, "rejection of {line:?}");
        }
    }

    #[test]
    fn check_rejects_nodes_the_cluster_lacks() {
        let check = |line: &str, nodes| parse(line).check(nodes).map_err(|e| e.to_string());
        let missing = |id, nodes: usize| {
            Err(format!(
                "node {id} does not exist (cluster has {nodes} node{})",
                if nodes == 1 { "" } else { "s" }
            ))
        };
        assert_eq!(check("disconnect 7", 5), missing(7, 5));
        assert_eq!(check("connect 5", 5), missing(5, 5));
        assert_eq!(check("connect 4", 5), Ok(()));
        assert_eq!(check("partition 0 1,9", 5), missing(9, 5));
        assert_eq!(check("down 0->1 1<->5", 5), missing(5, 5));
        assert_eq!(check("up 1->0", 1), missing(1, 1));
        assert_eq!(check("drop 0.1 3", 3), missing(3, 3));
        assert_eq!(check("delay 1ms 0->3", 3), missing(3, 3));
        assert_eq!(check("duplicate 0.1 3<->0", 3), missing(3, 3));
        assert_eq!(check("reorder 0.1 1ms 8", 3), missing(8, 3));
        assert_eq!(check("drop 0.1 all", 1), Ok(()));
        assert_eq!(check("heal", 1), Ok(()));
        assert_eq!(check("status", 1), Ok(()));
    }

    #[test]
    fn targets_cover_their_directed_links() {
        assert_eq!(Target::All.links(2), [(0, 0), (0, 1), (1, 0), (1, 1)]);
        assert_eq!(
            Target::Node(1).links(3),
            [(0, 1), (1, 0), (1, 1), (1, 2), (2, 1)]
        );
        assert_eq!(Target::Link(both(2, 0)).links(3), [(2, 0), (0, 2)]);
        assert_eq!(Target::Link(link(2, 0)).links(3), [(2, 0)]);
    }
}
