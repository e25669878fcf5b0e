//! The log tools on a real run: a cluster elects, loses its leader to a disconnect, has a
//! follower crashed and restarted, commits a command; then its `run.log` must parse line by
//! line, and the column view and the timeline must tell that story.

use harness::cluster::Cluster;
use harness::logs::parse::{read_log, Record, Who};
use harness::logs::timeline::{self, Story};
use harness::logs::view::{render, ViewOptions};
use harness::timing::NodeTimers;
use std::io::BufReader;
use std::time::{Duration, Instant};

/// The node that claims leadership in the highest term among `among`, once one does.
fn leader(cluster: &Cluster, among: &[usize]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leader = among
            .iter()
            .filter_map(|&i| cluster.client(i).get_state().ok())
            .filter(|s| s.is_leader)
            .max_by_key(|s| s.term);
        if let Some(s) = leader {
            return s.id as usize;
        }
        assert!(Instant::now() < deadline, "no leader among {among:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_real_run_log_parses_and_tells_its_story() {
    let mut cluster = Cluster::launch("logs", 3, NodeTimers::scaled()).unwrap();
    let proxy = cluster.proxy();
    let first = leader(&cluster, &[0, 1, 2]);
    proxy.disconnect(first);
    let others: Vec<usize> = (0..3).filter(|&i| i != first).collect();
    let second = leader(&cluster, &others);
    proxy.connect(first);
    let follower = others.into_iter().find(|&i| i != second).unwrap();
    cluster.crash(follower);
    cluster.start(follower).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let index = loop {
        let now_leader = leader(&cluster, &[0, 1, 2]);
        if let Ok(Some((index, _))) = cluster.client(now_leader).start(b"hello") {
            break index;
        }
        assert!(Instant::now() < deadline, "no leader accepted the command");
    };
    while (0..3).any(|i| {
        cluster
            .client(i)
            .get_state()
            .map_or(true, |s| s.commit_index < index)
    }) {
        assert!(
            Instant::now() < deadline,
            "index {index} did not commit on all"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let path = cluster.log().path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    drop(cluster);

    // Every line parses, except each process's one line on stdout.
    let records = read_log(BufReader::new(text.as_bytes())).unwrap();
    for record in &records {
        if let Record::Raw { text, .. } = record {
            assert!(text.starts_with("ready "), "unparsed line: {text:?}");
        }
    }
    let raw = records
        .iter()
        .filter(|r| matches!(r, Record::Raw { .. }))
        .count();
    assert_eq!(
        raw,
        1 + 3 + 1,
        "the proxy's ready line and each node start's"
    );
    let writers: std::collections::BTreeSet<Who> = records
        .iter()
        .filter_map(|r| match r {
            Record::Line(l) => Some(l.who),
            Record::Raw { .. } => None,
        })
        .collect();
    assert_eq!(
        writers,
        [
            Who::Node(0),
            Who::Node(1),
            Who::Node(2),
            Who::Proxy,
            Who::Test
        ]
        .into()
    );
    assert!(records.windows(2).all(|w| w[0].micros() <= w[1].micros()));

    // The timeline's facts.
    let story = Story::read(&records).unwrap();
    assert!(!story.leaders[first].is_empty(), "n{first} led first");
    assert!(!story.leaders[second].is_empty(), "n{second} led after");
    assert_eq!(
        story.cut_off[first].len(),
        1,
        "n{first} was disconnected once"
    );
    assert_eq!(story.down[follower].len(), 1, "n{follower} crashed once");
    assert!(story.commits.iter().flatten().any(|&(_, i)| i >= index));
    let page = timeline::html(&records, &path.display().to_string()).unwrap();
    assert!(page.contains(r#"class="leader""#) && page.contains(r#"class="down""#));
    assert!(page.contains(&format!("FAULT crash n{follower}")));
    assert!(page.contains(&format!("PROXY disconnect {first}")));

    // The column view: a row per shown line, every one within the width.
    let mut out = Vec::new();
    let options = ViewOptions {
        width: 120,
        topics: None,
        nodes: None,
        color: false,
    };
    render(&records, &options, &mut out).unwrap();
    let view = String::from_utf8(out).unwrap();
    assert_eq!(view.lines().count(), records.len() + 1);
    assert!(view.lines().all(|l| l.chars().count() <= 120));
    assert!(view.contains(&format!("── FAULT crash n{follower} ──")));
}
