//! netproxy-bench: what the proxy costs. It starts the `netproxy` binary found next to its own
//! executable, with two stand-in nodes, and measures
//! - the round trip node 0 → node 1 → node 0 through the proxy, beside a direct socket-to-socket
//!   round trip measured in the same run, interleaved so both see the same machine load;
//! - the highest paced rate the proxy forwards without losing a datagram.

use clap::Parser;
use netproxy::{Client, LinkCounters};
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "netproxy-bench")]
struct Args {
    /// Round trips measured on each path, after a warm-up of a tenth as many (at least 1000)
    #[arg(long, default_value_t = 20_000)]
    round_trips: usize,
    /// Payload bytes of each datagram
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Offered rates to try, in datagrams per second, in increasing order
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "25000,50000,100000,150000,200000,250000,300000,400000"
    )]
    rates: Vec<u64>,
    /// How long each rate is offered in one trial, in milliseconds
    #[arg(long, default_value_t = 1000)]
    millis: u64,
    /// Trials per rate: other processes on the machine can stall the proxy in any one of them
    #[arg(long, default_value_t = 3)]
    trials: usize,
}

/// Round trips are measured in blocks of this many, alternating between the two paths.
const BLOCK: usize = 1000;
/// The paced sender sleeps this long between bursts, each burst sending what has come due:
/// at 100k datagrams/s a burst of about 20-30, far below any socket buffer.
const PACING: Duration = Duration::from_micros(200);

fn main() -> io::Result<()> {
    let args = Args::parse();
    let binary = std::env::current_exe()?.with_file_name("netproxy");
    if !binary.is_file() {
        return Err(io::Error::other(format!(
            "{} not found: build it first (cargo build --release -p netproxy --bins)",
            binary.display()
        )));
    }
    println!(
        "netproxy-bench: {}, {}-byte datagrams\n",
        binary.display(),
        args.size
    );
    latency(&binary, &args)?;
    throughput(&binary, &args)
}

fn latency(binary: &std::path::Path, args: &Args) -> io::Result<()> {
    let (node0, node1) = (bind()?, bind()?);
    let proxy = Proxy::start(binary, &[node0.local_addr()?, node1.local_addr()?])?;
    echo(node1);
    let (direct, peer) = (bind()?, bind()?);
    let peer_addr = peer.local_addr()?;
    echo(peer);
    for socket in [&node0, &direct] {
        socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    }

    let mut payload = vec![0; args.size.max(8)];
    let mut buf = vec![0; 65536];
    let (mut via_direct, mut via_proxy) = (Vec::new(), Vec::new());
    let warmup = (args.round_trips / 10).max(BLOCK);
    let mut lost = 0;
    let mut seq = 0u64;
    for block in 0..(warmup + args.round_trips).div_ceil(BLOCK) {
        let keep = block * BLOCK >= warmup;
        for (socket, to, times) in [
            (&direct, peer_addr, &mut via_direct),
            (&node0, proxy.faces[1], &mut via_proxy),
        ] {
            for _ in 0..BLOCK {
                seq += 1;
                payload[..8].copy_from_slice(&seq.to_le_bytes());
                let start = Instant::now();
                socket.send_to(&payload, to)?;
                // A reply to an earlier, timed-out round trip is not this one's.
                loop {
                    match socket.recv_from(&mut buf) {
                        Ok((len, _)) if len >= 8 && buf[..8] == seq.to_le_bytes() => {
                            if keep {
                                times.push(start.elapsed());
                            }
                            break;
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            lost += 1;
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    let (direct, proxied) = (Percentiles::of(via_direct), Percentiles::of(via_proxy));
    println!(
        "round trip, {} on each path, interleaved   p50      p90      p99",
        args.round_trips
    );
    println!("  direct socket to socket        {direct}");
    println!("  through netproxy               {proxied}");
    println!(
        "  added by netproxy              {:>6.1}µs {:>6.1}µs {:>6.1}µs",
        proxied.p50 - direct.p50,
        proxied.p90 - direct.p90,
        proxied.p99 - direct.p99
    );
    if lost > 0 {
        println!("  ({lost} round trips lost and not counted)");
    }
    println!();
    Ok(())
}

fn throughput(binary: &std::path::Path, args: &Args) -> io::Result<()> {
    let (sender, receiver) = (bind()?, bind()?);
    let proxy = Proxy::start(binary, &[sender.local_addr()?, receiver.local_addr()?])?;
    let client = Client::new(proxy.control, proxy.secret.clone());
    let arrivals = Arc::new(AtomicU64::new(0));
    count_arrivals(receiver, Arc::clone(&arrivals));

    println!(
        "forwarding 0->1, {} trials of {} ms per rate",
        args.trials, args.millis
    );
    println!("  offered/s     sent/s   lost: into proxy  out of proxy  at receiver   loss-free  proxy CPU/datagram");
    let payload = vec![0; args.size];
    let (mut every_trial, mut some_trial) = (None, None);
    for &rate in &args.rates {
        let mut total = Trial::default();
        let mut loss_free = 0;
        for _ in 0..args.trials {
            client.reset_stats().map_err(io::Error::other)?;
            arrivals.store(0, Ordering::SeqCst);
            let cpu_before = cpu_time(proxy.child.id())?;
            let (sent, elapsed) = send_paced(&sender, proxy.faces[1], &payload, rate, args.millis)?;
            let arrived = wait_until_quiet(&arrivals);
            let cpu = cpu_time(proxy.child.id())? - cpu_before;
            let link: LinkCounters = client.stats().map_err(io::Error::other)?.link(0, 1);
            let trial = Trial {
                sent,
                elapsed,
                into_proxy: sent - link.received,
                out_of_proxy: link.received - link.delivered,
                at_receiver: link.delivered - arrived,
                cpu,
            };
            if trial.into_proxy + trial.out_of_proxy + trial.at_receiver == 0 {
                loss_free += 1;
            }
            total.add(&trial);
        }
        println!(
            "  {rate:>9} {:>10.0} {:>17} {:>13} {:>12} {:>8}/{} {:>16.2}µs",
            total.sent as f64 / total.elapsed.as_secs_f64(),
            total.into_proxy,
            total.out_of_proxy,
            total.at_receiver,
            loss_free,
            args.trials,
            total.cpu.as_secs_f64() * 1e6 / total.sent as f64,
        );
        if loss_free == args.trials {
            every_trial = Some(rate);
        }
        if loss_free == 0 {
            break;
        }
        some_trial = Some(rate);
    }
    let show = |rate: Option<u64>| rate.map_or("none".to_string(), |r| format!("{r} datagrams/s"));
    println!(
        "\nhighest rate forwarded without loss in every trial: {}",
        show(every_trial)
    );
    println!(
        "highest rate forwarded without loss in some trial:  {}",
        show(some_trial)
    );
    Ok(())
}

/// One paced run; the losses are datagrams.
#[derive(Default)]
struct Trial {
    sent: u64,
    elapsed: Duration,
    into_proxy: u64,
    out_of_proxy: u64,
    at_receiver: u64,
    cpu: Duration,
}

impl Trial {
    fn add(&mut self, other: &Trial) {
        self.sent += other.sent;
        self.elapsed += other.elapsed;
        self.into_proxy += other.into_proxy;
        self.out_of_proxy += other.out_of_proxy;
        self.at_receiver += other.at_receiver;
        self.cpu += other.cpu;
    }
}

/// CPU time (user + system) a process has used so far, to the clock tick (10 ms).
fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // utime and stime are fields 14 and 15, counted from the command name's closing paren.
    let ticks: u64 = (stat.rsplit_once(')').map_or("", |(_, rest)| rest))
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    Ok(Duration::from_millis(ticks * 10))
}

/// Sends `rate` datagrams a second for `millis` ms, in small bursts: each wake-up sends what is
/// due by then. Returns how many were sent and how long it took.
fn send_paced(
    socket: &UdpSocket,
    to: SocketAddr,
    payload: &[u8],
    rate: u64,
    millis: u64,
) -> io::Result<(u64, Duration)> {
    let total = rate * millis / 1000;
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        let due = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
        while sent < due.min(total) {
            socket.send_to(payload, to)?;
            sent += 1;
        }
        thread::sleep(PACING);
    }
    Ok((sent, start.elapsed()))
}

/// The arrivals once none has come for a while.
fn wait_until_quiet(received: &AtomicU64) -> u64 {
    let mut last = received.load(Ordering::SeqCst);
    loop {
        thread::sleep(Duration::from_millis(200));
        let now = received.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// A stand-in node's socket, with receive buffers as deep as the proxy's faces so that loss in
/// the forwarding trials is the proxy's, not the stand-in's.
fn bind() -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20)?;
    Ok(socket)
}

/// Answers every datagram to its sender, for as long as the process runs.
fn echo(socket: UdpSocket) {
    thread::spawn(move || {
        let mut buf = vec![0; 65536];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..len], from);
        }
    });
}

fn count_arrivals(socket: UdpSocket, received: Arc<AtomicU64>) {
    thread::spawn(move || {
        let mut buf = vec![0; 65536];
        while socket.recv_from(&mut buf).is_ok() {
            received.fetch_add(1, Ordering::SeqCst);
        }
    });
}

struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
}

impl Percentiles {
    fn of(mut times: Vec<Duration>) -> Percentiles {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{:>6.1}µs {:>6.1}µs {:>6.1}µs",
            self.p50, self.p90, self.p99
        )
    }
}

/// A netproxy process for two nodes, killed when dropped.
struct Proxy {
    child: Child,
    control: SocketAddr,
    faces: Vec<SocketAddr>,
    secret: raft_auth::Secret,
    /// Removed when dropped.
    secret_file: std::path::PathBuf,
}

impl Proxy {
    fn start(binary: &std::path::Path, nodes: &[SocketAddr; 2]) -> io::Result<Proxy> {
        let secret_file =
            std::env::temp_dir().join(format!("netproxy-bench-{}.secret", std::process::id()));
        let secret = raft_auth::Secret::create_file(&secret_file)?;
        let mut child = std::process::Command::new(binary)
            .args(["run", "--nodes", &format!("{},{}", nodes[0], nodes[1])])
            .arg("--secret-file")
            .arg(&secret_file)
            .args([
                "--faces",
                "127.0.0.1:0,127.0.0.1:0",
                "--control",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix(key))
                .ok_or_else(|| io::Error::other(format!("bad ready line {line:?}")))
        };
        let bad = |e| io::Error::other(format!("bad ready line {line:?}: {e}"));
        let control = field("control=")?.parse().map_err(bad)?;
        let faces = (field("faces=")?.split(','))
            .map(|face| face.parse().map_err(bad))
            .collect::<io::Result<_>>()?;
        Ok(Proxy {
            child,
            control,
            faces,
            secret,
            secret_file,
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.secret_file);
    }
}
