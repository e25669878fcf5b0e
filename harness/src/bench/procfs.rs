//! What the kernel counts for us: CPU time of the cluster's processes and of this one, the UDP
//! datagrams dropped at their sockets for want of receive-buffer space, and a process's memory.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::time::{Duration, Instant};

/// One process of the cluster.
#[derive(Clone, Debug)]
pub struct Process {
    /// `proxy` or `n<id>`.
    pub name: String,
    pub pid: u32,
}

/// The cluster's processes: this process's children that run netproxy or raft-node, the proxy
/// first, then the nodes by id. Found through /proc because `Cluster` keeps its `Child` handles
/// to itself.
pub fn cluster_processes() -> io::Result<Vec<Process>> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A process may exit between the listing and the read; it is not ours to count then.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat_fields(&stat).and_then(|f| f.get(1)?.parse::<u32>().ok()) != Some(me) {
            continue;
        }
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if let Some(name) = role(&cmdline) {
            found.push(Process { name, pid });
        }
    }
    found.sort_by_key(|p| (p.name != "proxy", p.name.clone()));
    Ok(found)
}

/// `proxy` for a netproxy daemon, `n<id>` for a raft-node, from a NUL-separated command line.
fn role(cmdline: &[u8]) -> Option<String> {
    let args: Vec<&str> = cmdline
        .split(|&b| b == 0)
        .map(|a| std::str::from_utf8(a).unwrap_or(""))
        .collect();
    let program = args.first()?.rsplit('/').next()?;
    match program {
        "netproxy" => Some("proxy".to_string()),
        "raft-node" => {
            let id = args.iter().position(|&a| a == "--id")?;
            Some(format!("n{}", args.get(id + 1)?))
        }
        _ => None,
    }
}

/// The fields of /proc/<pid>/stat after the command name, which is in parentheses and may
/// itself hold spaces: `[state, ppid, pgrp, ...]` (field 3 of proc(5) is at position 0).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// User + system CPU time `pid` has used so far.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: {stat}"),
        )
    };
    let fields = stat_fields(&stat).ok_or_else(bad)?;
    // utime and stime are fields 14 and 15 of proc(5), in clock ticks.
    let ticks = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let total = ticks(14).zip(ticks(15)).ok_or_else(bad)?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(Duration::from_secs_f64(
        (total.0 + total.1) as f64 / per_second,
    ))
}

/// User + system CPU time of this process, all threads: the bench's own client work.
pub fn own_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The system's load averages over 1, 5 and 15 minutes (/proc/loadavg): how busy the machine
/// the figures come from was.
pub fn load_average() -> io::Result<String> {
    let line = fs::read_to_string("/proc/loadavg")?;
    Ok(line
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" "))
}

/// Resident memory of `pid` now and at its peak (`VmRSS`, `VmHWM` of /proc/<pid>/status), in
/// bytes: the pages it really holds, whatever it has mapped.
pub fn rss(pid: u32) -> io::Result<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .map(|n| n * 1024)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("/proc/{pid}/status: no {key}"),
                )
            })
    };
    Ok((kib("VmRSS:")?, kib("VmHWM:")?))
}

/// Datagrams the kernel dropped at `pid`'s UDP sockets because their receive buffer was full:
/// the `drops` column of /proc/net/udp, summed over the sockets among the process's open files.
/// Netproxy cannot count these: they never reach it, or never reach the node it sent them to.
pub fn udp_drops(pid: u32) -> io::Result<u64> {
    let inodes = socket_inodes(pid)?;
    let table = fs::read_to_string("/proc/net/udp")?;
    // Columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops.
    let drops = table.lines().skip(1).filter_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let inode = cols.get(9)?.parse::<u64>().ok()?;
        inodes
            .contains(&inode)
            .then(|| cols.get(12)?.parse::<u64>().ok())?
    });
    Ok(drops.sum())
}

/// The inodes of the sockets `pid` has open (its fds that link to `socket:[inode]`).
fn socket_inodes(pid: u32) -> io::Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = fs::read_link(fd?.path()) else {
            continue;
        };
        let inode = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok());
        inodes.extend(inode);
    }
    Ok(inodes)
}

/// What the kernel counted for one process so far.
#[derive(Clone, Debug)]
pub struct Counters {
    /// `proxy`, `n<id>`, or `bench` for this process.
    pub name: String,
    pub cpu: Duration,
    pub udp_drops: u64,
}

/// The counters of the cluster's processes and of this one (last, as `bench`) at one moment.
pub struct Sample {
    at: Instant,
    counters: Vec<Counters>,
}

impl Sample {
    pub fn take(processes: &[Process]) -> io::Result<Sample> {
        let mut counters = Vec::with_capacity(processes.len() + 1);
        for p in processes {
            counters.push(Counters {
                name: p.name.clone(),
                cpu: cpu_time(p.pid)?,
                udp_drops: udp_drops(p.pid)?,
            });
        }
        counters.push(Counters {
            name: "bench".to_string(),
            cpu: own_cpu_time(),
            udp_drops: 0,
        });
        Ok(Sample {
            at: Instant::now(),
            counters,
        })
    }

    /// What each process used or suffered between `earlier` and this sample.
    pub fn since(&self, earlier: &Sample) -> Usage {
        let per_process = self
            .counters
            .iter()
            .zip(&earlier.counters)
            .map(|(now, then)| Counters {
                name: now.name.clone(),
                cpu: now.cpu.saturating_sub(then.cpu),
                udp_drops: now.udp_drops.saturating_sub(then.udp_drops),
            })
            .collect();
        Usage {
            wall: self.at - earlier.at,
            per_process,
        }
    }
}

/// The counters' growth over a stretch of wall-clock time.
#[derive(Clone, Debug)]
pub struct Usage {
    pub wall: Duration,
    /// The proxy, the nodes, then `bench`.
    pub per_process: Vec<Counters>,
}

impl Usage {
    /// The cluster's processes: everything but the bench.
    fn cluster(&self) -> impl Iterator<Item = &Counters> {
        self.per_process.iter().filter(|c| c.name != "bench")
    }

    pub fn cluster_cpu(&self) -> Duration {
        self.cluster().map(|c| c.cpu).sum()
    }

    pub fn cluster_udp_drops(&self) -> u64 {
        self.cluster().map(|c| c.udp_drops).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_the_command_line() {
        assert_eq!(
            role(b"/x/target/release/netproxy\0run\0--nodes\0a").as_deref(),
            Some("proxy")
        );
        assert_eq!(
            role(b"/x/raft-node\0run\0--id\x002\0--listen\0b").as_deref(),
            Some("n2")
        );
        assert_eq!(role(b"/bin/sh\0-c\0raft-node"), None);
    }

    #[test]
    fn stat_fields_survive_spaces_in_the_name() {
        let stat = "42 (a) b) S 7 42 42 0 -1 0 0 0 0 0 12 34 0 0";
        let fields = stat_fields(stat).unwrap();
        assert_eq!(fields[0], "S");
        assert_eq!(fields[1], "7");
        assert_eq!(fields[14 - 3], "12");
    }

    #[test]
    fn counters_of_this_process() {
        let _socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = std::process::id();
        assert!(cpu_time(me).is_ok());
        assert!(!socket_inodes(me).unwrap().is_empty());
        assert_eq!(udp_drops(me).unwrap(), 0);
        let (now, peak) = rss(me).unwrap();
        assert!(0 < now && now <= peak);
        assert_eq!(load_average().unwrap().split(' ').count(), 3);
    }
}
