//! A netproxy control line as the daemon receives it: parsing must reject every malformed line
//! with a message, never panic; a parsed command must print as text that parses back to it (the
//! CLI sends that text); and a command that passes `check` for a proxy's nodes and clerks must
//! be safe to carry out: its targets name only that proxy's links, and its fault rules draw
//! without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netproxy::command::{Change, Target};
use netproxy::endpoint::is_link;
use netproxy::faults::Faults;
use netproxy::{Command, Endpoints};
use rand::rngs::SmallRng;
use rand::SeedableRng;

fuzz_target!(|bytes: &[u8]| {
    // The daemon answers a line that is not UTF-8 before parsing it.
    let Ok(line) = std::str::from_utf8(bytes) else {
        return;
    };
    let cmd = match line.parse::<Command>() {
        Ok(cmd) => cmd,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let text = cmd.to_string();
    assert_eq!(
        text.parse::<Command>(),
        Ok(cmd.clone()),
        "{line:?} printed as {text:?}"
    );
    for (nodes, clerks) in [(1, 0), (3, 0), (5, 0), (3, 2), (5, 16)] {
        let endpoints = Endpoints::new(nodes, clerks);
        if cmd.check(endpoints).is_ok() {
            carry_out(&cmd, endpoints);
        }
    }
});

/// What the daemon's network does with a checked change, minus the sockets.
fn carry_out(cmd: &Command, endpoints: Endpoints) {
    let Command::Change(change) = cmd else {
        return;
    };
    let mut faults = Faults::default();
    let target = match *change {
        Change::Drop { p, target } => {
            faults.drop = p;
            target
        }
        Change::Delay { delay, target } => {
            faults.delay = delay;
            target
        }
        Change::Duplicate { p, target } => {
            faults.duplicate = p;
            target
        }
        Change::Reorder { p, delay, target } => {
            faults.set_reorder(p, delay);
            target
        }
        _ => Target::All,
    };
    for (from, to) in target.links(endpoints) {
        assert!(
            endpoints.contains(from) && endpoints.contains(to) && is_link(from, to),
            "{cmd}: link {from}->{to} of {endpoints:?}"
        );
    }
    let mut rng = SmallRng::seed_from_u64(0);
    for _ in 0..4 {
        faults.drops(&mut rng);
        faults.duplicates(&mut rng);
        let delay = faults.draw_delay(&mut rng);
        let most = faults.delay.max() + faults.reorder_delay.max();
        assert!(delay <= most, "{cmd}: drew {delay:?}, at most {most:?}");
    }
}
