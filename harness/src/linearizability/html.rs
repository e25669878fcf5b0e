//! A checked history drawn as one self-contained HTML page (no scripts, no external resources):
//! per key, a row per clerk, each operation a bar from call to return, numbered in the
//! linearization found; for an illegal key, the longest linearizable prefix in green and the
//! operations that cannot be placed after it in red. Hovering over a bar shows its times and
//! the key's value after it.

use super::check::{CheckReport, KeyReport, Verdict};
use super::history::{shorten, write_jsonl, OpKind, Operation, Status};
use super::model;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// Pixels per distinct timestamp: the axis is in event order, not to scale, so that short
/// operations among long ones stay visible (as porcupine draws it).
const STEP: usize = 14;
const ROW: usize = 28;

/// Writes the page for `history` and its `report` (from [`check`](super::check)) to `path`.
pub fn write_html(path: &Path, history: &[Operation], report: &CheckReport) -> io::Result<()> {
    std::fs::write(path, render_html(history, report))
}

/// Keeps a checked history in `dir` as `history.jsonl` and `history.html`, saying on stderr what
/// could not be written (a run's record must not fail the run). Returns the page's path.
pub fn save_history(dir: &Path, history: &[Operation], report: &CheckReport) -> PathBuf {
    let json = dir.join("history.jsonl");
    if let Err(e) = std::fs::File::create(&json).and_then(|f| write_jsonl(f, history)) {
        eprintln!("cannot write {}: {e}", json.display());
    }
    let html = dir.join("history.html");
    if let Err(e) = write_html(&html, history, report) {
        eprintln!("cannot write {}: {e}", html.display());
    }
    html
}

/// The page for `history` and its `report`, as a string.
pub fn render_html(history: &[Operation], report: &CheckReport) -> String {
    let mut page = String::from(HEAD);
    let _ = write!(
        page,
        "<h1>Linearizability: <span class=\"v {}\">{}</span></h1>\n<p>{} operations on {} keys, \
         checked in {:.3} s of a {:.3} s budget.{}</p>\n<ul class=\"keys\">\n",
        verdict_class(report.verdict),
        verdict_name(report.verdict),
        history.len(),
        report.keys.len(),
        report.elapsed.as_secs_f64(),
        report.budget.as_secs_f64(),
        match report.verdict {
            Verdict::Ok => "",
            Verdict::Illegal => " No order of the operations of the keys marked illegal is legal.",
            Verdict::Unknown => " Unknown is not a pass: the search ran out of time.",
        }
    );
    for (i, k) in report.keys.iter().enumerate() {
        let _ = writeln!(
            page,
            "<li><a href=\"#key{i}\">{}</a> <span class=\"v {}\">{}</span></li>",
            esc(&format!("{:?}", k.key)),
            verdict_class(k.verdict),
            verdict_name(k.verdict)
        );
    }
    page.push_str("</ul>\n");
    page.push_str(LEGEND);
    for (i, k) in report.keys.iter().enumerate() {
        key_section(&mut page, i, history, k);
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn key_section(page: &mut String, index: usize, history: &[Operation], k: &KeyReport) {
    let ids: Vec<usize> = (0..history.len())
        .filter(|&i| history[i].key == k.key)
        .collect();
    let position: HashMap<usize, usize> = k
        .linearization
        .iter()
        .enumerate()
        .map(|(n, &id)| (id, n + 1))
        .collect();
    let stuck: HashSet<usize> = k.stuck.iter().copied().collect();
    let mut after: HashMap<usize, String> = HashMap::new();
    let mut value = String::new();
    for &id in &k.linearization {
        model::apply(&mut value, &history[id]);
        after.insert(id, shorten(&value));
    }

    // The axis: every distinct call and return time of the key, in order.
    let times: BTreeSet<u64> = ids
        .iter()
        .flat_map(|&i| [history[i].call_ns, history[i].return_ns])
        .collect();
    let rank: HashMap<u64, usize> = times.iter().enumerate().map(|(r, &t)| (t, r)).collect();
    let end = (times.len() + 1) * STEP;
    let clerks: Vec<u64> = ids
        .iter()
        .map(|&i| history[i].clerk)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let row: HashMap<u64, usize> = clerks.iter().enumerate().map(|(r, &c)| (c, r)).collect();

    let _ = write!(
        page,
        "<section id=\"key{index}\">\n<h2>key {} <span class=\"v {}\">{}</span></h2>\n<p class=\"why\">{}</p>\n\
         <div class=\"chart\"><div class=\"names\">",
        esc(&format!("{:?}", k.key)),
        verdict_class(k.verdict),
        verdict_name(k.verdict),
        esc(&k.explain(history))
    );
    for c in &clerks {
        let _ = write!(page, "<div style=\"height:{ROW}px\">clerk {c}</div>");
    }
    let _ = writeln!(
        page,
        "</div><div class=\"scroll\"><div class=\"lanes\" style=\"width:{}px;height:{}px\">",
        end + STEP,
        clerks.len() * ROW
    );
    for &id in &ids {
        let op = &history[id];
        let left = rank[&op.call_ns] * STEP;
        let right = (rank[&op.return_ns] + 1) * STEP;
        let top = row[&op.clerk] * ROW + 2;
        let checked = !(op.kind == OpKind::Get && op.status == Status::Timeout);
        let class = if stuck.contains(&id) {
            "stuck"
        } else if position.contains_key(&id) {
            if k.verdict == Verdict::Ok {
                "lin"
            } else {
                "prefix"
            }
        } else if checked {
            "rest"
        } else {
            "dropped"
        };
        let label = match position.get(&id) {
            Some(n) => format!("{n}. {}", op.describe()),
            None => op.describe(),
        };
        let mut title = format!(
            "op {id}: {}\nclerk {}, called at {} ns, ",
            op.describe(),
            op.clerk,
            op.call_ns
        );
        let _ = match op.status {
            Status::Ok => write!(title, "returned at {} ns", op.return_ns),
            Status::Timeout if checked => write!(
                title,
                "gave up at {} ns: timed out, may take effect any time after its call, or never",
                op.return_ns
            ),
            Status::Timeout => write!(
                title,
                "gave up at {} ns: timed out, read nothing, not checked",
                op.return_ns
            ),
        };
        match (position.get(&id), after.get(&id)) {
            (Some(n), Some(value)) => {
                let _ = write!(title, "\nlinearized #{n}; the value after it: {value}");
            }
            _ if stuck.contains(&id) => {
                title.push_str("\ncannot be placed after the longest linearizable prefix")
            }
            _ => {}
        }
        let timeout = if op.status == Status::Timeout {
            " timeout"
        } else {
            ""
        };
        let _ = writeln!(
            page,
            "<div class=\"op {class}{timeout}\" style=\"left:{left}px;top:{top}px;width:{}px\" title=\"{}\">{}</div>",
            right - left,
            esc(&title),
            esc(&label)
        );
        if op.status == Status::Timeout && checked {
            // A write whose outcome is unknown stays open to the end of the axis.
            let _ = writeln!(
                page,
                "<div class=\"tail\" style=\"left:{right}px;top:{}px;width:{}px\"></div>",
                top + ROW - 8,
                end.saturating_sub(right)
            );
        }
    }
    page.push_str("</div></div></div>\n</section>\n");
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "linearizable",
        Verdict::Illegal => "illegal",
        Verdict::Unknown => "unknown (timed out)",
    }
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Illegal => "illegal",
        Verdict::Unknown => "unknown",
    }
}

/// `s` as HTML text or attribute value.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>raft-lab linearizability check</title>
<style>
body { font: 14px sans-serif; margin: 1em 2em; color: #222; }
h2 { font-size: 16px; margin-top: 2em; }
.v { padding: 1px 6px; border-radius: 3px; color: #fff; font-size: 13px; }
.v.ok { background: #2a7d2a; } .v.illegal { background: #c0392b; } .v.unknown { background: #b7791f; }
.keys { columns: 4; }
.why { font-family: monospace; white-space: pre-wrap; }
.chart { display: flex; border: 1px solid #ccc; }
.names { flex: none; width: 80px; font: 12px monospace; background: #f6f6f6; }
.names div { box-sizing: border-box; padding-top: 6px; padding-left: 4px; border-bottom: 1px solid #eee; }
.scroll { overflow-x: auto; flex: auto; }
.lanes { position: relative; }
.op { position: absolute; height: 20px; box-sizing: border-box; padding: 2px 3px; overflow: hidden;
      white-space: nowrap; text-overflow: ellipsis; font: 11px monospace; border-radius: 3px;
      border: 1px solid #555; }
.op.lin { background: #cfe3f7; } .op.prefix { background: #bfe8bf; }
.op.stuck { background: #f4a6a0; border: 2px solid #c0392b; font-weight: bold; }
.op.rest { background: #e4e4e4; color: #666; } .op.dropped { background: #fff; color: #999; border-style: dotted; }
.op.timeout { border-style: dashed; }
.tail { position: absolute; height: 0; border-top: 2px dashed #999; }
.legend span { display: inline-block; padding: 1px 6px; margin-right: 6px; font: 12px monospace; border: 1px solid #555; border-radius: 3px; }
</style>
</head>
<body>
"#;

const LEGEND: &str = r#"<p class="legend"><span class="op lin" style="position:static">linearized (key ok)</span><span class="op prefix" style="position:static">longest linearizable prefix</span><span class="op stuck" style="position:static">cannot be placed next</span><span class="op rest" style="position:static">not placed</span><span class="op timeout" style="position:static">timed out (dashed: open to the end)</span><span class="op dropped" style="position:static">timed-out get, not checked</span>
Bars run from call to return, numbered in the order found; the axis is in event order, not to scale. Hover for times and the value after each operation.</p>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::check;
    use std::time::Duration;

    fn op(
        clerk: u64,
        kind: OpKind,
        key: &str,
        value: &str,
        t: (u64, u64),
        status: Status,
    ) -> Operation {
        let (input, output) = if kind == OpKind::Get {
            ("", value)
        } else {
            (value, "")
        };
        Operation {
            clerk,
            kind,
            key: key.into(),
            input: input.into(),
            output: output.into(),
            call_ns: t.0,
            return_ns: t.1,
            status,
        }
    }

    #[test]
    fn page_shows_every_key_escaped_and_marks_the_stuck_read() {
        let history = vec![
            op(0, OpKind::Put, "<k&'>", "1", (0, 10), Status::Ok),
            op(0, OpKind::Put, "<k&'>", "2", (20, 30), Status::Ok),
            op(1, OpKind::Get, "<k&'>", "1", (40, 50), Status::Ok),
            op(1, OpKind::Append, "fine", "<b>\"", (0, 10), Status::Ok),
            op(2, OpKind::Append, "fine", "x", (5, 8), Status::Timeout),
            op(2, OpKind::Get, "fine", "lost", (9, 12), Status::Timeout),
            op(3, OpKind::Get, "fine", "<b>\"", (11, 12), Status::Ok),
        ];
        let report = check(&history, Duration::from_secs(10));
        assert_eq!(report.verdict, Verdict::Illegal);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.html");
        write_html(&path, &history, &report).unwrap();
        let page = std::fs::read_to_string(&path).unwrap();

        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(
            !page.contains("<script") && !page.contains("http"),
            "self-contained"
        );
        assert!(
            !page.contains("<b>") && !page.contains("<k&"),
            "text is escaped"
        );
        assert!(page.contains("key &quot;&lt;k&amp;&#39;&gt;&quot;"));
        assert!(page.contains("key &quot;fine&quot;"));
        assert_eq!(page.matches("class=\"op stuck\" style=\"left:").count(), 1);
        assert!(page.contains(
            "op 2 get(&quot;&lt;k&amp;&#39;&gt;&quot;) -&gt; &quot;1&quot; cannot be placed"
        ));
        assert_eq!(page.matches("class=\"op prefix\" style=\"left:").count(), 2);
        assert_eq!(
            page.matches("class=\"op dropped timeout\" style=\"left:")
                .count(),
            1
        );
        assert_eq!(
            page.matches("class=\"op lin timeout\" style=\"left:")
                .count(),
            1
        );
        assert_eq!(page.matches("class=\"tail\"").count(), 1);
        assert!(page.contains("the value after it: &quot;&lt;b&gt;\\&quot;x&quot;"));
    }
}
