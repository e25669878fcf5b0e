//! [`assert_linearizable`]: the check as a test runs it, failing the test as the lab does.

use super::check::{check, CheckReport, Verdict};
use super::history::Operation;
use super::html::write_html;
use std::path::Path;
use std::time::Duration;

/// What a test makes of an `Unknown` verdict (the budget ran out before a verdict).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnUnknown {
    /// Fail the test: nothing was shown. The default to reach for.
    Fail,
    /// Pass with the lab's message ("info: linearizability check timed out, assuming history
    /// is ok"), as the lab's KV tests do with their 1 s budget. Only where a port must match
    /// the lab.
    PassWithNotice,
}

/// Checks `history` within `budget` and panics unless it is linearizable (or `Unknown` with
/// [`OnUnknown::PassWithNotice`]). On a failure the visualization is written to `html` first and
/// its path printed, as the lab does: `info: wrote history visualization to {path}`, then the
/// panic `history is not linearizable` with a line per failed key.
pub fn assert_linearizable(
    history: &[Operation],
    budget: Duration,
    on_unknown: OnUnknown,
    html: &Path,
) -> CheckReport {
    let report = check(history, budget);
    let failure = match (report.verdict, on_unknown) {
        (Verdict::Ok, _) => return report,
        (Verdict::Unknown, OnUnknown::PassWithNotice) => {
            eprintln!("info: linearizability check timed out, assuming history is ok");
            return report;
        }
        (Verdict::Illegal, _) => "history is not linearizable",
        (Verdict::Unknown, OnUnknown::Fail) => {
            "linearizability check timed out: history neither shown linearizable nor illegal"
        }
    };
    match write_html(html, history, &report) {
        Ok(()) => eprintln!("info: wrote history visualization to {}", html.display()),
        Err(e) => eprintln!(
            "info: cannot write history visualization to {}: {e}",
            html.display()
        ),
    }
    panic!("{failure}\n{}", report.explain(history));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::{OpKind, Status};

    fn put_then_stale_get() -> Vec<Operation> {
        let op = |kind, input: &str, output: &str, call_ns, return_ns| Operation {
            clerk: 0,
            kind,
            key: "k".into(),
            input: input.into(),
            output: output.into(),
            call_ns,
            return_ns,
            status: Status::Ok,
        };
        vec![
            op(OpKind::Put, "v", "", 0, 10),
            op(OpKind::Get, "", "", 20, 30),
        ]
    }

    #[test]
    fn an_illegal_history_fails_and_leaves_its_page() {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("h.html");
        let history = put_then_stale_get();
        let err = std::panic::catch_unwind(|| {
            assert_linearizable(
                &history,
                Duration::from_secs(5),
                OnUnknown::PassWithNotice,
                &html,
            )
        })
        .unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(
            msg.starts_with("history is not linearizable\nkey \"k\": not linearizable"),
            "{msg}"
        );
        assert!(std::fs::read_to_string(&html)
            .unwrap()
            .contains("class=\"op stuck\""));
    }

    #[test]
    fn unknown_fails_unless_the_test_lets_it_pass() {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("h.html");
        let history = &put_then_stale_get()[..1];
        let report = assert_linearizable(history, Duration::ZERO, OnUnknown::PassWithNotice, &html);
        assert_eq!(report.verdict, Verdict::Unknown);
        assert!(!html.exists());
        let err = std::panic::catch_unwind(|| {
            assert_linearizable(history, Duration::ZERO, OnUnknown::Fail, &html)
        })
        .unwrap_err();
        assert!(err
            .downcast_ref::<String>()
            .unwrap()
            .starts_with("linearizability check timed out"));
        assert!(html.exists());
        let ok = assert_linearizable(history, Duration::from_secs(5), OnUnknown::Fail, &html);
        assert_eq!(ok.verdict, Verdict::Ok);
    }
}
