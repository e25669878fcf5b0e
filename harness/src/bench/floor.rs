//! The machine's floors, measured in the same run as the figures they judge (issue 21: an
//! absolute millisecond target says little from one machine to the next, a ratio to the floor
//! measured beside it does):
//! - fdatasync: append a small record to a file on the data dirs' file system and fdatasync it,
//!   as a node's log writer does for each loop iteration's entries;
//! - fdatasync behind another: the same, begun just after another thread began its own
//!   fdatasync of another file, as a follower's sync lands behind the leader's when the whole
//!   cluster shares one disk (the file system and the device serialise much of the two; on
//!   separate hosts the follower's sync would be alone);
//! - the UDP round trip through netproxy: a stand-in node sends to its face, the proxy delivers
//!   to a second stand-in that echoes, the echo comes back through the proxy. That is the path
//!   of clerk → leader → clerk and of leader → follower → leader: two proxy traversals, four
//!   hops, without the node's own work;
//! - the control round trip: a `GetState` to the leader and its answer on the control channel
//!   (TCP on loopback, nodelay), the path of a `raft-bench` client's `Start` to the leader and
//!   of the applied entry back on the apply stream, with the leader's event loop in it but no
//!   Raft work (rather than an echo thread in the bench's own process, which is not that path).
//!
//! What an operation composes from them assumes the leader's own fdatasync overlaps
//! replication (it sends AppendEntries before its sync completes; issue 21), so a commit waits
//! for the slower of the leader's sync and a follower's round trip plus its sync:
//! - Raft commit = max(fdatasync (leader), RTT through the proxy (leader ↔ follower) +
//!   fdatasync (follower)) = RTT + fdatasync;
//! - `raft-bench`'s commit = TCP RTT (client ↔ leader) + Raft commit;
//! - a KV Put = RTT (clerk ↔ leader through the proxy) + Raft commit;
//! - a KV Get by ReadIndex = RTT (clerk ↔ leader) + RTT (one heartbeat round; it syncs nothing).
//!
//! Each is composed twice: from the floors' p50s and from their p99s. The commit is also
//! composed for a cluster on one shared disk (the follower's fdatasync behind the leader's), to
//! show how much of a figure the shared disk explains; the targets stay on the compositions
//! above.

use super::Percentiles;
use harness::cluster;
use harness::node_client::NodeClient;
use raft_auth::Secret;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The record each fdatasync makes durable: about one small KV entry.
const RECORD_BYTES: usize = 64;

/// Samples of every floor; gathered in parts (before and after a measurement) so that they
/// see the machine load the measurement saw.
#[derive(Default)]
pub struct Samples {
    fsync: Vec<Duration>,
    fsync_behind: Vec<Duration>,
    rtt: Vec<Duration>,
    tcp: Vec<Duration>,
}

impl Samples {
    /// Adds `count` samples of each floor (after a tenth as many unrecorded): fdatasyncs of a
    /// file in `dir`, round trips through a netproxy of its own, and with `leader` its control
    /// round trips.
    pub fn take(
        &mut self,
        dir: &Path,
        count: usize,
        leader: Option<&NodeClient>,
    ) -> io::Result<()> {
        let warmup = count / 10;
        self.fsync.extend(fdatasyncs(dir, warmup, count)?);
        self.fsync_behind
            .extend(fdatasyncs_behind(dir, warmup, count)?);
        self.rtt.extend(round_trips(dir, warmup, count)?);
        if let Some(leader) = leader {
            self.tcp.extend(control_round_trips(leader, warmup, count)?);
        }
        Ok(())
    }

    pub fn floors(self) -> Floors {
        Floors {
            fsync: Percentiles::of(self.fsync),
            fsync_behind: Percentiles::of(self.fsync_behind),
            rtt: Percentiles::of(self.rtt),
            tcp: (!self.tcp.is_empty()).then(|| Percentiles::of(self.tcp)),
        }
    }
}

/// The percentile of the floors a composition is taken at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    P50,
    P99,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            At::P50 => "p50",
            At::P99 => "p99",
        })
    }
}

impl At {
    pub fn of(self, p: &Percentiles) -> Duration {
        match self {
            At::P50 => p.p50,
            At::P99 => p.p99,
        }
    }
}

/// The floors and what commits and the KV's operations compose from them (see the module's
/// documentation).
pub struct Floors {
    pub fsync: Percentiles,
    /// An fdatasync begun just after another process's (threads here) on the same disk.
    pub fsync_behind: Percentiles,
    /// The UDP round trip through netproxy.
    pub rtt: Percentiles,
    /// The control round trip to the leader (TCP on loopback); not measured for the KV, whose
    /// floors do not use it.
    pub tcp: Option<Percentiles>,
}

impl Floors {
    /// A Raft commit with the leader's sync overlapping replication: the slower of the
    /// leader's fdatasync and the AppendEntries round trip to a follower plus its fdatasync.
    pub fn raft_commit(&self, at: At) -> Duration {
        let fsync = at.of(&self.fsync);
        fsync.max(at.of(&self.rtt) + fsync)
    }

    /// A `raft-bench` commit: `Start` over the control channel, the Raft commit, the applied
    /// entry back on the apply stream.
    pub fn commit(&self, at: At) -> Duration {
        let tcp = self
            .tcp
            .as_ref()
            .expect("floors measured with the leader's control channel");
        at.of(tcp) + self.raft_commit(at)
    }

    /// A `raft-bench` commit on a cluster that shares one disk: as [`Floors::commit`], with the
    /// follower's fdatasync behind the leader's. Not a target: it shows what the shared disk
    /// explains.
    pub fn commit_shared_disk(&self, at: At) -> Duration {
        let tcp = self
            .tcp
            .as_ref()
            .expect("floors measured with the leader's control channel");
        let fsync = at.of(&self.fsync);
        at.of(tcp) + fsync.max(at.of(&self.rtt) + at.of(&self.fsync_behind))
    }

    /// A Put: the clerk ↔ leader round trip through the proxy, plus a Raft commit.
    pub fn put(&self, at: At) -> Duration {
        at.of(&self.rtt) + self.raft_commit(at)
    }

    /// A Get by ReadIndex: the clerk ↔ leader round trip, plus one heartbeat round leader ↔
    /// followers (no sync: a heartbeat changes nothing durable).
    pub fn get(&self, at: At) -> Duration {
        at.of(&self.rtt) + at.of(&self.rtt)
    }
}

/// How many times `floor` a figure is. In whole nanoseconds, so that a figure exactly at a
/// target's bound (1.25×) divides to exactly that bound.
pub fn ratio(figure: Duration, floor: Duration) -> f64 {
    figure.as_nanos() as f64 / floor.as_nanos() as f64
}

/// `count` fdatasyncs of a 64-byte append to a fresh file in `dir`, after `warmup` more.
fn fdatasyncs(dir: &Path, warmup: usize, count: usize) -> io::Result<Vec<Duration>> {
    timed_syncs(&dir.join("fsync-floor"), warmup, count, || Ok(()))
}

/// `count` fdatasyncs of a 64-byte append, each begun as soon as a second thread signals that
/// it is starting an fdatasync of its own file, after `warmup` more.
fn fdatasyncs_behind(dir: &Path, warmup: usize, count: usize) -> io::Result<Vec<Duration>> {
    let ahead_path = dir.join("fsync-floor-ahead");
    let mut ahead = append_only(&ahead_path)?;
    let (started, starts) = mpsc::channel::<()>();
    let (done, dones) = mpsc::channel::<()>();
    // The thread ahead: one sync per round, each announced as it begins.
    let leader = thread::spawn(move || -> io::Result<()> {
        let record = [b'.'; RECORD_BYTES];
        while dones.recv().is_ok() {
            ahead.write_all(&record)?;
            if started.send(()).is_err() {
                break;
            }
            ahead.sync_data()?;
        }
        Ok(())
    });
    let stopped = || io::Error::other("the fdatasync floor's thread stopped early");
    let samples = timed_syncs(&dir.join("fsync-floor-behind"), warmup, count, || {
        done.send(()).map_err(|_| stopped())?;
        starts.recv().map_err(|_| stopped())
    });
    drop(done);
    let ahead_result = leader
        .join()
        .map_err(|_| io::Error::other("the fdatasync floor's thread panicked"))?;
    fs::remove_file(&ahead_path)?;
    ahead_result?;
    samples
}

/// `count` timed appends of a 64-byte record to a fresh file at `path`, each made durable with
/// fdatasync, after `warmup` more; `before` runs ahead of each, untimed. The file is removed.
fn timed_syncs(
    path: &Path,
    warmup: usize,
    count: usize,
    mut before: impl FnMut() -> io::Result<()>,
) -> io::Result<Vec<Duration>> {
    let mut file = append_only(path)?;
    let record = [b'.'; RECORD_BYTES];
    let mut samples = Vec::with_capacity(count);
    for n in 0..warmup + count {
        before()?;
        let start = Instant::now();
        file.write_all(&record)?;
        file.sync_data()?;
        if n >= warmup {
            samples.push(start.elapsed());
        }
    }
    drop(file);
    fs::remove_file(path)?;
    Ok(samples)
}

fn append_only(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new().append(true).create_new(true).open(path)
}

/// `count` round trips of a 64-byte datagram through a netproxy, after `warmup` more.
fn round_trips(dir: &Path, warmup: usize, count: usize) -> io::Result<Vec<Duration>> {
    let (sender, echo) = (bind()?, bind()?);
    let proxy = EchoProxy::start([sender.local_addr()?, echo.local_addr()?], dir)?;
    // The echo ends once the round trips have been quiet for a second.
    echo.set_read_timeout(Some(Duration::from_secs(1)))?;
    thread::spawn(move || {
        let mut buf = [0; 2048];
        while let Ok((len, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..len], from);
        }
    });
    sender.set_read_timeout(Some(Duration::from_secs(1)))?;
    let (mut payload, mut buf) = ([0u8; RECORD_BYTES], [0u8; 2048]);
    let mut samples = Vec::with_capacity(count);
    for seq in 0..(warmup + count) as u64 {
        payload[..8].copy_from_slice(&seq.to_le_bytes());
        let start = Instant::now();
        sender.send_to(&payload, proxy.faces[1])?;
        // The proxy is reliable and idle: a lost datagram is a broken floor, not a sample.
        loop {
            let (len, _) = sender.recv_from(&mut buf)?;
            if len >= 8 && buf[..8] == payload[..8] {
                break;
            }
        }
        if seq >= warmup as u64 {
            samples.push(start.elapsed());
        }
    }
    Ok(samples)
}

/// `count` `GetState` round trips to `leader` on its control channel, after `warmup` more.
fn control_round_trips(
    leader: &NodeClient,
    warmup: usize,
    count: usize,
) -> io::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(count);
    for n in 0..warmup + count {
        let start = Instant::now();
        leader.get_state()?;
        if n >= warmup {
            samples.push(start.elapsed());
        }
    }
    Ok(samples)
}

fn bind() -> io::Result<UdpSocket> {
    UdpSocket::bind("127.0.0.1:0")
}

/// A netproxy between two stand-in nodes, killed when dropped; its faces are the ports it
/// bound, read from its `ready` line.
struct EchoProxy {
    child: Child,
    faces: Vec<SocketAddr>,
}

impl EchoProxy {
    /// netproxy needs a secret for its control port (it forwards datagrams without one); it
    /// gets one of its own in `dir`.
    fn start(nodes: [SocketAddr; 2], dir: &Path) -> io::Result<EchoProxy> {
        let secret_file = dir.join("floor-proxy-secret");
        Secret::create_file(&secret_file)?;
        let mut child = Command::new(cluster::binary("netproxy")?)
            .args(["run", "--nodes", &format!("{},{}", nodes[0], nodes[1])])
            .arg("--secret-file")
            .arg(&secret_file)
            .args(["--faces", "127.0.0.1:0,127.0.0.1:0"])
            .args(["--control", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let faces = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("faces="))
            .map(|faces| faces.split(',').map(str::parse).collect());
        match faces {
            Some(Ok(faces)) => Ok(EchoProxy { child, faces }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(io::Error::other(format!(
                    "netproxy: bad ready line {line:?}"
                )))
            }
        }
    }
}

impl Drop for EchoProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floors() -> Floors {
        let us = Duration::from_micros;
        Floors {
            fsync: Percentiles::of(vec![us(100), us(150), us(900)]),
            fsync_behind: Percentiles::of(vec![us(150), us(200), us(1000)]),
            rtt: Percentiles::of(vec![us(40), us(50), us(500)]),
            tcp: Some(Percentiles::of(vec![us(20), us(30), us(300)])),
        }
    }

    #[test]
    fn floors_compose_the_overlapped_commit_from_the_medians() {
        let us = Duration::from_micros;
        let floors = floors();
        assert_eq!(floors.raft_commit(At::P50), us(50 + 150));
        assert_eq!(floors.commit(At::P50), us(30 + 50 + 150));
        assert_eq!(floors.commit_shared_disk(At::P50), us(30 + 50 + 200));
        assert_eq!(floors.put(At::P50), us(50 + 50 + 150));
        assert_eq!(floors.get(At::P50), us(50 + 50));
    }

    #[test]
    fn floors_compose_the_same_way_from_the_p99s() {
        let us = Duration::from_micros;
        let floors = floors();
        assert_eq!(floors.raft_commit(At::P99), us(500 + 900));
        assert_eq!(floors.commit(At::P99), us(300 + 500 + 900));
        assert_eq!(floors.put(At::P99), us(500 + 500 + 900));
        assert_eq!(floors.get(At::P99), us(500 + 500));
    }

    #[test]
    fn the_leaders_sync_alone_never_sets_the_commit_floor() {
        // The follower's path includes an fdatasync as long as the leader's, so the max never
        // picks the leader's sync alone: the composition is RTT + fdatasync whatever the sizes.
        let us = Duration::from_micros;
        let floors = Floors {
            rtt: Percentiles::of(vec![us(1)]),
            ..floors()
        };
        assert_eq!(floors.raft_commit(At::P50), us(1 + 150));
    }

    #[test]
    fn ratio_is_the_figure_over_the_floor() {
        let us = Duration::from_micros;
        assert_eq!(ratio(us(500), us(400)), 1.25);
        assert_eq!(ratio(us(200), us(400)), 0.5);
    }
}
