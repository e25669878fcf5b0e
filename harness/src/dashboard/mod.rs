//! `raft-lab dashboard`: the cluster in a browser, live. An HTTP server on loopback serves one
//! page (plain HTML, JS and SVG, compiled into the binary) and pushes the cluster's state to it
//! over Server-Sent Events every [`REFRESH`]; its controls POST back netproxy commands, node
//! kills, restarts and pauses, commands and KV operations. With `--replay` the frames come from
//! a kept run's log instead ([`replay`]), moved through with a slider.
//!
//! One poller thread reads the cluster with `just watch`'s [`Watch`] and turns each reading
//! into a [`View`]; every browser's stream sends the newest one. The poller runs only while a
//! stream or a state request wants frames, so an idle dashboard sleeps on a condition variable.

pub mod actions;
pub mod replay;
pub mod view;

use crate::cluster::{Cluster, Layout};
use crate::cluster_file::Sharded;
use crate::watch::{Watch, REFRESH};
use actions::{NodeControl, Outcome};
use raft_node::wire::ClusterKey;
use replay::Replay;
use serde::Serialize;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tiny_http::{Header, Method, Request, Response};
use view::{Event, Events, Process, View};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// How long after the last stream frame or state request the poller keeps polling.
const LINGER: Duration = Duration::from_secs(2);

/// Requests handled at once on threads of their own (streams, state, controls): a bound on the
/// threads a misbehaving page can make.
const MAX_IN_FLIGHT: usize = 16;

/// How long dropping a dashboard waits for its request threads: a stream ends at the stop, a
/// control at most a control call's bound later.
const REQUESTS_STOP: Duration = Duration::from_secs(10);

/// The header every POST must carry. A page of another origin cannot add it without a CORS
/// preflight, which this server never grants: loopback alone does not stop a web page in the
/// user's browser from posting to 127.0.0.1.
pub const CONTROL_HEADER: &str = "X-Raft-Lab";

/// Bodies of POSTs are one short command line.
const MAX_BODY: u64 = 4096;

/// What to watch and what the controls may act on.
pub struct Config {
    /// Where the cluster's processes listen (the well-known ports for `just cluster`).
    pub layout: Layout,
    /// The cluster's id and secret: what control connections authenticate with and clerk
    /// datagrams are sealed with.
    pub key: ClusterKey,
    /// The cluster, when this process runs it: kill, restart and pause are possible then. A
    /// node restarted from the page lives only as long as the dashboard (see [`NodeControl`]).
    pub cluster: Option<Arc<Mutex<Cluster>>>,
    /// The port to serve on (0: any free one).
    pub port: u16,
    /// A sharded system's layout (`cluster --groups N`): leaders are judged group by group.
    pub sharded: Option<Sharded>,
}

/// A running dashboard; dropping it stops the server, the poller and the request threads.
pub struct Dashboard {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    requests: Arc<Requests>,
}

/// The request threads running. Kept apart from [`Shared`] so that a thread can let go of
/// `Shared`, and of the cluster in it, before it counts itself out: once a dropped dashboard
/// has seen the count reach zero, the cluster is its owner's alone again, and dropping it
/// stops its processes and removes its run directory before the test's process exits.
#[derive(Default)]
struct Requests {
    running: Mutex<usize>,
    ended: Condvar,
}

impl Requests {
    /// Counts a new request thread in, unless [`MAX_IN_FLIGHT`] run already.
    fn begin(&self) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let admitted = *running < MAX_IN_FLIGHT;
        *running += usize::from(admitted);
        admitted
    }

    fn end(&self) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.ended.notify_all();
    }

    /// Waits up to `timeout` for every request thread to end; whether they did.
    fn wait_idle(&self, timeout: Duration) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let (running, _) = self
            .ended
            .wait_timeout_while(running, timeout, |n| *n > 0)
            .unwrap_or_else(|e| e.into_inner());
        *running == 0
    }
}

struct Shared {
    inner: Mutex<Inner>,
    /// Signalled on every new frame, on demand for frames and on stop.
    changed: Condvar,
    /// The cluster the controls act on; `None` in a replay.
    live: Option<Live>,
}

struct Live {
    layout: Layout,
    key: ClusterKey,
    nodes: Option<NodeControl>,
    /// A sharded system: KV operations go through a shard clerk.
    sharded: Option<Sharded>,
}

/// Where frames come from.
enum Source {
    Live(Watch),
    Replay(Replay),
}

/// Where a replay is, in µs of the log's clock.
#[derive(Clone, Copy, Debug, Serialize)]
struct Clock {
    start_us: u64,
    end_us: u64,
    at_us: u64,
    playing: bool,
    /// Log time per wall time.
    speed: f64,
}

struct Inner {
    /// The newest frame as JSON, and its number.
    frame: Option<Arc<String>>,
    seq: u64,
    /// Poll until then.
    wanted_until: Instant,
    stopping: bool,
    events: Events,
    /// From the newest view: for the controls that need them.
    leader: Option<usize>,
    node_count: usize,
    /// A replay's position; `None` when live.
    clock: Option<Clock>,
}

/// The JSON of one frame.
#[derive(Serialize)]
struct Frame<'a> {
    seq: u64,
    view: &'a View,
    events: Vec<&'a Event>,
    controls: Controls,
    replay: Option<ReplayState<'a>>,
}

#[derive(Serialize)]
struct ReplayState<'a> {
    log: &'a str,
    #[serde(flatten)]
    clock: Clock,
}

/// What the page needs to draw its controls.
#[derive(Serialize)]
struct Controls {
    /// Kill, restart and pause are possible (this process runs the cluster).
    nodes: bool,
    /// How the CLI reaches this cluster's proxy.
    proxy_cli: String,
}

impl Dashboard {
    /// The dashboard of a running cluster.
    pub fn start(config: Config) -> io::Result<Dashboard> {
        let nodes = config.cluster.map(NodeControl::new).transpose()?;
        let watch = Watch::new(
            &config.layout.controls,
            config.layout.proxy_control,
            &config.key.secret,
        )
        .sharded(config.sharded);
        let live = Live {
            layout: config.layout,
            key: config.key,
            nodes,
            sharded: config.sharded,
        };
        Dashboard::serve(config.port, Some(live), None, Source::Live(watch))
    }

    /// The page driven by a kept run's log, from its start, paused.
    pub fn replay(replay: Replay, port: u16) -> io::Result<Dashboard> {
        let (start_us, end_us) = replay.span();
        let clock = Clock {
            start_us,
            end_us,
            at_us: start_us,
            playing: false,
            speed: 1.0,
        };
        Dashboard::serve(port, None, Some(clock), Source::Replay(replay))
    }

    fn serve(
        port: u16,
        live: Option<Live>,
        clock: Option<Clock>,
        source: Source,
    ) -> io::Result<Dashboard> {
        let server = tiny_http::Server::http(("127.0.0.1", port))
            .map_err(|e| io::Error::other(format!("cannot listen on 127.0.0.1: {e}")))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("the server has no IP address"))?;
        let server = Arc::new(server);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                frame: None,
                seq: 0,
                wanted_until: Instant::now(),
                stopping: false,
                events: Events::default(),
                leader: None,
                node_count: 0,
                clock,
            }),
            changed: Condvar::new(),
            live,
        });
        let requests = Arc::new(Requests::default());
        let poller = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("dashboard-poll".into())
                .spawn(move || poll_loop(&shared, source))?
        };
        let acceptor = {
            let (shared, server) = (Arc::clone(&shared), Arc::clone(&server));
            let requests = Arc::clone(&requests);
            std::thread::Builder::new()
                .name("dashboard-http".into())
                .spawn(move || serve(&shared, &server, &requests, addr))?
        };
        log::info!("dashboard: http://{addr}/");
        Ok(Dashboard {
            addr,
            shared,
            server,
            threads: vec![poller, acceptor],
            requests,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.changed.notify_all();
        self.server.unblock();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        if !self.requests.wait_idle(REQUESTS_STOP) {
            log::warn!("dashboard: request threads still running {REQUESTS_STOP:?} after the stop");
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for frames for the next [`LINGER`], waking the poller if it sleeps.
    fn want_frames(&self, inner: &mut Inner) {
        let was_idle = Instant::now() >= inner.wanted_until;
        inner.wanted_until = Instant::now() + LINGER;
        if was_idle {
            self.changed.notify_all();
        }
    }

    /// Waits up to `timeout` for a frame after `seen`; the newest frame and its number. A frame
    /// made before the poller went idle is old news: then the next one.
    fn next_frame(&self, mut seen: u64, timeout: Duration) -> Option<(u64, Arc<String>)> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        if Instant::now() >= inner.wanted_until {
            seen = seen.max(inner.seq);
        }
        self.want_frames(&mut inner);
        while !inner.stopping && inner.seq == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            inner = self.changed.wait_timeout(inner, left).unwrap().0;
        }
        let frame = inner.frame.clone()?;
        (!inner.stopping).then_some((inner.seq, frame))
    }
}

fn poll_loop(shared: &Shared, mut source: Source) {
    let mut processes: Vec<Process> = Vec::new();
    loop {
        {
            let mut inner = shared.lock();
            while !inner.stopping && Instant::now() >= inner.wanted_until {
                inner = shared.changed.wait(inner).unwrap();
            }
            if inner.stopping {
                return;
            }
        }
        let started = Instant::now();
        let (view, replayed) = match &mut source {
            Source::Live(watch) => {
                let reading = watch.poll();
                let nodes = shared.live.as_ref().and_then(|l| l.nodes.as_ref());
                if let Some(p) = nodes.and_then(NodeControl::processes) {
                    processes = p;
                }
                (View::new(&reading, &processes, &watch.groups()), None)
            }
            Source::Replay(replay) => {
                let clock = shared.lock().clock.expect("a replay has a clock");
                let log = replay.path.display().to_string();
                (
                    View::new(&replay.reading(clock.at_us), &[], &[]),
                    Some((log, clock)),
                )
            }
        };
        let controls = Controls {
            nodes: shared.live.as_ref().is_some_and(|l| l.nodes.is_some()),
            proxy_cli: match &shared.live {
                Some(live) => actions::proxy_cli(live.layout.proxy_control),
                None => "netproxy".into(),
            },
        };
        let mut inner = shared.lock();
        let now = inner.clock.map(|c| c.at_us);
        if replayed.as_ref().is_some_and(|(_, c)| Some(c.at_us) != now) {
            // A seek while this frame was made: it shows a moment no longer wanted.
            continue;
        }
        inner.events.observe(&view);
        inner.seq += 1;
        inner.leader = view.leader;
        inner.node_count = view.nodes.len();
        let frame = Frame {
            seq: inner.seq,
            view: &view,
            events: inner.events.list().collect(),
            controls,
            replay: (replayed.as_ref()).map(|(log, clock)| ReplayState { log, clock: *clock }),
        };
        let json = serde_json::to_string(&frame).expect("a frame serialises");
        inner.frame = Some(Arc::new(json));
        shared.changed.notify_all();
        // A playing replay moves on by a frame's worth of the log.
        if let Some(clock) = inner.clock.as_mut().filter(|c| c.playing) {
            let step = (REFRESH.as_micros() as f64 * clock.speed) as u64;
            clock.at_us = (clock.at_us + step).min(clock.end_us);
            clock.playing = clock.at_us < clock.end_us;
        }
        // The next poll on a REFRESH grid; a stop ends the wait.
        let next = started + REFRESH;
        while !inner.stopping && Instant::now() < next {
            let left = next.saturating_duration_since(Instant::now());
            inner = shared.changed.wait_timeout(inner, left).unwrap().0;
        }
    }
}

fn serve(
    shared: &Arc<Shared>,
    server: &tiny_http::Server,
    requests: &Arc<Requests>,
    addr: SocketAddr,
) {
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(_) if shared.lock().stopping => return,
            Err(e) => {
                // An accept error (out of descriptors, say): not a reason to stop serving,
                // nor to spin on it.
                log::warn!("dashboard: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if shared.lock().stopping {
            return;
        }
        if !host_is_ours(&request, addr) {
            let _ = request.respond(text(403, "this dashboard answers only at its own address"));
            continue;
        }
        let asset = match (request.method(), request.url()) {
            (Method::Get, "/") => Some((INDEX_HTML, "text/html; charset=utf-8")),
            (Method::Get, "/app.js") => Some((APP_JS, "text/javascript; charset=utf-8")),
            (Method::Get, "/style.css") => Some((STYLE_CSS, "text/css; charset=utf-8")),
            _ => None,
        };
        if let Some((body, kind)) = asset {
            let _ = request
                .respond(Response::from_string(body).with_header(header("Content-Type", kind)));
            continue;
        }
        // The rest may wait (for a frame, a clerk, a restart): a thread each, within bounds.
        if !requests.begin() {
            let _ = request.respond(text(503, "too many requests at once"));
            continue;
        }
        let (shared, thread_requests) = (Arc::clone(shared), Arc::clone(requests));
        let spawned = std::thread::Builder::new()
            .name("dashboard-request".into())
            .spawn(move || {
                handle(&shared, request);
                drop(shared);
                thread_requests.end();
            });
        if let Err(e) = spawned {
            requests.end();
            log::warn!("dashboard: cannot start a request thread: {e}");
        }
    }
}

/// A browser names the address it connected to; another name means a page that got 127.0.0.1
/// by DNS (rebinding), which must not read or drive the cluster.
fn host_is_ours(request: &Request, addr: SocketAddr) -> bool {
    let host = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Host"))
        .map(|h| h.value.as_str());
    let port = addr.port();
    host.is_some_and(|h| h == format!("127.0.0.1:{port}") || h == format!("localhost:{port}"))
}

fn handle(shared: &Shared, mut request: Request) {
    let url = request.url().to_string();
    match (request.method(), url.as_str()) {
        (Method::Get, "/api/events") => stream(shared, request),
        (Method::Get, "/api/state") => {
            let seen = shared.lock().seq;
            let _ = match shared.next_frame(seen, Duration::from_secs(2)) {
                Some((_, frame)) => request.respond(json(200, frame.as_str())),
                None => request.respond(text(503, "no frame yet")),
            };
        }
        (Method::Post, "/api/proxy" | "/api/node" | "/api/submit" | "/api/kv" | "/api/replay") => {
            let has_header = (request.headers().iter()).any(|h| h.field.equiv(CONTROL_HEADER));
            if !has_header {
                let _ = request.respond(text(
                    403,
                    &format!("a control needs the {CONTROL_HEADER} header"),
                ));
                return;
            }
            let mut body = String::new();
            if let Err(e) = request.as_reader().take(MAX_BODY).read_to_string(&mut body) {
                let _ = request.respond(text(400, &format!("unreadable body: {e}")));
                return;
            }
            if url == "/api/replay" {
                let (code, answer) = match seek(shared, body.trim()) {
                    Ok(()) => (200, "done".to_string()),
                    Err(e) => (409, e),
                };
                let _ = request.respond(text(code, &answer));
                return;
            }
            let outcome = act(shared, &url, body.trim());
            log::info!(
                "dashboard: {} ({}: {})",
                outcome.command,
                if outcome.ok { "ok" } else { "failed" },
                outcome.message
            );
            let at_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            let mark = if outcome.ok { "" } else { " (failed)" };
            shared
                .lock()
                .events
                .action(at_ms, format!("{}{mark}", outcome.command));
            let body = serde_json::to_string(&outcome).expect("an outcome serialises");
            let _ = request.respond(json(if outcome.ok { 200 } else { 409 }, &body));
        }
        _ => {
            let _ = request.respond(text(404, "no such page"));
        }
    }
}

fn act(shared: &Shared, url: &str, body: &str) -> Outcome {
    let Some(live) = &shared.live else {
        return Outcome {
            ok: false,
            command: body.to_string(),
            message: "a replay has no cluster to act on".into(),
        };
    };
    let layout = &live.layout;
    let (leader, nodes) = {
        let inner = shared.lock();
        (inner.leader, inner.node_count)
    };
    match url {
        "/api/proxy" => actions::proxy(layout.proxy_control, &live.key.secret, body),
        "/api/submit" => actions::submit(&layout.controls, &live.key.secret, leader, body),
        "/api/kv" => match live.sharded {
            Some(sharded) => actions::sharded_kv(layout, &live.key, sharded, body),
            None => actions::kv(layout, &live.key, nodes, body),
        },
        _ => match &live.nodes {
            Some(control) => control.act(body),
            None => Outcome {
                ok: false,
                command: body.to_string(),
                message: "this dashboard does not run the cluster: kill, restart and pause need \
                          `just cluster --dashboard`"
                    .into(),
            },
        },
    }
}

/// A replay's `seek US` (µs of the log's clock), `play`, `pause` or `speed X`. A seek starts
/// the event strip afresh: events are told from successive frames, and a jump is none.
fn seek(shared: &Shared, line: &str) -> Result<(), String> {
    let mut inner = shared.lock();
    let Some(clock) = inner.clock.as_mut() else {
        return Err("not a replay".into());
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut jumped = false;
    match words.as_slice() {
        ["seek", at] => {
            let at: u64 = at
                .parse()
                .map_err(|_| format!("seek {at}: not a time in µs"))?;
            clock.at_us = at.clamp(clock.start_us, clock.end_us);
            jumped = true;
        }
        ["play"] => {
            if clock.at_us >= clock.end_us {
                clock.at_us = clock.start_us;
                jumped = true;
            }
            clock.playing = true;
        }
        ["pause"] => clock.playing = false,
        ["speed", x] => match x.parse::<f64>() {
            Ok(x) if (0.01..=100.0).contains(&x) => clock.speed = x,
            _ => return Err(format!("speed {x}: give a number from 0.01 to 100")),
        },
        _ => return Err("say seek US, play, pause or speed X".into()),
    }
    if jumped {
        inner.events = Events::default();
    }
    shared.want_frames(&mut inner);
    Ok(())
}

/// One Server-Sent Events stream: every new frame as a `data:` line until the browser leaves
/// or the dashboard stops. A comment line every few seconds without frames finds a closed
/// connection.
fn stream(shared: &Shared, request: Request) {
    let mut out = request.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
                Connection: close\r\n\r\n";
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    let mut seen = 0;
    loop {
        let written = match shared.next_frame(seen, Duration::from_secs(5)) {
            Some((seq, frame)) => {
                seen = seq;
                write!(out, "data: {frame}\n\n")
            }
            None if shared.lock().stopping => return,
            None => out.write_all(b": waiting for the cluster\n\n"),
        };
        if written.and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn text(code: u16, body: &str) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(code)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

fn json(code: u16, body: &str) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(code)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Cache-Control", "no-store"))
}
