//! `raft-logs`: read a run's log (`run.log` of a test run, `cluster.log` of `just cluster`,
//! or any file of lines in the common format): `show` prints one column per node
//! (`just logs`), `timeline` draws the run as an HTML page (`just timeline`).

use clap::{Parser, Subcommand, ValueEnum};
use harness::logs::parse::{read_log, Record};
use harness::logs::timeline;
use harness::logs::view::{render, ViewOptions};
use raft_node::logline::TOPICS;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Read a raft-lab run's log: per-node columns or a timeline picture"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One column per node, proxy faults, crashes and test steps across the width.
    Show {
        /// The log file; standard input when absent or `-`.
        file: Option<PathBuf>,
        /// Only these topics, comma-separated (e.g. ELECT,VOTE).
        #[arg(short, long, value_delimiter = ',', value_parser = parse_topic)]
        topics: Vec<String>,
        /// Only these nodes, comma-separated ids (e.g. 0,2).
        #[arg(short, long, value_delimiter = ',')]
        nodes: Vec<u32>,
        /// Width in characters (default: the terminal's, else $COLUMNS, else 160).
        #[arg(short, long, value_parser = clap::value_parser!(u16).range(40..))]
        width: Option<u16>,
        /// Colour per topic.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
    },
    /// Write a self-contained HTML page: a lane per node, terms, leaders, commits, crashes
    /// and partitions over time.
    Timeline {
        /// The log file.
        file: PathBuf,
        /// Where to write the page (default: the log's path with .html).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

fn parse_topic(topic: &str) -> Result<String, String> {
    let upper = topic.trim().to_ascii_uppercase();
    if TOPICS.iter().any(|(t, _)| *t == upper) {
        Ok(upper)
    } else {
        let known: Vec<&str> = TOPICS.iter().map(|(t, _)| *t).collect();
        Err(format!("no topic {topic:?}; topics: {}", known.join(",")))
    }
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Show {
            file,
            topics,
            nodes,
            width,
            color,
        } => show(file, topics, nodes, width, color),
        Cmd::Timeline { file, output } => draw_timeline(&file, output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `just logs run.log | head` closes the pipe early: that is no error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-logs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The log's records; an error if not one line is in the common format (the wrong file).
fn read(file: Option<&Path>) -> io::Result<Vec<Record>> {
    let records = match file {
        None => read_log(io::stdin().lock())?,
        Some(path) if path == Path::new("-") => read_log(io::stdin().lock())?,
        Some(path) => {
            let file = File::open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            read_log(BufReader::new(file))?
        }
    };
    if records.iter().any(|r| matches!(r, Record::Line(_))) {
        Ok(records)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: no line in raft-lab's log format ('<seconds> <LEVEL> <who> <term> <TOPIC> \
                 <text>'); give a test's run.log or just cluster's cluster.log",
                file.map_or("standard input".to_string(), |f| f.display().to_string())
            ),
        ))
    }
}

fn show(
    file: Option<PathBuf>,
    topics: Vec<String>,
    nodes: Vec<u32>,
    width: Option<u16>,
    color: Color,
) -> io::Result<()> {
    let records = read(file.as_deref())?;
    let stdout = io::stdout();
    let options = ViewOptions {
        width: width.map_or_else(terminal_width, usize::from),
        topics: (!topics.is_empty()).then(|| topics.into_iter().collect::<BTreeSet<_>>()),
        nodes: (!nodes.is_empty()).then(|| nodes.into_iter().collect::<BTreeSet<_>>()),
        color: match color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        },
    };
    let mut out = io::BufWriter::new(stdout.lock());
    render(&records, &options, &mut out)?;
    out.flush()
}

/// The terminal's width, else `$COLUMNS`, else 160.
fn terminal_width() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`; on a non-terminal it fails harmlessly.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        return usize::from(size.ws_col);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(160)
}

fn draw_timeline(file: &Path, output: Option<PathBuf>) -> io::Result<()> {
    let records = read(Some(file))?;
    let output = output.unwrap_or_else(|| file.with_extension("html"));
    let page = timeline::html(&records, &file.display().to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", file.display()),
        )
    })?;
    std::fs::write(&output, page)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", output.display())))?;
    println!("wrote {}", output.display());
    Ok(())
}
