//! `just timeline`: a run's log drawn as one self-contained HTML page (inline SVG, no
//! scripts): a lane per node, its terms as coloured spans, leadership as a dark bar, commits as
//! ticks, crashes shaded grey and the times a node could not reach a majority (as the proxy's
//! logged fault changes say) striped red; test steps, faults and failures as vertical marks.
//!
//! [`Story::read`] extracts the picture's facts from the log; [`html`] draws them.

use super::parse::{Line, Record, Who};
use crate::cluster::MAX_CLERKS;
use netproxy::{Command, Endpoint, Endpoints, Network};
use std::fmt::Write;

/// A span of time on one node's lane, with a value (a term), in µs of the log's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub from: u64,
    pub to: u64,
    pub term: u64,
}

/// A run-wide event drawn across every lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub at: u64,
    pub topic: String,
    pub text: String,
}

/// What the picture shows, per node (indexed by node id).
#[derive(Debug, Default)]
pub struct Story {
    pub start: u64,
    pub end: u64,
    /// Each node's terms, as long as its process ran and logged.
    pub terms: Vec<Vec<Span>>,
    pub leaders: Vec<Vec<Span>>,
    /// When the node's process was crashed (killed by the harness, not yet restarted).
    pub down: Vec<Vec<(u64, u64)>>,
    /// When the proxy let the node exchange datagrams with fewer than a majority (itself
    /// included): partitioned away or disconnected.
    pub cut_off: Vec<Vec<(u64, u64)>>,
    /// `(time, commit index)` each time the node's commit index advanced.
    pub commits: Vec<Vec<(u64, u64)>>,
    pub marks: Vec<Mark>,
}

impl Story {
    pub fn read(records: &[Record]) -> Result<Story, String> {
        let lines: Vec<&Line> = records
            .iter()
            .filter_map(|r| match r {
                Record::Line(line) => Some(line),
                Record::Raw { .. } => None,
            })
            .collect();
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
            return Err("no lines in raft-lab's log format".to_string());
        };
        let nodes = lines
            .iter()
            .filter_map(|l| match l.who {
                Who::Node(id) => Some(id as usize + 1),
                _ => None,
            })
            .max()
            .ok_or("no node lines in the log")?;
        let mut story = Story {
            start: first.micros,
            end: last.micros,
            terms: vec![Vec::new(); nodes],
            leaders: vec![Vec::new(); nodes],
            down: vec![Vec::new(); nodes],
            cut_off: vec![Vec::new(); nodes],
            commits: vec![Vec::new(); nodes],
            marks: Vec::new(),
        };
        let mut lanes = vec![Lane::default(); nodes];
        // The log does not say how many clerks the proxy had; a harness proxy has at most
        // MAX_CLERKS, so every change it logged fits this network.
        let endpoints = Endpoints::new(nodes, MAX_CLERKS);
        let mut network = Network::new(endpoints);
        for line in lines {
            match line.who {
                Who::Node(id) => story.node_line(&mut lanes[id as usize], id as usize, line),
                Who::Test => {
                    if line.topic == "FAULT" {
                        story.fault(&mut lanes, line);
                    }
                    story.mark(line);
                }
                Who::Proxy => {
                    // Lines that are no change (ready, stopping, warnings) parse to nothing.
                    let command = line.text.parse::<Command>();
                    if let Ok(Command::Change(change)) = &command {
                        if command.as_ref().is_ok_and(|c| c.check(endpoints).is_ok()) {
                            network.apply(change);
                            story.reachability(&mut lanes, &network, line.micros);
                            story.mark(line);
                        }
                    }
                }
            }
        }
        let end = story.end;
        for (id, lane) in lanes.iter_mut().enumerate() {
            lane.close_term(&mut story, id, end);
            if let Some(since) = lane.down_since.take() {
                story.down[id].push((since, end));
            }
            if let Some(since) = lane.cut_off_since.take() {
                story.cut_off[id].push((since, end));
            }
        }
        Ok(story)
    }

    fn node_line(&mut self, lane: &mut Lane, id: usize, line: &Line) {
        let at = line.micros;
        if let Some(term) = line.term {
            if lane.term.is_some_and(|(_, t)| t != term) {
                lane.close_term(self, id, at);
            }
            lane.term.get_or_insert((at, term));
        }
        if line.topic == "ELECT" {
            if line.text.starts_with("became leader") {
                lane.leader_since = Some(at);
            } else if line.text.starts_with("became follower") {
                lane.close_leader(self, id, at);
            }
        }
        if line.topic == "COMMIT" {
            if let Some(index) = line
                .text
                .strip_prefix("commit_index=")
                .and_then(|i| i.parse().ok())
            {
                self.commits[id].push((at, index));
            }
        }
    }

    /// The harness's `crash nX` / `start nX`.
    fn fault(&mut self, lanes: &mut [Lane], line: &Line) {
        let Some((what, node)) = line.text.split_once(" n") else {
            return;
        };
        let Some(id) = node.parse::<usize>().ok().filter(|&id| id < lanes.len()) else {
            return;
        };
        let lane = &mut lanes[id];
        match what {
            "crash" => {
                lane.close_term(self, id, line.micros);
                lane.down_since.get_or_insert(line.micros);
            }
            "start" => {
                if let Some(since) = lane.down_since.take() {
                    self.down[id].push((since, line.micros));
                }
            }
            _ => {}
        }
    }

    /// After a connectivity change: which nodes now reach fewer than a majority.
    fn reachability(&mut self, lanes: &mut [Lane], network: &Network, at: u64) {
        let n = lanes.len();
        for (i, lane) in lanes.iter_mut().enumerate() {
            let reached = (0..n)
                .filter(|&j| {
                    let (a, b) = (Endpoint::Node(i), Endpoint::Node(j));
                    j == i || (network.passes(a, b) && network.passes(b, a))
                })
                .count();
            let cut_off = reached <= n / 2;
            match (cut_off, lane.cut_off_since) {
                (true, None) => lane.cut_off_since = Some(at),
                (false, Some(since)) => {
                    self.cut_off[i].push((since, at));
                    lane.cut_off_since = None;
                }
                _ => {}
            }
        }
    }

    fn mark(&mut self, line: &Line) {
        self.marks.push(Mark {
            at: line.micros,
            topic: line.topic.clone(),
            text: line.text.clone(),
        });
    }
}

/// A node's open spans while the log is read.
#[derive(Clone, Default)]
struct Lane {
    /// `(since, term)` of the term span in progress.
    term: Option<(u64, u64)>,
    leader_since: Option<u64>,
    down_since: Option<u64>,
    cut_off_since: Option<u64>,
}

impl Lane {
    /// Ends the term span (and the leadership in it) at `at`.
    fn close_term(&mut self, story: &mut Story, id: usize, at: u64) {
        self.close_leader(story, id, at);
        if let Some((from, term)) = self.term.take() {
            story.terms[id].push(Span { from, to: at, term });
        }
    }

    fn close_leader(&mut self, story: &mut Story, id: usize, at: u64) {
        if let (Some(from), Some((_, term))) = (self.leader_since.take(), self.term) {
            story.leaders[id].push(Span { from, to: at, term });
        }
    }
}

// Geometry of the picture, in SVG user units (pixels).
const LABEL: f64 = 50.0;
const LANE: f64 = 44.0;
const TOP: f64 = 130.0;
const AXIS: f64 = 30.0;
const TARGET_WIDTH: f64 = 1400.0;
/// At least this many pixels per second, so events a few ms apart stay apart.
const MIN_PX_PER_SEC: f64 = 60.0;

/// The page for `records`, titled with `title` (the log's path).
pub fn html(records: &[Record], title: &str) -> Result<String, String> {
    let story = Story::read(records)?;
    let seconds = (story.end - story.start).max(1) as f64 / 1e6;
    let px_per_sec = (TARGET_WIDTH / seconds).max(MIN_PX_PER_SEC);
    let x = |t: u64| LABEL + (t.saturating_sub(story.start)) as f64 / 1e6 * px_per_sec;
    let width = x(story.end) + 20.0;
    let lanes = story.terms.len();
    let height = TOP + lanes as f64 * LANE + AXIS;
    let lane_y = |id: usize| TOP + id as f64 * LANE;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="monospace" font-size="11">
<defs><pattern id="down" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#bbb"/><line x1="0" y1="0" x2="0" y2="6" stroke="#777" stroke-width="3"/></pattern>
<pattern id="cut" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><line x1="0" y1="0" x2="0" y2="8" stroke="#d00" stroke-width="2" stroke-opacity="0.45"/></pattern></defs>"##
    );
    for id in 0..lanes {
        let y = lane_y(id);
        let _ = writeln!(
            svg,
            r##"<text x="8" y="{:.1}" font-size="13" font-weight="bold">n{id}</text><line x1="{LABEL}" y1="{:.1}" x2="{width:.0}" y2="{:.1}" stroke="#eee"/>"##,
            y + LANE / 2.0 + 4.0,
            y + LANE,
            y + LANE
        );
        for span in &story.terms[id] {
            let (x0, x1) = (x(span.from), x(span.to).max(x(span.from) + 1.0));
            let _ = write!(
                svg,
                r##"<rect class="term" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>n{id} term {} ({:.3}s to {:.3}s)</title></rect>"##,
                y + 4.0,
                x1 - x0,
                LANE - 12.0,
                term_colour(span.term),
                span.term,
                secs(&story, span.from),
                secs(&story, span.to)
            );
            if x1 - x0 > 24.0 {
                let _ = write!(
                    svg,
                    r##"<text x="{:.1}" y="{:.1}" fill="#333">t{}</text>"##,
                    x0 + 3.0,
                    y + 16.0,
                    span.term
                );
            }
            svg.push('\n');
        }
        for span in &story.leaders[id] {
            let (x0, x1) = (x(span.from), x(span.to).max(x(span.from) + 2.0));
            let _ = writeln!(
                svg,
                r##"<rect class="leader" x="{x0:.1}" y="{:.1}" width="{:.1}" height="8" fill="#222"><title>n{id} leader of term {} ({:.3}s to {:.3}s)</title></rect><text x="{:.1}" y="{:.1}" font-weight="bold">L</text>"##,
                y + 20.0,
                x1 - x0,
                span.term,
                secs(&story, span.from),
                secs(&story, span.to),
                x0 - 9.0,
                y + 28.0
            );
        }
        for &(from, to) in &story.cut_off[id] {
            let _ = writeln!(
                svg,
                r##"<rect class="cut" x="{:.1}" y="{:.1}" width="{:.1}" height="{LANE}" fill="url(#cut)"><title>n{id} cut off from the majority ({:.3}s to {:.3}s)</title></rect>"##,
                x(from),
                y,
                (x(to) - x(from)).max(1.0),
                secs(&story, from),
                secs(&story, to)
            );
        }
        for &(from, to) in &story.down[id] {
            let _ = writeln!(
                svg,
                r##"<rect class="down" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="url(#down)"><title>n{id} crashed ({:.3}s to {:.3}s)</title></rect>"##,
                x(from),
                y + 4.0,
                (x(to) - x(from)).max(1.0),
                LANE - 12.0,
                secs(&story, from),
                secs(&story, to)
            );
        }
        for &(at, index) in &story.commits[id] {
            let _ = write!(
                svg,
                r##"<line class="commit" x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#080"><title>n{id} commit index {index} at {3:.3}s</title></line>"##,
                x(at),
                y + LANE - 8.0,
                y + LANE - 1.0,
                secs(&story, at)
            );
        }
        svg.push('\n');
    }
    // Labels of marks closer than this to the last labelled one are left out (hover still
    // tells): a burst of faults would otherwise print on top of itself.
    const LABEL_GAP: f64 = 12.0;
    let mut last_label = f64::NEG_INFINITY;
    for (k, mark) in story.marks.iter().enumerate() {
        let colour = match mark.topic.as_str() {
            "FAIL" => "#d00",
            "FAULT" => "#c60",
            "PROXY" => "#a0a",
            _ => "#06c",
        };
        let mx = x(mark.at);
        // Labels rotate up-left from the lanes' top; alternate their length so close ones
        // stay readable.
        let label_y = TOP - 6.0 - (k % 3) as f64 * 4.0;
        let label = if mx - last_label >= LABEL_GAP || mark.topic == "FAIL" {
            last_label = mx;
            format!(
                r##"<text transform="translate({mx:.1},{label_y:.1}) rotate(-35)" fill="{colour}">{} {}</text>"##,
                escape(&mark.topic),
                escape(&shorten(&mark.text, 48))
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            svg,
            r##"<g class="mark"><line x1="{mx:.1}" y1="{label_y:.1}" x2="{mx:.1}" y2="{:.1}" stroke="{colour}" stroke-dasharray="3,2"/>{label}<title>{:.3}s {} {}</title></g>"##,
            TOP + lanes as f64 * LANE,
            secs(&story, mark.at),
            escape(&mark.topic),
            escape(&mark.text)
        );
    }
    // The time axis: a tick per second, or per 5/10 s on long runs.
    let step = [1.0, 5.0, 10.0, 30.0, 60.0]
        .into_iter()
        .find(|s| s * px_per_sec >= 50.0)
        .unwrap_or(60.0);
    let axis_y = TOP + lanes as f64 * LANE + 14.0;
    let mut t = 0.0;
    while t <= seconds {
        let tx = LABEL + t * px_per_sec;
        let _ = write!(
            svg,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#999"/><text x="{:.1}" y="{:.1}" fill="#555">{t}s</text>"##,
            axis_y - 14.0,
            axis_y - 8.0,
            tx + 2.0,
            axis_y + 2.0
        );
        t += step;
    }
    svg.push_str("\n</svg>\n");

    let counts = format!(
        "{} nodes · {:.1} s · {} terms · {} leaderships · {} crashes · {} marks",
        lanes,
        seconds,
        story
            .terms
            .iter()
            .flatten()
            .map(|s| s.term)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        story.leaders.iter().map(Vec::len).sum::<usize>(),
        story.down.iter().map(Vec::len).sum::<usize>(),
        story.marks.len()
    );
    Ok(format!(
        r##"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>raft-lab timeline: {title}</title>
<style>body{{font-family:sans-serif;margin:16px}} .legend span{{display:inline-block;margin-right:18px}} .sw{{display:inline-block;width:14px;height:10px;vertical-align:middle;margin-right:4px}} .scroll{{overflow-x:auto;border:1px solid #ddd}}</style></head>
<body><h3>raft-lab timeline: {title}</h3><p>{counts}</p>
<p class="legend"><span><i class="sw" style="background:{}"></i>term (colour per term)</span><span><i class="sw" style="background:#222"></i>leader (L)</span><span><i class="sw" style="background:#080;width:2px"></i>commit</span><span><i class="sw" style="background:#999"></i>crashed</span><span><i class="sw" style="background:#f99"></i>cut off from the majority</span><span style="color:#06c">test</span><span style="color:#c60">fault</span><span style="color:#a0a">proxy</span><span style="color:#d00">failure</span> (hover for details)</p>
<div class="scroll">
{svg}</div></body></html>
"##,
        term_colour(1),
        title = escape(title),
    ))
}

/// Seconds since the log's first line.
fn secs(story: &Story, t: u64) -> f64 {
    t.saturating_sub(story.start) as f64 / 1e6
}

/// A light colour per term; neighbouring terms get distant hues, none of them red (red is
/// for being cut off and for failures).
fn term_colour(term: u64) -> String {
    format!("hsl({}, 65%, 82%)", 50 + (term * 137) % 260)
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse::read_log;

    const LOG: &str = "\
1.000000 INFO  test - FAULT start n0
1.000000 INFO  n0 t0 NODE starting
1.000000 INFO  n1 t0 NODE starting
1.000000 INFO  n2 t0 NODE starting
1.500000 INFO  n1 t1 ELECT starting election
1.502000 INFO  n1 t1 ELECT became leader (last_log_index=0 commit_index=0)
1.600000 INFO  n1 t1 COMMIT commit_index=1
2.000000 INFO  proxy - PROXY disconnect 1
2.600000 INFO  n0 t2 ELECT starting election
2.601000 INFO  n0 t2 ELECT became leader (last_log_index=1 commit_index=1)
3.000000 INFO  proxy - PROXY connect 1
3.001000 INFO  n1 t2 ELECT became follower (was Leader in t1), leader=Some(0)
3.500000 INFO  test - FAULT crash n2
4.000000 INFO  test - FAULT start n2
4.100000 INFO  n2 t2 NODE starting
5.000000 ERROR test - FAIL expected one leader, got none
";

    fn story() -> Story {
        Story::read(&read_log(LOG.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn terms_and_leaderships_per_node() {
        let s = story();
        let span = |from, to, term| Span { from, to, term };
        assert_eq!(
            s.terms[1],
            [
                span(1_000_000, 1_500_000, 0),
                span(1_500_000, 3_001_000, 1),
                span(3_001_000, 5_000_000, 2)
            ]
        );
        assert_eq!(s.leaders[1], [span(1_502_000, 3_001_000, 1)]);
        assert_eq!(s.leaders[0], [span(2_601_000, 5_000_000, 2)]);
        assert_eq!(s.commits[1], [(1_600_000, 1)]);
    }

    #[test]
    fn crashes_and_cut_offs_from_the_harness_and_the_proxy() {
        let s = story();
        assert_eq!(s.down[2], [(3_500_000, 4_000_000)]);
        // The crash ends n2's term-0 span; the restarted process starts a new one.
        assert_eq!(s.terms[2].len(), 2);
        assert_eq!(s.terms[2][0].to, 3_500_000);
        assert_eq!(s.cut_off[1], [(2_000_000, 3_000_000)]);
        assert!(s.cut_off[0].is_empty() && s.cut_off[2].is_empty());
        let topics: Vec<&str> = s.marks.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            topics,
            ["FAULT", "PROXY", "PROXY", "FAULT", "FAULT", "FAIL"]
        );
    }

    #[test]
    fn the_page_draws_every_fact() {
        let page = html(&read_log(LOG.as_bytes()).unwrap(), "run <1>.log").unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("raft-lab timeline: run &lt;1&gt;.log"));
        assert_eq!(page.matches(r#"class="term""#).count(), 7);
        assert_eq!(page.matches(r#"class="leader""#).count(), 2);
        assert_eq!(page.matches(r#"class="down""#).count(), 1);
        assert_eq!(page.matches(r#"class="cut""#).count(), 1);
        assert_eq!(page.matches(r#"class="commit""#).count(), 1);
        assert!(page.contains("FAIL expected one leader, got none"));
        assert!(page.trim_end().ends_with("</html>"));
    }

    #[test]
    fn a_log_without_node_lines_is_an_error() {
        let records = read_log("ready id=0\n".as_bytes()).unwrap();
        assert!(html(&records, "x").is_err());
    }
}
