//! Reading the common log-line format (`raft_node::logline`) back:
//! `<seconds>.<micros> <LEVEL> <who> <term> <TOPIC> <text>`.
//!
//! Lines that do not follow it (a node's `ready` line on stdout, a panic message) are kept as
//! [`Record::Raw`], so nothing a process wrote is hidden from the reader.

use std::io::{self, BufRead};

/// Node ids above this are no node's: the readers give every node a column or a lane, so a
/// damaged line claiming node 4000000000 must not make them allocate billions.
pub const MAX_NODE_ID: u32 = 255;

/// Who wrote a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Who {
    Node(u32),
    Proxy,
    Test,
}

/// One line in the common format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Microseconds on CLOCK_MONOTONIC.
    pub micros: u64,
    pub level: String,
    pub who: Who,
    /// The node's term when it wrote the line; `None` for the proxy and the test.
    pub term: Option<u64>,
    pub topic: String,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Line(Line),
    /// A line in no known format, with the time of the line before it (of the first timed
    /// line, for those before it).
    Raw {
        micros: u64,
        text: String,
    },
}

impl Record {
    pub fn micros(&self) -> u64 {
        match self {
            Record::Line(line) => line.micros,
            Record::Raw { micros, .. } => *micros,
        }
    }
}

/// Parses one line of the common format; `None` if it is not one.
pub fn parse_line(line: &str) -> Option<Line> {
    // The level is padded to five characters: skip runs of spaces between the first fields,
    // but keep the text exactly as written.
    let (stamp, rest) = line.split_once(' ')?;
    let (level, rest) = rest.trim_start().split_once(' ')?;
    let rest = rest.trim_start();
    let (who, rest) = rest.split_once(' ')?;
    let (term, rest) = rest.split_once(' ')?;
    let (topic, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let micros = parse_stamp(stamp)?;
    if !matches!(level, "ERROR" | "WARN" | "INFO" | "DEBUG" | "TRACE") {
        return None;
    }
    let who = match who {
        "proxy" => Who::Proxy,
        "test" => Who::Test,
        node => Who::Node(
            node.strip_prefix('n')?
                .parse()
                .ok()
                .filter(|&id| id <= MAX_NODE_ID)?,
        ),
    };
    let term = match term {
        "-" => None,
        t => Some(t.strip_prefix('t')?.parse().ok()?),
    };
    let is_topic = !topic.is_empty() && topic.bytes().all(|b| b.is_ascii_uppercase());
    is_topic.then(|| Line {
        micros,
        level: level.to_string(),
        who,
        term,
        topic: topic.to_string(),
        text: text.to_string(),
    })
}

/// `5123.004512` → 5_123_004_512 µs. Exactly six decimals, as the writers print them.
fn parse_stamp(stamp: &str) -> Option<u64> {
    let (secs, micros) = stamp.split_once('.')?;
    if micros.len() != 6
        || !secs
            .bytes()
            .chain(micros.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(secs.parse::<u64>().ok()? * 1_000_000 + micros.parse::<u64>().ok()?)
}

/// Reads a whole log, ordered by time. Processes append to one file concurrently, so lines
/// can land slightly out of order; the sort is stable, and a raw line stays behind the line
/// it followed.
pub fn read_log(reader: impl BufRead) -> io::Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut last = 0;
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Some(parsed) => {
                last = parsed.micros;
                records.push(Record::Line(parsed));
            }
            None => records.push(Record::Raw {
                micros: last,
                text: line,
            }),
        }
    }
    // Raw lines before the first timed one (the proxy's `ready` line) belong at its time.
    if let Some(first) = records.iter().find_map(|r| match r {
        Record::Line(line) => Some(line.micros),
        Record::Raw { .. } => None,
    }) {
        for record in records.iter_mut() {
            match record {
                Record::Raw { micros, .. } => *micros = first,
                Record::Line(_) => break,
            }
        }
    }
    records.sort_by_key(Record::micros);
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_node_line_keeping_the_text_as_written() {
        let line = parse_line("5123.004512 INFO  n2 t5 ELECT became leader (a  b)").unwrap();
        assert_eq!(
            line,
            Line {
                micros: 5_123_004_512,
                level: "INFO".into(),
                who: Who::Node(2),
                term: Some(5),
                topic: "ELECT".into(),
                text: "became leader (a  b)".into(),
            }
        );
    }

    #[test]
    fn parses_proxy_and_test_lines() {
        let proxy = parse_line("1.000001 WARN  proxy - PROXY partition 0,1 | 2").unwrap();
        assert_eq!((proxy.who, proxy.term), (Who::Proxy, None));
        assert_eq!(proxy.text, "partition 0,1 | 2");
        let test = parse_line("2.000000 ERROR test - FAIL expected one leader").unwrap();
        assert_eq!((test.who, test.topic.as_str()), (Who::Test, "FAIL"));
    }

    #[test]
    fn rejects_what_is_not_the_format() {
        for line in [
            "ready id=0 listen=127.0.0.1:7000 control=127.0.0.1:7300",
            "thread 'main' panicked at src/main.rs:1:1:",
            "5123.0045 INFO  n2 t5 ELECT short stamp",
            "5123.004512 LOUD  n2 t5 ELECT bad level",
            "5123.004512 INFO  x2 t5 ELECT bad who",
            "5123.004512 INFO  n2 5 ELECT bad term",
            "5123.004512 INFO  n4000000000 t5 ELECT no node's id",
            "5123.004512 INFO  n2 t5 elect lower-case topic",
            "",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn a_log_is_ordered_by_time_with_raw_lines_kept_in_place() {
        let text = "\
early
2.000000 INFO  n1 t1 ELECT b
1.000000 INFO  n0 t1 ELECT a
ready id=0
3.000000 INFO  test - TEST c
";
        let records = read_log(text.as_bytes()).unwrap();
        let order: Vec<String> = records
            .iter()
            .map(|r| match r {
                Record::Line(l) => l.text.clone(),
                Record::Raw { text, .. } => text.clone(),
            })
            .collect();
        assert_eq!(order, ["a", "ready id=0", "early", "b", "c"]);
    }
}
