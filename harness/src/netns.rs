//! Separate hosts on one machine: each node in a Linux network namespace of its own, with its
//! own address on a bridge, made and removed with iproute2's `ip`.
//!
//! ```text
//!  host: bridge rlab{S}br 10.77.S.1 ─┬─ veth rlab{S}v0 ══ rlab{S}p0 10.77.S.10  (netns rlab{S}-n0)
//!                                    └─ veth rlab{S}v1 ══ rlab{S}p1 10.77.S.11  (netns rlab{S}-n1) …
//! ```
//! The host keeps the bridge's address, so netproxy (on the host) is reachable from every
//! namespace there, and the nodes' addresses are reachable from the host.
//!
//! A *set* `S` is one cluster's namespaces, bridge and subnet (10.77.S.0/24 unless told
//! otherwise): set 0 is `just cluster --netns`'s, tests take one from [`TEST_SETS`]. Every name starts with `rlab{S}`, so what a
//! crashed owner left can be found by name. A set is owned while its lock file is flocked; whoever
//! takes the lock removes the set's leftovers first, and a [`Netns`] removes everything it made
//! when it drops.

use crate::ports;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::Command;

/// The sets tests take, so that they never touch `just cluster --netns`'s set 0.
pub const TEST_SETS: RangeInclusive<u8> = 100..=163;

/// Why namespaces cannot be made here, if they cannot: not root, no `ip`, or `ip netns add`
/// fails (a container without the privilege, say). It makes and removes one to find out.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root (run it as root, e.g. with sudo)".into());
    }
    let probe = format!("rlabprobe{}", std::process::id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(out) if out.status.success() => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Ok(out) => Some(format!(
            "cannot make a network namespace: ip netns add: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!(
            "cannot run 'ip' ({e}): install iproute2 for network namespaces"
        )),
    }
}

/// A set's namespaces, bridge and veth pairs, removed when this drops.
#[derive(Debug)]
pub struct Netns {
    set: u8,
    /// The first three octets of the set's /24.
    subnet: [u8; 3],
    _lock: File,
}

/// Set `set`'s subnet unless told otherwise: 10.77.`set`.0/24.
pub fn default_subnet(set: u8) -> [u8; 3] {
    [10, 77, set]
}

impl Netns {
    /// Makes set `set` on `subnet` (the first three octets of a /24) with a namespace per node,
    /// after removing what an earlier owner left. Fails if another process owns the set.
    pub fn create(set: u8, subnet: [u8; 3], nodes: usize) -> io::Result<Netns> {
        let lock = try_lock(set)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "network namespace set {set} (rlab{set}-*) is in use by another running \
                     cluster"
                ),
            )
        })?;
        Netns::build(set, subnet, nodes, lock)
    }

    /// Makes the first free set of [`TEST_SETS`].
    pub fn create_any(nodes: usize) -> io::Result<Netns> {
        for set in TEST_SETS {
            if let Some(lock) = try_lock(set)? {
                return Netns::build(set, default_subnet(set), nodes, lock);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("every network namespace set {TEST_SETS:?} is in use"),
        ))
    }

    fn build(set: u8, subnet: [u8; 3], nodes: usize, lock: File) -> io::Result<Netns> {
        remove(set);
        // From here on a failure drops `netns`, which removes what was made so far.
        let netns = Netns {
            set,
            subnet,
            _lock: lock,
        };
        let bridge = netns.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", netns.bridge_ip()),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..nodes {
            let name = netns.name(i);
            let (host_end, inner_end) = (format!("rlab{set}v{i}"), format!("rlab{set}p{i}"));
            ip(&["netns", "add", &name])?;
            ip(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", &inner_end,
            ])?;
            ip(&["link", "set", &inner_end, "netns", &name])?;
            ip(&["link", "set", &host_end, "master", &bridge, "up"])?;
            let addr = format!("{}/24", netns.node_ip(i));
            ip(&["-n", &name, "addr", "add", &addr, "dev", &inner_end])?;
            ip(&["-n", &name, "link", "set", &inner_end, "up"])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
        }
        Ok(netns)
    }

    pub fn set(&self) -> u8 {
        self.set
    }

    /// The host's address on the bridge: where the namespaces reach the host (netproxy).
    pub fn bridge_ip(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// Node `i`'s address, in its namespace.
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 10 + i as u8)
    }

    /// Node `i`'s namespace.
    pub fn name(&self, i: usize) -> String {
        format!("rlab{}-n{i}", self.set)
    }

    fn bridge(&self) -> String {
        format!("rlab{}br", self.set)
    }

    /// A command that runs `program` inside node `i`'s namespace (`ip netns exec` execs it, so
    /// the child's pid is the program's).
    pub fn exec(&self, i: usize, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name(i)]).arg(program);
        cmd
    }

    /// Removes everything of this set now (what [`Drop`] does), keeping the set owned.
    pub fn clear(&self) {
        remove(self.set);
    }

    /// What exists of this set now, by name: its namespaces, bridge and veths.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = namespaces(self.set);
        found.extend(links(self.set));
        found
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove(self.set);
    }
}

/// Removes set `set`'s namespaces, bridge and veth pairs, whatever is left of them. The host's
/// ends of the veth pairs are deleted by name, which takes their namespace's ends along: a
/// deleted namespace lingers unnamed, interfaces and all, while anything still refers to it
/// (a closed TCP connection finishing, say).
fn remove(set: u8) {
    for name in namespaces(set) {
        let _ = ip(&["netns", "del", &name]);
    }
    for link in links(set) {
        let _ = ip(&["link", "del", &link]);
    }
}

/// Whether `name` is `prefix` followed by a node number.
fn numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// The namespaces of set `set` that exist: `rlab{set}-n<i>`.
fn namespaces(set: u8) -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    let prefix = format!("rlab{set}-n");
    // Lines read `NAME` or `NAME (id: N)`.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| numbered(name, &prefix))
        .map(str::to_string)
        .collect()
}

/// The host's links of set `set` that exist: its bridge `rlab{set}br` and veth ends
/// `rlab{set}v<i>`.
fn links(set: u8) -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() else {
        return Vec::new();
    };
    let (bridge, veth) = (format!("rlab{set}br"), format!("rlab{set}v"));
    // Lines read `13: NAME@PEER: <FLAGS> ...` or `13: NAME: <FLAGS> ...`.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name))
        .filter(|name| *name == bridge || numbered(name, &veth))
        .map(str::to_string)
        .collect()
}

/// Runs `ip ARGS`; its stderr in the error if it fails.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn try_lock(set: u8) -> io::Result<Option<File>> {
    let dir = std::env::temp_dir().join("raft-lab-netns");
    std::fs::create_dir_all(&dir)?;
    ports::try_lock(dir.join(format!("{set}.lock")))
}
