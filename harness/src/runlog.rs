//! A cluster run's log: one file that the proxy, every node and the harness itself append to,
//! in the common line format (`raft_node::logline`), so `just logs` and `just timeline` read
//! a run as one story. Tests write it to `run.log` in the run directory; `just cluster`
//! shows it on the terminal and keeps a copy in `cluster.log` in its data directory.
//!
//! Every writer opens the file with O_APPEND and writes a line with one `write`, so lines of
//! different processes interleave whole.

use crate::logs::parse::parse_line;
use log::Level;
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;

pub struct RunLog {
    path: PathBuf,
    file: File,
    /// Also copy every line to this process's stderr (`just cluster`).
    echo: bool,
}

impl RunLog {
    /// Appends to `path` (created if missing); with `echo`, lines also go to stderr.
    pub fn open(path: PathBuf, echo: bool) -> io::Result<RunLog> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(RunLog { path, file, echo })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Spawns `cmd` with its stdout and stderr going to this log. Without echo the child
    /// writes the file itself; with echo a thread per stream copies its lines to both, and
    /// lines outside the common format are prefixed with `name` so they stay attributable.
    pub fn spawn(&self, mut cmd: Command, name: &str) -> io::Result<Child> {
        if !self.echo {
            cmd.stdout(self.file.try_clone()?)
                .stderr(self.file.try_clone()?);
            return cmd.spawn();
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        self.copy_lines(out, name)?;
        self.copy_lines(err, name)?;
        Ok(child)
    }

    fn copy_lines(&self, from: impl Read + Send + 'static, name: &str) -> io::Result<()> {
        let mut file = self.file.try_clone()?;
        let prefix = format!("{name} | ");
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { return };
                let line = match parse_line(&line) {
                    Some(_) => format!("{line}\n"),
                    None => format!("{prefix}{line}\n"),
                };
                eprint!("{line}");
                let _ = file.write_all(line.as_bytes());
            }
        });
        Ok(())
    }

    /// One line of the harness's own (`test` as the writer): a test's steps, faults it made,
    /// a failed check.
    pub fn event(&self, level: Level, topic: &str, text: &str) {
        let line = raft_node::logline::line(level, "test", None, topic, text);
        if self.echo {
            eprint!("{line}");
        }
        // A log that cannot be written must not fail the run it describes.
        let _ = (&self.file).write_all(line.as_bytes());
    }

    /// From now until [`stop_recording_panics`], a panic on this thread (a failed check of
    /// the test running on it) is written to this log as a FAIL line, before the usual panic
    /// message.
    pub fn record_panics(&self) -> io::Result<()> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                PANIC_LOG.with(|log| {
                    if let Some(file) = log.borrow_mut().as_mut() {
                        let place = info
                            .location()
                            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
                            .unwrap_or_default();
                        let message = panic_message(info.payload());
                        let line = raft_node::logline::line(
                            Level::Error,
                            "test",
                            None,
                            "FAIL",
                            &format!("{message}{place}"),
                        );
                        let _ = file.write_all(line.as_bytes());
                    }
                });
                previous(info);
            }));
        });
        let file = self.file.try_clone()?;
        PANIC_LOG.with(|log| *log.borrow_mut() = Some(file));
        Ok(())
    }
}

/// Undoes [`RunLog::record_panics`] for this thread.
pub fn stop_recording_panics() {
    PANIC_LOG.with(|log| *log.borrow_mut() = None);
}

thread_local! {
    /// The log a panic on this thread is recorded in (see [`RunLog::record_panics`]).
    static PANIC_LOG: RefCell<Option<File>> = const { RefCell::new(None) };
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse::{read_log, Record, Who};

    fn lines(path: &Path) -> Vec<Record> {
        read_log(BufReader::new(File::open(path).unwrap())).unwrap()
    }

    #[test]
    fn events_and_children_share_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunLog::open(dir.path().join("run.log"), false).unwrap();
        log.event(Level::Info, "FAULT", "crash n1");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo not the format; echo on stderr >&2"]);
        log.spawn(cmd, "node 1").unwrap().wait().unwrap();
        let records = lines(log.path());
        assert_eq!(records.len(), 3);
        let Record::Line(first) = &records[0] else {
            panic!("{records:?}")
        };
        assert_eq!((first.who, first.topic.as_str()), (Who::Test, "FAULT"));
        assert!(records[1..].iter().all(|r| matches!(r, Record::Raw { .. })));
    }

    #[test]
    fn a_panic_while_recording_becomes_a_fail_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.log");
        let thread_path = path.clone();
        let outcome = std::thread::spawn(move || {
            let log = RunLog::open(thread_path, false).unwrap();
            log.record_panics().unwrap();
            panic!("expected one leader, got none");
        })
        .join();
        assert!(outcome.is_err());
        let records = lines(&path);
        let Some(Record::Line(fail)) = records.first() else {
            panic!("{records:?}")
        };
        assert_eq!(fail.topic, "FAIL");
        assert!(
            fail.text.starts_with("expected one leader, got none (at "),
            "{}",
            fail.text
        );
    }
}
