//! The dashboard on a real cluster: its JSON state and its controls over plain HTTP, then the
//! page in headless Chromium driven through chromedriver (WebDriver), which must show the
//! leader the cluster reports and, once "isolate the leader" is clicked, the cut links and the
//! new leader. Without Chromium (Debian's `chromium` and `chromium-driver`; `.ci/run` installs
//! them) the browser test says it skipped and passes.

use harness::cluster::{Cluster, NodeOptions};
use harness::cluster_file::Sharded;
use harness::dashboard::replay::Replay;
use harness::dashboard::{Config, Dashboard, CONTROL_HEADER};
use harness::shardcli::{ShardOp, System};
use harness::shardtest;
use raft_node::runtime::ServiceKind;
use serde_json::{json, Value};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous: an election takes under a second, but the machine is shared and Chromium is slow
/// to start on two cores.
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A 3-node KV cluster, as `just cluster` runs it, and its dashboard on a free port.
fn start(name: &str) -> (Arc<Mutex<Cluster>>, Dashboard) {
    let options = NodeOptions {
        service: ServiceKind::Kv,
        max_raft_state: Some(64 * 1024),
        ..NodeOptions::lab()
    };
    let cluster = Cluster::launch_with(name, 3, options).unwrap();
    let (layout, key) = (cluster.layout().clone(), cluster.key());
    let cluster = Arc::new(Mutex::new(cluster));
    let dashboard = Dashboard::start(Config {
        layout,
        key,
        cluster: Some(Arc::clone(&cluster)),
        port: 0,
        sharded: None,
    })
    .unwrap();
    (cluster, dashboard)
}

/// The leader of the highest term and that term, as the nodes themselves report it.
fn cluster_leader(cluster: &Mutex<Cluster>) -> Option<(u64, u64)> {
    let cluster = cluster.lock().unwrap();
    (0..cluster.len())
        .filter_map(|i| cluster.client(i).get_state().ok())
        .filter(|s| s.is_leader)
        .map(|s| (s.term, s.id as u64))
        .max()
        .map(|(term, id)| (id, term))
}

/// Calls `check` every [`POLL`] until it returns `Ok`, or panics with `what` and its last `Err`.
fn until<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match check() {
            Ok(found) => return found,
            Err(last) if Instant::now() >= deadline => {
                panic!("no {what} within {DEADLINE:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// One HTTP/1.1 request; the status and the body. Enough HTTP for the dashboard and
/// chromedriver: a `Content-Length` body, or one that ends with the connection.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    stream.write_all(format!("{head}\r\n{body}").as_bytes())?;
    // A screenshot is about a megabyte; nothing here is near this bound.
    let mut reply = Vec::new();
    let mut chunk = [0; 64 * 1024];
    let (header_end, length) = loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(io::Error::other("the connection closed inside the headers"));
        }
        reply.extend_from_slice(&chunk[..read]);
        if let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&reply[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            break (end + 4, length);
        }
    };
    match length {
        Some(length) => {
            while reply.len() < header_end + length {
                let read = stream.read(&mut chunk)?;
                if read == 0 {
                    break;
                }
                reply.extend_from_slice(&chunk[..read]);
            }
        }
        None => {
            (&mut stream).take(64 << 20).read_to_end(&mut reply)?;
        }
    }
    let status_line = String::from_utf8_lossy(&reply[..header_end]).to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP reply: {status_line:?}")))?;
    Ok((
        status,
        String::from_utf8_lossy(&reply[header_end..]).to_string(),
    ))
}

fn state(dashboard: &Dashboard) -> Value {
    let (status, body) = http(dashboard.addr(), "GET", "/api/state", &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn post(dashboard: &Dashboard, api: &str, body: &str) -> (u16, Value) {
    let header = [(CONTROL_HEADER, "1")];
    let (status, reply) = http(dashboard.addr(), "POST", api, &header, body).unwrap();
    (
        status,
        serde_json::from_str(&reply).unwrap_or(Value::String(reply)),
    )
}

#[test]
fn the_json_state_shows_the_cluster_and_the_controls_act_on_it() {
    let (cluster, dashboard) = start("dashboard-json");
    let addr = dashboard.addr();
    assert!(addr.ip().is_loopback());

    // The state names the leader and term the nodes report.
    let (leader, term) = until("leader in the state that the nodes agree with", || {
        let state = state(&dashboard);
        let truth = cluster_leader(&cluster);
        let shown = (
            state["view"]["leader"].as_u64(),
            state["view"]["term"].as_u64(),
        );
        match (truth, shown) {
            (Some((l, t)), (Some(sl), Some(st))) if (l, t) == (sl, st) => Ok((l, t)),
            _ => Err(format!("nodes {truth:?}, state {shown:?}")),
        }
    });
    let state = state(&dashboard);
    let nodes = state["view"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[leader as usize]["state"]["role"], "Leader");
    assert_eq!(state["controls"]["nodes"], true);
    assert!(state["controls"]["proxy_cli"]
        .as_str()
        .unwrap()
        .starts_with("netproxy --control 127.0.0.1:"));
    let events = state["events"].as_array().unwrap();
    assert!(
        !events.is_empty(),
        "the strip starts with what it first saw"
    );

    // A control without the header (what another origin's page could send) is refused.
    let (status, _) = http(addr, "POST", "/api/proxy", &[], "heal").unwrap();
    assert_eq!(status, 403);
    // So is a page that reached us by another host name.
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /api/state HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");

    // Disconnect the leader through the API: the answer names the CLI command, the state the
    // disconnect, and soon another leader in a later term.
    let (status, outcome) = post(&dashboard, "/api/proxy", &format!("disconnect {leader}"));
    assert_eq!(status, 200, "{outcome}");
    assert!(
        outcome["command"]
            .as_str()
            .unwrap()
            .ends_with(&format!(" disconnect {leader}")),
        "{outcome}"
    );
    let new = until("new leader after the disconnect", || {
        let state = self::state(&dashboard);
        let view = &state["view"];
        let cut = view["nodes"][leader as usize]["connected"] == false;
        match view["leader"].as_u64() {
            Some(l) if cut && l != leader && view["term"].as_u64() > Some(term) => Ok(l),
            _ => Err(format!(
                "leader {}, term {}, connected {}",
                view["leader"], view["term"], !cut
            )),
        }
    });
    let (status, outcome) = post(&dashboard, "/api/proxy", "heal");
    assert_eq!(status, 200, "{outcome}");

    // A bad command is refused with netproxy's reason, and so is a query.
    let (status, outcome) = post(&dashboard, "/api/proxy", "partition 0,9");
    assert_eq!(status, 409, "{outcome}");
    let (status, _) = post(&dashboard, "/api/proxy", "stats");
    assert_eq!(status, 409);

    // A KV put through a clerk of the proxy.
    let (status, outcome) = post(&dashboard, "/api/kv", "put greeting hello");
    assert_eq!(status, 200, "{outcome}");
    assert!(
        outcome["command"] == "raft-lab kv put greeting hello",
        "{outcome}"
    );

    // The leader's card: its own vote, and a log tail that ends in its term (its no-op, the
    // put). Terms only grow along a log, so the runs, newest first, go down.
    let (card, term) = until("the leader's term at the end of its log tail", || {
        let state = self::state(&dashboard);
        let view = &state["view"];
        let leader = view["leader"].as_u64().ok_or("no leader")?;
        let card = view["nodes"][leader as usize]["state"].clone();
        match card["tail"][0]["term"].as_u64() {
            Some(newest) if Some(newest) == view["term"].as_u64() => Ok((card, newest)),
            _ => Err(card.to_string()),
        }
    });
    assert_eq!(card["voted_for"], card["id"], "{card}");
    let runs: Vec<(u64, u64)> = (card["tail"].as_array().unwrap().iter())
        .map(|r| (r["term"].as_u64().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    assert!(runs.windows(2).all(|w| w[0].0 > w[1].0), "{runs:?}");
    assert!(
        runs.iter().all(|&(t, count)| t <= term && count > 0),
        "{runs:?}"
    );
    let shown: u64 = runs.iter().map(|r| r.1).sum();
    let (last, snapshot) = (&card["last_log_index"], &card["snapshot_index"]);
    let held = last.as_u64().unwrap() + 1 - snapshot.as_u64().unwrap().max(1);
    assert_eq!(
        shown,
        held.min(16),
        "the last 16 entries, or all it holds: {card}"
    );

    // Pause, then kill a follower: the card says so; restart brings it back.
    let follower = (0..3).find(|&i| i != new).unwrap();
    let (status, outcome) = post(&dashboard, "/api/node", &format!("pause {follower}"));
    assert_eq!(status, 200, "{outcome}");
    assert!(
        outcome["command"]
            .as_str()
            .unwrap()
            .starts_with("kill -STOP "),
        "{outcome}"
    );
    let card_status = |want: &'static str| {
        until(&format!("card of n{follower} {want}"), || {
            let state = self::state(&dashboard);
            let status = state["view"]["nodes"][follower as usize]["status"].clone();
            (status == want).then_some(()).ok_or(status.to_string())
        })
    };
    card_status("paused");
    let (status, outcome) = post(&dashboard, "/api/node", &format!("kill {follower}"));
    assert_eq!(status, 200, "{outcome}");
    card_status("killed");
    let (status, outcome) = post(&dashboard, "/api/node", &format!("restart {follower}"));
    assert_eq!(status, 200, "{outcome}");
    card_status("up");

    // The strip recorded the leader change and what was run.
    let state = self::state(&dashboard);
    let texts: Vec<&str> = (state["events"].as_array().unwrap().iter())
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| *t == format!("n{new} leads term {}", state_term_of(&texts, new))),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains(&format!("disconnect {leader}"))),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("kill -KILL ")),
        "{texts:?}"
    );

    // Dropped, the dashboard has let go of the cluster, its request and node threads included:
    // the test's drop of it stops the nodes and removes the run directory, before the process
    // exits (a thread that still held it left both to chance).
    drop(dashboard);
    assert_eq!(
        Arc::strong_count(&cluster),
        1,
        "the dashboard still holds the cluster"
    );
}

/// A sharded system (`raft-lab cluster --groups 1 --dashboard`: three controllers, one replica
/// group of three): the state judges each Raft group's leader, a KV put and get go through a
/// shard clerk to the group that owns the key, and a replica-group server killed from the page
/// restarts with its own arguments and serves again.
#[test]
fn a_sharded_system_is_shown_group_by_group_and_its_servers_restart() {
    let n = shardtest::NCTRLERS + 3;
    let cluster = Cluster::launch_groups("dashboard-sharded", n, NodeOptions::lab(), |l, dir| {
        shardtest::specs(l, dir, 1, 3, Some(64 * 1024))
    })
    .unwrap();
    let sharded = Sharded {
        groups: 1,
        per_group: 3,
    };
    let (layout, key) = (cluster.layout().clone(), cluster.key());
    let system = System {
        layout: &layout,
        key: key.clone(),
        secret: key.secret.clone(),
        sharded,
    };
    let gid = shardtest::gid_of(0);
    let deadline = Instant::now() + DEADLINE;
    system.shard(ShardOp::Join(vec![gid]), deadline).unwrap();
    let cluster = Arc::new(Mutex::new(cluster));
    let dashboard = Dashboard::start(Config {
        layout: layout.clone(),
        key,
        cluster: Some(Arc::clone(&cluster)),
        port: 0,
        sharded: Some(sharded),
    })
    .unwrap();

    let leaders = until("a leader in each Raft group", || {
        let state = state(&dashboard);
        let groups = state["view"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let leaders: Vec<(String, u64)> = (groups.iter())
            .filter_map(|g| Some((g["name"].as_str()?.to_string(), g["leader"].as_u64()?)))
            .collect();
        (leaders.len() == 2)
            .then_some(leaders)
            .ok_or(state["view"].to_string())
    });
    let group = gid.to_string();
    assert_eq!(
        (leaders[0].0.as_str(), leaders[1].0.as_str()),
        ("ctrl", group.as_str())
    );

    let (status, outcome) = post(&dashboard, "/api/kv", "put greeting hello");
    assert_eq!(status, 200, "{outcome}");
    // A server of the group, not its leader: killed, restarted, and it serves again.
    let server = (0..3)
        .map(|i| shardtest::process(shardtest::NCTRLERS, 0, i))
        .find(|&p| p as u64 != leaders[1].1)
        .unwrap();
    let card_status = |want: &'static str| {
        until(&format!("card of n{server} {want}"), || {
            let state = self::state(&dashboard);
            let card = &state["view"]["nodes"][server];
            (card["status"] == want && card["group"] == group.as_str())
                .then_some(())
                .ok_or(card.to_string())
        })
    };
    let (status, outcome) = post(&dashboard, "/api/node", &format!("kill {server}"));
    assert_eq!(status, 200, "{outcome}");
    card_status("killed");
    let (status, outcome) = post(&dashboard, "/api/kv", "append greeting !");
    assert_eq!(status, 200, "two of three servers still commit: {outcome}");
    let (status, outcome) = post(&dashboard, "/api/node", &format!("restart {server}"));
    assert_eq!(status, 200, "{outcome}");
    card_status("up");
    until("the restarted server applies the append", || {
        let state = self::state(&dashboard);
        let card = &state["view"]["nodes"][server]["state"];
        let leader = &state["view"]["nodes"][leaders[1].1 as usize]["state"];
        (card["last_applied"] == leader["last_applied"] && card["last_applied"].as_u64() > Some(0))
            .then_some(())
            .ok_or(format!("{card} against {leader}"))
    });
    let (status, outcome) = post(&dashboard, "/api/kv", "get greeting");
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["message"], "\"hello!\"", "{outcome}");

    // The page: each of the group's three servers shows the ten shards it serves.
    if !have_chromium("a_sharded_system_is_shown_group_by_group_and_its_servers_restart") {
        return;
    }
    let browser = Browser::start();
    let url = format!("http://{}/", dashboard.addr());
    browser.call("POST", "/url", json!({ "url": url }));
    let serving = "return Array.from(document.querySelectorAll('.card')).map(c =>
        Array.from(c.querySelectorAll('.shards .shard.serving')).map(s => Number(s.textContent)));";
    until("every server's shards on its card", || {
        let shown = browser.script(serving);
        let all: Vec<u64> = (0..10).collect();
        let cards: Vec<Vec<u64>> =
            serde_json::from_value(shown.clone()).map_err(|e| e.to_string())?;
        let servers = (0..3).map(|i| shardtest::process(shardtest::NCTRLERS, 0, i));
        let ok = cards.len() == n
            && servers.clone().all(|p| cards[p] == all)
            && (0..shardtest::NCTRLERS).all(|p| cards[p].is_empty());
        ok.then_some(()).ok_or(shown.to_string())
    });
}

/// The term in the strip's "nN leads term T" entry for `node`.
fn state_term_of(texts: &[&str], node: u64) -> String {
    let prefix = format!("n{node} leads term ");
    texts
        .iter()
        .find_map(|t| t.strip_prefix(&prefix))
        .unwrap_or("?")
        .to_string()
}

/// chromedriver on a free port, and one headless Chromium session; both ended on drop.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: tempfile::tempdir().unwrap(),
        };
        until("chromedriver ready", || {
            let (_, body) = http(addr, "GET", "/status", &[], "").map_err(|e| e.to_string())?;
            body.contains("\"ready\":true").then_some(()).ok_or(body)
        });
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1500,1100",
                         format!("--user-data-dir={}", browser._profile.path().display())],
            },
        }}});
        let reply = browser.call("POST", "/session", capabilities);
        browser.session = reply["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = match path {
            "/session" => path.to_string(),
            _ => format!("/session/{}{path}", self.session),
        };
        let header = [("Content-Type", "application/json")];
        // A GET has no body; chromedriver refuses even `null`.
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, reply) = http(self.addr, method, &path, &header, &body)
            .unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}"));
        let reply: Value =
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{path}: {e}: {reply}"));
        assert_eq!(status, 200, "chromedriver {method} {path}: {reply}");
        reply["value"].clone()
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    fn click(&self, css: &str) {
        let found = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        // The element reference is the object's only value, whatever the key's spelling.
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap();
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn screenshot(&self, to: &Path) {
        let png = self.call("GET", "/screenshot", Value::Null);
        std::fs::write(to, base64_decode(png.as_str().unwrap())).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Quits Chromium; chromedriver alone would leave it running.
            let path = format!("/session/{}", self.session);
            let _ = http(self.addr, "DELETE", &path, &[], "");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let bits = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &d)| acc | (d as u32) << (18 - 6 * i));
        out.extend_from_slice(&bits.to_be_bytes()[1..group.len()]);
    }
    out
}

/// What the page shows: the header's leader and term, each card's role, vote and log tail (the
/// blocks' terms, oldest first), the cut links drawn.
const READ_PAGE: &str = "return {
    leader: document.getElementById('leader').textContent,
    term: document.getElementById('term').textContent,
    live: document.getElementById('link-state').textContent,
    roles: Array.from(document.querySelectorAll('.card')).map(c => c.dataset.role),
    votes: Array.from(document.querySelectorAll('.card td.k')).filter(td => td.textContent === 'vote')
        .map(td => td.nextSibling.textContent),
    tails: Array.from(document.querySelectorAll('.card')).map(c =>
        Array.from(c.querySelectorAll('.tail .blk')).map(b => Number(b.dataset.term))),
    cuts: document.querySelectorAll('#graph line.link.cut').length,
    relayed: Array.from(document.querySelectorAll('#graph path.relayed'))
        .map(p => p.querySelector('title').textContent.split(':')[0]),
};";

/// Whether Chromium and chromedriver are here; if not, says that `test` skipped.
fn have_chromium(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "dashboard::{test}: skipped: {} missing (apt-get install chromium chromium-driver)",
            missing.join(" and ")
        );
    }
    missing.is_empty()
}

#[test]
fn the_page_shows_the_leader_and_a_partition_clicked_in_the_browser() {
    if !have_chromium("the_page_shows_the_leader_and_a_partition_clicked_in_the_browser") {
        return;
    }
    let (cluster, dashboard) = start("dashboard-browser");
    let run_dir = cluster.lock().unwrap().run_dir().to_path_buf();
    let browser = Browser::start();
    let shot = run_dir.join("dashboard.png");
    // On a failure, the page as it was and the run's logs are kept.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        browser.call(
            "POST",
            "/url",
            json!({"url": format!("http://{}/", dashboard.addr())}),
        );

        // The header and the leader's card show the leader and term the nodes report.
        let (leader, term) = until("page showing the nodes' leader and term", || {
            let page = browser.script(READ_PAGE);
            let truth = cluster_leader(&cluster);
            match truth {
                Some((l, t))
                    if page["live"] == "live"
                        && page["leader"] == format!("n{l}")
                        && page["term"].as_str().and_then(|s| s.parse().ok()) == Some(t)
                        && page["roles"][l as usize] == "Leader" =>
                {
                    Ok((l, t))
                }
                _ => Err(format!("nodes {truth:?}, page {page}")),
            }
        });
        assert_eq!(browser.script(READ_PAGE)["cuts"], 0);
        assert_eq!(browser.script(READ_PAGE)["relayed"], json!([]));

        // The leader and a follower cut from each other both ways: each relays through the
        // third node, and the graph draws both routes past it (issue 16).
        let (follower, third) = ((leader + 1) % 3, (leader + 2) % 3);
        let (status, reply) = post(
            &dashboard,
            "/api/proxy",
            &format!("down {leader}<->{follower}"),
        );
        assert_eq!(status, 200, "{reply}");
        until("relayed routes drawn", || {
            let page = browser.script(READ_PAGE);
            let mut routes: Vec<String> = serde_json::from_value(page["relayed"].clone()).unwrap();
            routes.sort();
            let mut want = vec![
                format!("{leader}->{follower} via {third}"),
                format!("{follower}->{leader} via {third}"),
            ];
            want.sort();
            (routes == want).then_some(()).ok_or(page.to_string())
        });
        let (status, reply) = post(
            &dashboard,
            "/api/proxy",
            &format!("up {leader}<->{follower}"),
        );
        assert_eq!(status, 200, "{reply}");

        browser.click("#isolate-leader");
        until("cut links drawn", || {
            let page = browser.script(READ_PAGE);
            (page["cuts"].as_u64() >= Some(4))
                .then_some(())
                .ok_or(page.to_string())
        });
        until("new leader on the page", || {
            let page = browser.script(READ_PAGE);
            let shown: Option<u64> = page["leader"]
                .as_str()
                .and_then(|l| l.strip_prefix('n'))
                .and_then(|l| l.parse().ok());
            let shown_term: Option<u64> = page["term"].as_str().and_then(|t| t.parse().ok());
            // Its card: its own vote, and its no-op of the new term at the end of its log.
            let l_tail = |l: u64| page["tails"][l as usize].as_array().cloned();
            match (shown, shown_term) {
                (Some(l), Some(t))
                    if l != leader
                        && t > term
                        && page["roles"][l as usize] == "Leader"
                        && page["votes"][l as usize] == format!("n{l}")
                        && l_tail(l).is_some_and(|b| b.last() == Some(&t.into())) =>
                {
                    Ok(())
                }
                _ => Err(page.to_string()),
            }
        });
        browser.screenshot(&shot);
    }));
    if let Err(panic) = result {
        let _ =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| browser.screenshot(&shot)));
        cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keep_run_dir();
        std::panic::resume_unwind(panic);
    }
    eprintln!(
        "dashboard: screenshot {} (kept with RAFT_LAB_KEEP_RUNS=1)",
        shot.display()
    );
}

/// A kept run: n0 leads term 1 and is crashed at 2 s while the proxy disconnects n1; n2 leads
/// term 2 from 2.5 s; n0 comes back at 3 s; the proxy heals at 3.2 s.
const RUN_LOG: &str = "\
1.000000 INFO  n0 t0 NODE starting
1.000000 INFO  n1 t0 NODE starting
1.000000 INFO  n2 t0 NODE starting
1.300000 INFO  n0 t1 ELECT became leader (last_log_index=0 commit_index=0)
1.300000 INFO  n1 t1 ELECT new term (was t0), leader=None
1.300000 INFO  n2 t1 ELECT new term (was t0), leader=None
1.400000 INFO  n0 t1 COMMIT commit_index=1
2.000000 INFO  test - FAULT crash n0
2.000000 INFO  proxy - PROXY disconnect 1
2.500000 INFO  n2 t2 ELECT became leader (last_log_index=1 commit_index=1)
3.000000 INFO  test - FAULT start n0
3.100000 INFO  n0 t2 ELECT started as follower
3.200000 INFO  proxy - PROXY heal
";

fn replay_of(log: &str) -> (tempfile::TempDir, Dashboard) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run.log"), log).unwrap();
    let replay = Replay::open(dir.path()).unwrap();
    (dir, Dashboard::replay(replay, 0).unwrap())
}

#[test]
fn a_kept_run_replays_through_the_same_state_and_moves_with_seek_and_play() {
    let (_dir, dashboard) = replay_of(RUN_LOG);
    let state = state(&dashboard);
    assert_eq!(state["replay"]["start_us"], 1_000_000);
    assert_eq!(state["replay"]["end_us"], 3_200_000);
    assert_eq!(state["replay"]["playing"], false);
    assert!(state["replay"]["log"]
        .as_str()
        .unwrap()
        .ends_with("run.log"));

    // Each seek shows the run as it was then.
    let at = |us: u64, want: &str| {
        let (status, _) = post(&dashboard, "/api/replay", &format!("seek {us}"));
        assert_eq!(status, 200);
        until(&format!("the replay at {us} µs: {want}"), || {
            let state = self::state(&dashboard);
            let view = &state["view"];
            let seen = format!(
                "leader {} term {} n0 {} n1 connected {}",
                view["leader"],
                view["term"],
                view["nodes"][0]["status"],
                view["nodes"][1]["connected"]
            );
            (state["replay"]["at_us"] == us && seen == want)
                .then_some(())
                .ok_or(seen)
        })
    };
    at(1_500_000, "leader 0 term 1 n0 \"up\" n1 connected true");
    at(
        2_200_000,
        "leader null term 1 n0 \"down\" n1 connected false",
    );
    at(3_150_000, "leader 2 term 2 n0 \"up\" n1 connected false");

    // Played, it moves on by itself and stops at the end.
    at(2_600_000, "leader 2 term 2 n0 \"down\" n1 connected false");
    assert_eq!(post(&dashboard, "/api/replay", "speed 5").0, 200);
    assert_eq!(post(&dashboard, "/api/replay", "play").0, 200);
    until("the replay at its end", || {
        let state = self::state(&dashboard);
        let replay = &state["replay"];
        (replay["at_us"] == 3_200_000 && replay["playing"] == false)
            .then_some(())
            .ok_or(replay.to_string())
    });
    let events = self::state(&dashboard)["events"].to_string();
    assert!(
        events.contains("n0 answers") && events.contains("all links up"),
        "{events}"
    );

    // A replay has no cluster to act on, and knows no other command.
    let (status, outcome) = post(&dashboard, "/api/proxy", "heal");
    assert_eq!(status, 409, "{outcome}");
    assert_eq!(post(&dashboard, "/api/replay", "rewind").0, 409);
}

#[test]
fn the_replay_page_follows_its_slider_in_the_browser() {
    if !have_chromium("the_replay_page_follows_its_slider_in_the_browser") {
        return;
    }
    let (_dir, dashboard) = replay_of(RUN_LOG);
    let browser = Browser::start();
    browser.call(
        "POST",
        "/url",
        json!({"url": format!("http://{}/", dashboard.addr())}),
    );
    until("the replay bar, without the controls", || {
        let page = browser.script(
            "return [document.getElementById('replay').hidden, \
             document.getElementById('controls').hidden, \
             document.getElementById('leader').textContent];",
        );
        (page == json!([false, true, "none"]))
            .then_some(())
            .ok_or(page.to_string())
    });
    // Drag the slider to 1.7 s into the run (2.7 s on the log's clock): n2 leads term 2, n0
    // is down.
    browser.script(
        "const s = document.getElementById('slider'); s.value = 1700; \
         s.dispatchEvent(new Event('input'));",
    );
    until("the page at +1.7 s", || {
        let page = browser.script(READ_PAGE);
        (page["leader"] == "n2" && page["term"] == "2" && page["roles"][0] == "down")
            .then_some(())
            .ok_or(page.to_string())
    });
}
