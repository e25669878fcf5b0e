//! Runs each chosen test N times, P at a time. Every run is a process group of its own (the
//! test process and the proxy and nodes its cluster spawns) with a directory of its own for its
//! output, logs and data dirs: removed when the run passes, kept when it fails.

use super::discovery::TestCase;
use super::progress::Progress;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What to run.
pub struct Plan {
    pub tests: Vec<TestCase>,
    /// Runs of each test.
    pub runs: u32,
    /// Runs at a time.
    pub parallel: usize,
    /// A run still going after this long is killed and counted as failed (hung).
    pub timeout: Option<Duration>,
    /// Run `i` of test `T` keeps its output in `DIR/T/i/`.
    pub dir: PathBuf,
}

impl Plan {
    fn run_dir(&self, test: usize, run: u32) -> PathBuf {
        self.test_dir(test).join(run.to_string())
    }

    fn test_dir(&self, test: usize) -> PathBuf {
        self.dir.join(self.tests[test].label.replace("::", "-"))
    }
}

/// How one run ended.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Passed,
    /// `why`: its exit status, a timeout, or why it could not start; `dir`: its kept output.
    Failed {
        why: String,
        dir: PathBuf,
    },
    /// Killed by an interrupt before it finished: counted neither as passed nor as failed.
    Cancelled,
}

#[derive(Debug)]
pub struct RunRecord {
    /// Index into [`Plan::tests`].
    pub test: usize,
    pub run: u32,
    /// Wall time from spawn to exit.
    pub time: Duration,
    pub verdict: Verdict,
}

pub struct Outcome {
    pub records: Vec<RunRecord>,
    /// Stopped early by [`Interrupter::interrupt`] (Ctrl-C).
    pub interrupted: bool,
    pub elapsed: Duration,
}

enum Event {
    /// A run's test process exited and was reaped.
    Exited {
        id: u64,
        status: io::Result<ExitStatus>,
        at: Instant,
    },
    Interrupt,
}

/// Stops a [`Runner`] from another thread (the Ctrl-C handler): no new runs start, running
/// ones are killed, and [`Runner::run`] returns what finished.
#[derive(Clone)]
pub struct Interrupter(Sender<Event>);

impl Interrupter {
    pub fn interrupt(&self) {
        let _ = self.0.send(Event::Interrupt);
    }
}

/// One channel carries both runs ending and interrupts, so the runner sleeps in one place
/// until something happens.
pub struct Runner {
    events: Sender<Event>,
    inbox: Receiver<Event>,
}

impl Default for Runner {
    fn default() -> Self {
        let (events, inbox) = mpsc::channel();
        Runner { events, inbox }
    }
}

/// A run in progress.
struct Running {
    test: usize,
    run: u32,
    dir: PathBuf,
    log: File,
    started: Instant,
    group: Arc<Group>,
    killed: Option<Kill>,
}

/// Why the runner killed a run.
#[derive(Clone, Copy)]
enum Kill {
    Timeout,
    Interrupt,
}

impl Runner {
    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.events.clone())
    }

    /// Runs the plan: run 1 of every test, then run 2 of every test, and so on, so that an
    /// interrupted stress run has a comparable number of runs of each test. Must be called on a
    /// thread that outlives the runs (the main thread): test processes die with it.
    pub fn run(self, plan: &Plan, progress: &mut Progress) -> Outcome {
        let started = Instant::now();
        let mut queue =
            (1..=plan.runs).flat_map(|run| (0..plan.tests.len()).map(move |test| (test, run)));
        let mut running: HashMap<u64, Running> = HashMap::new();
        let mut records = Vec::new();
        let mut interrupted = false;
        let mut next_id = 0;
        loop {
            while !interrupted && running.len() < plan.parallel {
                let Some((test, run)) = queue.next() else {
                    break;
                };
                match self.start(plan, test, run, next_id) {
                    Ok(r) => {
                        progress.started(test);
                        running.insert(next_id, r);
                        next_id += 1;
                    }
                    Err(e) => {
                        let dir = plan.run_dir(test, run);
                        let why = format!("could not start: {e}");
                        let _ = OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(dir.join("output.log"))
                            .and_then(|mut log| writeln!(log, "raft-stress: {why}"));
                        progress.finished(test, Some(&failure_note(plan, test, run, &why, &dir)));
                        let verdict = Verdict::Failed { why, dir };
                        let time = Duration::ZERO;
                        records.push(RunRecord {
                            test,
                            run,
                            time,
                            verdict,
                        });
                    }
                }
            }
            if running.is_empty() {
                break;
            }
            match self.next_event(plan.timeout, &running) {
                None => {
                    let timeout = plan.timeout.expect("a deadline passed");
                    for r in running.values_mut() {
                        if r.killed.is_none() && r.started.elapsed() >= timeout {
                            r.killed = Some(Kill::Timeout);
                            r.group.kill();
                        }
                    }
                }
                Some(Event::Interrupt) if !interrupted => {
                    interrupted = true;
                    progress.note(&format!(
                        "raft-stress: interrupted; killing {} running run(s)",
                        running.len()
                    ));
                    for r in running.values_mut() {
                        r.killed = Some(Kill::Interrupt);
                        r.group.kill();
                    }
                }
                Some(Event::Interrupt) => {}
                Some(Event::Exited { id, status, at }) => {
                    let r = running.remove(&id).expect("a run exits once");
                    let (test, run) = (r.test, r.run);
                    let time = at - r.started;
                    let verdict = finish(r, status, time);
                    match &verdict {
                        Verdict::Passed => progress.finished(test, None),
                        Verdict::Failed { why, dir } => {
                            progress.finished(test, Some(&failure_note(plan, test, run, why, dir)))
                        }
                        Verdict::Cancelled => progress.cancelled(test),
                    }
                    records.push(RunRecord {
                        test,
                        run,
                        time,
                        verdict,
                    });
                }
            }
        }
        // Leave only what holds kept logs: a test directory without failed runs is empty now.
        for test in 0..plan.tests.len() {
            let _ = std::fs::remove_dir(plan.test_dir(test));
        }
        let _ = std::fs::remove_dir(&plan.dir);
        Outcome {
            records,
            interrupted,
            elapsed: started.elapsed(),
        }
    }

    /// The next run to end or interrupt; `None` when the earliest deadline of a run not yet
    /// killed passed first.
    fn next_event(
        &self,
        timeout: Option<Duration>,
        running: &HashMap<u64, Running>,
    ) -> Option<Event> {
        let deadline = timeout.and_then(|t| {
            running
                .values()
                .filter(|r| r.killed.is_none())
                .map(|r| r.started + t)
                .min()
        });
        let Some(deadline) = deadline else {
            return Some(self.inbox.recv().expect("the runner holds a sender"));
        };
        match self
            .inbox
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => unreachable!("the runner holds a sender"),
        }
    }

    fn start(&self, plan: &Plan, test: usize, run: u32, id: u64) -> io::Result<Running> {
        let dir = plan.run_dir(test, run);
        std::fs::create_dir_all(&dir)?;
        let case = &plan.tests[test];
        let args = ["--exact", &case.name, "--nocapture", "--test-threads", "1"];
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("output.log"))?;
        writeln!(
            log,
            "raft-stress: run {run} of {}: {} {} (in {})",
            case.label,
            case.exe.path.display(),
            args.join(" "),
            case.exe.cwd.display()
        )?;
        let mut cmd = Command::new(&case.exe.path);
        cmd.args(args)
            .current_dir(&case.exe.cwd)
            .env("RAFT_LAB_RUN_DIR", &dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            // Its own group, so that one kill reaches the test and every process it spawned,
            // and a Ctrl-C on the terminal reaches only this runner.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                // Should this runner die without cleaning up, its test processes die too (and
                // their nodes with them: the harness sets the same on every node).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let group = Arc::new(Group {
            pgid: child.id() as libc::pid_t,
            reaped: Mutex::new(false),
        });
        watch(child, Arc::clone(&group), id, self.events.clone());
        Ok(Running {
            test,
            run,
            dir,
            log,
            started: Instant::now(),
            group,
            killed: None,
        })
    }
}

/// The verdict on a reaped run; notes it at the end of the run's output and removes the run's
/// directory unless the run failed.
fn finish(mut r: Running, status: io::Result<ExitStatus>, time: Duration) -> Verdict {
    let verdict = match (status, r.killed) {
        // It may have finished on its own just before a kill.
        (Ok(status), _) if status.success() => Verdict::Passed,
        (_, Some(Kill::Interrupt)) => Verdict::Cancelled,
        (_, Some(Kill::Timeout)) => Verdict::Failed {
            why: format!("timed out after {:.0} s, killed", time.as_secs_f64()),
            dir: r.dir.clone(),
        },
        (Ok(status), None) => Verdict::Failed {
            why: status.to_string(),
            dir: r.dir.clone(),
        },
        (Err(e), None) => Verdict::Failed {
            why: format!("cannot wait for it: {e}"),
            dir: r.dir.clone(),
        },
    };
    match &verdict {
        Verdict::Failed { why, .. } => {
            let _ = writeln!(
                r.log,
                "\nraft-stress: FAILED after {:.1} s: {why}",
                time.as_secs_f64()
            );
        }
        Verdict::Passed | Verdict::Cancelled => {
            let _ = std::fs::remove_dir_all(&r.dir);
        }
    }
    verdict
}

/// The line a failed run prints as it happens.
fn failure_note(plan: &Plan, test: usize, run: u32, why: &str, dir: &Path) -> String {
    format!(
        "FAILED {} run {run} ({why}): {}",
        plan.tests[test].label,
        dir.display()
    )
}

/// A run's process group, killable until its leader (the test process) is reaped: after that,
/// the id may name someone else's group.
struct Group {
    pgid: libc::pid_t,
    reaped: Mutex<bool>,
}

impl Group {
    fn kill(&self) {
        let reaped = self.reaped.lock().unwrap_or_else(PoisonError::into_inner);
        if !*reaped {
            kill_group(self.pgid);
        }
    }
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill(2) touches no memory; a negative pid addresses the process group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Waits on its own thread for the run's test process to exit, kills whatever the test left
/// behind in its group, reaps it, and reports.
fn watch(mut child: Child, group: Arc<Group>, id: u64, events: Sender<Event>) {
    std::thread::spawn(move || {
        wait_for_exit(group.pgid);
        let at = Instant::now();
        let status = {
            let mut reaped = group.reaped.lock().unwrap_or_else(PoisonError::into_inner);
            // A node whose death signal did not fire still dies with its run.
            kill_group(group.pgid);
            let status = child.wait();
            *reaped = true;
            status
        };
        let _ = events.send(Event::Exited { id, status, at });
    });
}

/// Blocks until our child `pid` has exited, without reaping it: until it is reaped, its pid
/// (and so its group's id) cannot be reused, so killing the group cannot hit a stranger.
fn wait_for_exit(pid: libc::pid_t) {
    loop {
        // SAFETY: waitid writes only into `info`, which lives across the call.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}
