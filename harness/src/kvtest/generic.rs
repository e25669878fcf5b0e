//! test_test.go's GenericTest and GenericTestSpeed, and the append checks, shared by the lab 3A
//! and 3B test files. Same steps and constants as the lab (see `shared/lab3-tests.md` §3–4).

use super::{election_timeout, KvTester};
use crate::linearizability::{self, HistoryRecorder, Verdict};
use crate::timing;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// config.go linearizabilityCheckTimeout is 1 s; a longer budget is stricter (an *Unknown*
/// passes, as in the lab, but says so).
const LINEARIZABILITY_BUDGET: Duration = Duration::from_secs(10);

/// The lab's GenericTest parameters.
#[derive(Clone, Copy, Debug)]
pub struct Generic {
    pub part: &'static str,
    pub nclients: usize,
    pub nservers: usize,
    pub unreliable: bool,
    pub crash: bool,
    pub partitions: bool,
    /// −1: never snapshot.
    pub maxraftstate: i64,
    pub randomkeys: bool,
}

impl Generic {
    /// The lab's title for these parameters.
    pub fn title(&self) -> String {
        let mut title = "Test: ".to_string();
        if self.unreliable {
            title += "unreliable net, ";
        }
        if self.crash {
            title += "restarts, ";
        }
        if self.partitions {
            title += "partitions, ";
        }
        if self.maxraftstate != -1 {
            title += "snapshots, ";
        }
        if self.randomkeys {
            title += "random keys, ";
        }
        title += if self.nclients > 1 {
            "many clients"
        } else {
            "one client"
        };
        format!("{title} ({})", self.part)
    }
}

/// GenericTest: three iterations of clients appending/putting/getting for 5 s under the chosen
/// faults, each followed by its checks; then the whole history checked for linearizability.
pub fn generic_test(p: Generic) {
    let cfg = KvTester::new(p.nservers, p.unreliable, p.maxraftstate);
    cfg.begin(&p.title());
    let history = HistoryRecorder::new();
    let mut ck = cfg.make_client(&cfg.all());

    for _iteration in 0..3 {
        let done_clients = AtomicBool::new(false);
        let done_partitioner = AtomicBool::new(false);
        let counts: Vec<u64> = std::thread::scope(|s| {
            let _cancel = cfg.cancel_on_panic();
            let clients: Vec<_> = (0..p.nclients)
                .map(|cli| {
                    let (cfg, history, done) = (&cfg, &history, &done_clients);
                    s.spawn(move || client(cfg, history, done, cli, p))
                })
                .collect();
            let partitioner = p.partitions.then(|| {
                // Allow the clients to perform some operations without interruption.
                sleep(timing::ms(1000));
                let (cfg, done) = (&cfg, &done_partitioner);
                s.spawn(move || partitioner(cfg, done))
            });
            sleep(timing::ms(5000));
            done_clients.store(true, Ordering::SeqCst);
            done_partitioner.store(true, Ordering::SeqCst);
            if let Some(partitioner) = partitioner {
                partitioner.join().expect("partitioner");
                cfg.connect_all();
                // A clerk waiting on a minority leader needs a new term to be answered.
                sleep(election_timeout());
            }
            if p.crash {
                for i in 0..p.nservers {
                    cfg.shutdown_server(i);
                }
                // Wait for a while for servers to shut down, since shutdown isn't a real crash
                // and isn't instantaneous.
                sleep(election_timeout());
                for i in 0..p.nservers {
                    cfg.start_server(i);
                }
                cfg.connect_all();
            }
            clients
                .into_iter()
                .map(|c| c.join().unwrap_or_else(|_| panic!("failure")))
                .collect()
        });

        for (i, &j) in counts.iter().enumerate() {
            let key = i.to_string();
            let v = cfg.get(&mut ck, &key, Some((&history, 0)));
            if !p.randomkeys {
                check_clnt_appends(i, &v, j);
            }
        }

        if let Some(max) = cfg.maxraftstate() {
            // Check maximum after the servers have processed all client requests and had time
            // to checkpoint.
            let size = cfg.log_size();
            if size > 8 * max {
                panic!("logs were not trimmed ({size} > 8*{max})");
            }
        } else {
            // Check that snapshots are not used.
            let size = cfg.snapshot_size();
            if size > 0 {
                panic!("snapshot too large ({size}), should not be used when maxraftstate = -1");
            }
        }
    }

    check_linearizable(&cfg, &history);
    cfg.end();
}

/// One client of GenericTest; returns how many appends/puts it made.
fn client(
    cfg: &KvTester,
    history: &HistoryRecorder,
    done: &AtomicBool,
    cli: usize,
    p: Generic,
) -> u64 {
    let mut rng = rand::thread_rng();
    let mut ck = cfg.make_client(&cfg.all());
    let log = Some((history, cli as u64));
    let mut j = 0u64;
    let mut last = String::new();
    if !p.randomkeys {
        cfg.put(&mut ck, &cli.to_string(), &last, log);
    }
    while !done.load(Ordering::SeqCst) {
        let key = if p.randomkeys {
            rng.gen_range(0..p.nclients).to_string()
        } else {
            cli.to_string()
        };
        let nv = format!("x {cli} {j} y");
        if rng.gen_range(0..1000) < 500 {
            cfg.append(&mut ck, &key, &nv, log);
            if !p.randomkeys {
                last += &nv;
            }
            j += 1;
        } else if p.randomkeys && rng.gen_range(0..1000) < 100 {
            // We only do Put()s if keys are random, since otherwise the append checks break.
            cfg.put(&mut ck, &key, &nv, log);
            j += 1;
        } else {
            let v = cfg.get(&mut ck, &key, log);
            // The following check only makes sense when we're not using random keys.
            if !p.randomkeys && v != last {
                panic!("get wrong value, key {key}, wanted:\n{last}\n, got\n{v}\n");
            }
        }
    }
    j
}

/// The partitioner: every server to group 0 or 1 by a coin flip, then a pause of an election
/// timeout and up to 199 ms, until told to stop. Clerks keep their links to every server.
fn partitioner(cfg: &KvTester, done: &AtomicBool) {
    let mut rng = rand::thread_rng();
    while !done.load(Ordering::SeqCst) {
        let mut groups: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for i in 0..cfg.n() {
            groups[rng.gen_range(0..2)].push(i);
        }
        cfg.partition(&groups[0], &groups[1]);
        sleep(election_timeout() + timing::ms(rng.gen_range(0..200)));
    }
}

/// Porcupine over the whole history: an illegal one fails with the lab's message and its
/// visualization; an unknown one passes, saying so, as the lab does. The history is written as
/// JSON lines and HTML in the run's directory unless it is linearizable and the directory is to
/// be removed: as porcupine is in the lab, since an Append-heavy key's Gets return its whole
/// value (TestBasic3A, one client appending for three times five seconds: a 437 MB history).
pub fn check_linearizable(cfg: &KvTester, history: &HistoryRecorder) {
    let ops = history.history();
    let report = linearizability::check(&ops, LINEARIZABILITY_BUDGET);
    let drawn = (report.verdict != Verdict::Ok || cfg.keeps_run_dir())
        .then(|| linearizability::save_history(&cfg.run_dir(), &ops, &report));
    match report.verdict {
        Verdict::Ok => {}
        Verdict::Unknown => println!(
            "info: linearizability check timed out after {:?}, assuming history is ok",
            report.budget
        ),
        Verdict::Illegal => {
            if let Some(html) = drawn {
                println!("info: wrote history visualization to {}", html.display());
            }
            panic!("history is not linearizable\n{}", report.explain(&ops));
        }
    }
}

/// GenericTestSpeed: 1000 sequential appends from one clerk must take under 33.3 ms each (at
/// least 3 per 100 ms heartbeat interval).
pub fn generic_test_speed(part: &str, maxraftstate: i64) {
    const NUM_OPS: u64 = 1000;
    let cfg = KvTester::new(3, false, maxraftstate);
    cfg.begin(&format!("Test: ops complete fast enough ({part})"));
    let mut ck = cfg.make_client(&cfg.all());

    // Wait until first op completes, so we know a leader is elected and KV servers are ready
    // to process client requests.
    KvTester::raw(&mut ck).get("x");

    let start = Instant::now();
    for i in 0..NUM_OPS {
        KvTester::raw(&mut ck).append("x", &format!("x 0 {i} y"));
    }
    let dur = start.elapsed();

    let v = KvTester::raw(&mut ck).get("x");
    check_clnt_appends(0, &v, NUM_OPS);

    // Heartbeat interval should be ~100 ms; require at least 3 ops per.
    let bound = timing::ms(100) / 3;
    let per_op = dur / NUM_OPS as u32;
    if per_op > bound {
        panic!("Operations completed too slowly {per_op:?}/op > {bound:?}/op");
    }
    cfg.end();
}

/// test_test.go checkClntAppends: client `clnt`'s appends 0..count each appear in `v` exactly
/// once, in order.
pub fn check_clnt_appends(clnt: usize, v: &str, count: u64) {
    let mut lastoff = None;
    for j in 0..count {
        let wanted = format!("x {clnt} {j} y");
        let Some(off) = v.find(&wanted) else {
            panic!("{clnt} missing element {wanted} in Append result {v}");
        };
        if v.rfind(&wanted) != Some(off) {
            panic!("duplicate element {wanted} in Append result");
        }
        if lastoff.is_some_and(|last| off <= last) {
            panic!("wrong order for element {wanted} in Append result");
        }
        lastoff = Some(off);
    }
}

/// test_test.go checkConcurrentAppends: every client's appends, each once and in order.
pub fn check_concurrent_appends(v: &str, counts: &[u64]) {
    for (i, &count) in counts.iter().enumerate() {
        check_clnt_appends(i, v, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_the_labs() {
        let p = Generic {
            part: "3A",
            nclients: 5,
            nservers: 5,
            unreliable: true,
            crash: true,
            partitions: true,
            maxraftstate: -1,
            randomkeys: false,
        };
        assert_eq!(
            p.title(),
            "Test: unreliable net, restarts, partitions, many clients (3A)"
        );
        let one = Generic {
            nclients: 1,
            unreliable: false,
            crash: false,
            partitions: false,
            maxraftstate: 1000,
            randomkeys: true,
            part: "3B",
            ..p
        };
        assert_eq!(one.title(), "Test: snapshots, random keys, one client (3B)");
    }

    #[test]
    fn append_checks_catch_missing_duplicate_and_reordered_elements() {
        check_clnt_appends(1, "x 1 0 yx 2 0 yx 1 1 y", 2);
        let fails = |v: &'static str| std::panic::catch_unwind(|| check_clnt_appends(1, v, 2));
        assert!(fails("x 1 0 y").is_err(), "missing");
        assert!(fails("x 1 0 yx 1 1 yx 1 0 y").is_err(), "duplicate");
        assert!(fails("x 1 1 yx 1 0 y").is_err(), "order");
    }
}
