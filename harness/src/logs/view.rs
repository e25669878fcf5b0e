//! `just logs`: a run's log with one column per node, so who did what when reads left to
//! right and top to bottom. The proxy's fault changes, the harness's crashes and restarts,
//! test steps and failed checks span the whole width: they are the plot of the story.

use super::parse::{Line, Record, Who};
use std::collections::BTreeSet;
use std::io::{self, Write};

/// What to show and how.
#[derive(Clone, Debug)]
pub struct ViewOptions {
    /// Total width in characters.
    pub width: usize,
    /// Show only node lines of these topics (full-width rows always show).
    pub topics: Option<BTreeSet<String>>,
    /// Show only these nodes' columns.
    pub nodes: Option<BTreeSet<u32>>,
    /// ANSI colours.
    pub color: bool,
}

/// Width of the time column: seconds since the first line, `ssss.mmm`.
const TIME_WIDTH: usize = 9;
/// The narrowest useful node column.
const MIN_COLUMN: usize = 12;

/// Writes the column view of `records` to `out`.
pub fn render(records: &[Record], options: &ViewOptions, out: &mut impl Write) -> io::Result<()> {
    let columns = columns(records, options);
    let Some(start) = records.first().map(Record::micros) else {
        return Ok(());
    };
    let column_width = (options
        .width
        .saturating_sub(TIME_WIDTH + 1)
        .saturating_sub(columns.len().saturating_sub(1)))
        / columns.len().max(1);
    let column_width = column_width.max(MIN_COLUMN);
    let row_width = match columns.len() {
        0 => options.width.max(TIME_WIDTH + 1 + MIN_COLUMN),
        n => TIME_WIDTH + 1 + n * (column_width + 1) - 1,
    };
    let paint = Painter {
        color: options.color,
    };

    // The header: a node id over each column.
    let mut header = format!("{:>TIME_WIDTH$} ", "time");
    for (i, node) in columns.iter().enumerate() {
        if i > 0 {
            header.push(' ');
        }
        header.push_str(&fit(&format!("n{node}"), column_width));
    }
    writeln!(out, "{}", paint.bold(header.trim_end()))?;

    for record in records {
        let time = format!(
            "{:>TIME_WIDTH$.3}",
            (record.micros().saturating_sub(start)) as f64 / 1e6
        );
        match record {
            Record::Raw { text, .. } => {
                if options.topics.is_none() && options.nodes.is_none() {
                    let text = fit(text, row_width - TIME_WIDTH - 1);
                    writeln!(out, "{time} {}", paint.dim(text.trim_end()))?;
                }
            }
            Record::Line(line) => match line.who {
                Who::Node(id) => {
                    let Some(column) = columns.iter().position(|&c| c == id) else {
                        continue;
                    };
                    if !shows_topic(options, &line.topic) {
                        continue;
                    }
                    let cell = fit(&cell_text(line), column_width);
                    let blank = " ".repeat(column_width + 1);
                    let before = blank.repeat(column);
                    let cell = paint.topic(&line.topic, &line.level, cell.trim_end());
                    writeln!(out, "{time} {before}{cell}")?;
                }
                Who::Proxy | Who::Test => {
                    let label = format!("── {} {} ", line.topic, line.text);
                    let width = row_width - TIME_WIDTH - 1;
                    let mut banner = if label.chars().count() > width {
                        fit(&label, width)
                    } else {
                        label
                    };
                    let used = banner.chars().count();
                    banner.push_str(&"─".repeat(width.saturating_sub(used)));
                    writeln!(out, "{time} {}", paint.banner(&line.topic, &banner))?;
                }
            },
        }
    }
    Ok(())
}

/// The node ids that get a column: every node seen (0 up to the highest id), or the chosen ones.
fn columns(records: &[Record], options: &ViewOptions) -> Vec<u32> {
    if let Some(nodes) = &options.nodes {
        return nodes.iter().copied().collect();
    }
    let highest = records
        .iter()
        .filter_map(|r| match r {
            Record::Line(Line {
                who: Who::Node(id), ..
            }) => Some(*id),
            _ => None,
        })
        .max();
    highest.map_or(Vec::new(), |h| (0..=h).collect())
}

fn shows_topic(options: &ViewOptions, topic: &str) -> bool {
    options.topics.as_ref().is_none_or(|t| t.contains(topic))
}

/// What a node's cell says: the term, the topic, the text.
fn cell_text(line: &Line) -> String {
    let term = line.term.map_or("-".to_string(), |t| format!("t{t}"));
    format!("{term} {} {}", line.topic, line.text)
}

/// `text` cut or padded to exactly `width` characters (a cut is marked with `…`).
fn fit(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        format!("{text}{}", " ".repeat(width - count))
    } else {
        let cut: String = text.chars().take(width.saturating_sub(1)).collect();
        let cut = cut.trim_end();
        format!("{cut}…{}", " ".repeat(width - 1 - cut.chars().count()))
    }
}

/// ANSI styling, or none.
struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// A node line: its topic's colour; warnings and errors stand out whatever the topic.
    fn topic(&self, topic: &str, level: &str, text: &str) -> String {
        let code = match (level, topic) {
            ("ERROR", _) => "1;31",
            ("WARN", _) => "33",
            (_, "ELECT") => "1;36",
            (_, "VOTE") => "36",
            (_, "APPEND") => "34",
            (_, "COMMIT") => "32",
            (_, "APPLY") => "92",
            (_, "PERSIST") => "35",
            (_, "SNAP") => "95",
            _ => "0",
        };
        self.paint(code, text)
    }

    /// A full-width row: failures red, faults yellow, the rest in reverse video.
    fn banner(&self, topic: &str, text: &str) -> String {
        let code = match topic {
            "FAIL" => "1;41;97",
            "FAULT" => "1;33",
            "PROXY" => "1;35",
            _ => "1;7",
        };
        self.paint(code, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse::read_log;

    const LOG: &str = "\
10.000000 INFO  test - TEST Test (2A): initial election ...
10.100000 INFO  n1 t1 ELECT starting election
10.101000 INFO  n0 t1 VOTE granted to n1
10.102000 INFO  n2 t1 VOTE granted to n1
10.103000 INFO  n1 t1 ELECT became leader (last_log_index=0 commit_index=0)
10.200000 INFO  proxy - PROXY disconnect 1
ready id=1 listen=127.0.0.1:7001
10.300000 INFO  n1 t1 COMMIT commit_index=1
";

    fn view(options: ViewOptions) -> Vec<String> {
        let records = read_log(LOG.as_bytes()).unwrap();
        let mut out = Vec::new();
        render(&records, &options, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn plain(width: usize) -> ViewOptions {
        ViewOptions {
            width,
            topics: None,
            nodes: None,
            color: false,
        }
    }

    #[test]
    fn each_node_writes_in_its_own_column() {
        let lines = view(plain(70));
        // 70 = 9 time + 1 + three columns of 19 + 2 separators.
        assert_eq!(
            lines[0],
            format!("{:>9} {:<19} {:<19} n2", "time", "n0", "n1")
        );
        let election = &lines[2];
        assert_eq!(&election[..9], "    0.100");
        assert_eq!(&election[10..30], " ".repeat(20));
        assert!(
            election[30..].starts_with("t1 ELECT starting…"),
            "{election}"
        );
        let vote_n2 = &lines[4];
        assert!(vote_n2[50..].starts_with("t1 VOTE granted to"), "{vote_n2}");
        assert!(lines.iter().all(|l| l.chars().count() <= 70), "{lines:#?}");
    }

    #[test]
    fn proxy_and_test_lines_span_the_width() {
        let lines = view(plain(70));
        assert!(lines[1].starts_with("    0.000 ── TEST Test (2A): initial election"));
        assert!(lines[6].starts_with("    0.200 ── PROXY disconnect 1 ──"));
        assert_eq!(lines[6].chars().count(), 69);
        assert!(lines[7].ends_with("ready id=1 listen=127.0.0.1:7001"));
    }

    #[test]
    fn filters_keep_the_chosen_topics_and_nodes() {
        let only_votes = view(ViewOptions {
            topics: Some(["VOTE".to_string()].into()),
            ..plain(70)
        });
        let cells: Vec<&String> = only_votes.iter().filter(|l| l.contains(" t1 ")).collect();
        assert_eq!(cells.len(), 2, "{only_votes:#?}");
        assert!(only_votes.iter().any(|l| l.contains("PROXY disconnect 1")));
        assert!(!only_votes.iter().any(|l| l.contains("ready")));

        let only_n1 = view(ViewOptions {
            nodes: Some([1].into()),
            ..plain(70)
        });
        assert!(only_n1[0].ends_with("n1"));
        assert!(only_n1.iter().filter(|l| l.contains(" t1 ")).count() == 3);
        assert!(!only_n1.iter().any(|l| l.contains("VOTE")));
    }

    #[test]
    fn a_log_of_only_proxy_and_raw_lines_spans_the_width() {
        let records = read_log("ready\n1.000000 INFO  proxy - PROXY heal\n".as_bytes()).unwrap();
        let mut out = Vec::new();
        render(&records, &plain(40), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("── PROXY heal ──"), "{text}");
    }

    #[test]
    fn colour_only_when_asked() {
        let coloured = view(ViewOptions {
            color: true,
            ..plain(70)
        });
        assert!(coloured.iter().any(|l| l.contains("\x1b[1;36mt1 ELECT")));
        assert!(view(plain(70)).iter().all(|l| !l.contains('\x1b')));
    }
}
