//! Hand-made histories the checker must accept or reject.

use super::*;
use std::time::Duration;

const BUDGET: Duration = Duration::from_secs(10);

fn op(clerk: u64, kind: OpKind, key: &str, value: &str, call_ns: u64, return_ns: u64) -> Operation {
    let (input, output) = match kind {
        OpKind::Get => ("", value),
        _ => (value, ""),
    };
    Operation {
        clerk,
        kind,
        key: key.into(),
        input: input.into(),
        output: output.into(),
        call_ns,
        return_ns,
        status: Status::Ok,
    }
}

fn put(clerk: u64, key: &str, value: &str, call: u64, ret: u64) -> Operation {
    op(clerk, OpKind::Put, key, value, call, ret)
}

fn append(clerk: u64, key: &str, value: &str, call: u64, ret: u64) -> Operation {
    op(clerk, OpKind::Append, key, value, call, ret)
}

fn get(clerk: u64, key: &str, value: &str, call: u64, ret: u64) -> Operation {
    op(clerk, OpKind::Get, key, value, call, ret)
}

fn timed_out(op: Operation) -> Operation {
    Operation {
        status: Status::Timeout,
        ..op
    }
}

fn verdict(history: &[Operation]) -> Verdict {
    check(history, BUDGET).verdict
}

/// Checks an illegal one-key history and returns its report.
fn illegal(history: &[Operation]) -> KeyReport {
    let report = check(history, BUDGET);
    assert_eq!(report.verdict, Verdict::Illegal, "{report:?}");
    assert_eq!(report.keys.len(), 1);
    report.keys[0].clone()
}

#[test]
fn stale_read_is_illegal_and_names_the_read() {
    let h = [
        put(0, "x", "1", 0, 10),
        put(0, "x", "2", 20, 30),
        get(1, "x", "1", 40, 50),
    ];
    let k = illegal(&h);
    assert_eq!((k.linearization, k.stuck.clone()), (vec![0, 1], vec![2]));
    let report = check(&h, BUDGET);
    assert_eq!(
        report.explain(&h),
        r#"key "x": not linearizable: after 2 operations the value is "2", and op 2 get("x") -> "1" cannot be placed after them"#
    );
}

#[test]
fn lost_append_is_illegal() {
    let h = [
        append(0, "x", "a", 0, 10),
        append(1, "x", "b", 5, 15),
        get(2, "x", "a", 20, 30),
    ];
    assert_eq!(illegal(&h).stuck, vec![2]);
    let h = [h[0].clone(), h[1].clone(), get(2, "x", "b", 20, 30)];
    assert_eq!(illegal(&h).stuck, vec![2]);
}

#[test]
fn read_of_a_never_written_value_is_illegal() {
    let h = [put(0, "x", "a", 0, 10), get(1, "x", "b", 5, 15)];
    let k = illegal(&h);
    // Before or after the put, the read is refused.
    assert_eq!((k.linearization.len(), k.stuck), (1, vec![1]));
    assert_eq!(illegal(&[get(0, "nothing", "x", 0, 1)]).stuck, vec![0]);
}

#[test]
fn read_going_back_in_time_is_illegal() {
    // The slow put may land anywhere in [20, 100], but once a get saw it an older get cannot
    // see the value before it.
    let h = [
        put(0, "x", "1", 0, 10),
        put(0, "x", "2", 20, 100),
        get(1, "x", "2", 30, 40),
        get(1, "x", "1", 50, 60),
    ];
    assert_eq!(illegal(&h).stuck, vec![3]);
    // Either read alone is fine, and so are both in the other order.
    assert_eq!(verdict(&h[..3]), Verdict::Ok);
    assert_eq!(verdict(&[&h[..2], &h[3..]].concat()), Verdict::Ok);
    let swapped = [
        h[0].clone(),
        h[1].clone(),
        get(1, "x", "1", 30, 40),
        get(1, "x", "2", 50, 60),
    ];
    assert_eq!(verdict(&swapped), Verdict::Ok);
}

#[test]
fn concurrent_ops_may_take_any_order() {
    let appends = [append(0, "x", "a", 0, 10), append(1, "x", "b", 0, 10)];
    for seen in ["ab", "ba"] {
        let h = [&appends[..], &[get(2, "x", seen, 20, 30)]].concat();
        let report = check(&h, BUDGET);
        assert_eq!(report.verdict, Verdict::Ok);
        let order = &report.keys[0].linearization;
        let expected = if seen == "ab" { [0, 1, 2] } else { [1, 0, 2] };
        assert_eq!(order, &expected);
    }
    // A read overlapping a write may see the value before or after it.
    for seen in ["", "v"] {
        let h = [put(0, "x", "v", 0, 10), get(1, "x", seen, 5, 6)];
        assert_eq!(verdict(&h), Verdict::Ok, "{seen}");
    }
}

#[test]
fn ops_that_touch_at_one_instant_are_concurrent() {
    let h = [put(0, "x", "v", 0, 10), get(1, "x", "", 10, 20)];
    assert_eq!(verdict(&h), Verdict::Ok);
    let h = [put(0, "x", "v", 0, 10), get(1, "x", "", 11, 20)];
    assert_eq!(verdict(&h), Verdict::Illegal);
}

#[test]
fn missing_keys_read_empty() {
    let h = [
        get(0, "a", "", 0, 10),
        append(1, "b", "", 0, 10),
        get(1, "b", "", 20, 30),
    ];
    assert_eq!(verdict(&h), Verdict::Ok);
}

#[test]
fn timed_out_write_may_take_effect_late_or_never() {
    // Put "2" timed out (the clerk gave up at 20); it may land any time after its call.
    let lost = timed_out(put(1, "x", "2", 10, 20));
    let first = put(0, "x", "1", 0, 5);
    for seen in [vec!["2"], vec!["1"], vec!["1", "2"], vec!["1", "1", "1"]] {
        let mut h = vec![first.clone(), lost.clone()];
        for (i, v) in seen.iter().enumerate() {
            let t = 1000 * (i as u64 + 1);
            h.push(get(2, "x", v, t, t + 10));
        }
        assert_eq!(verdict(&h), Verdict::Ok, "{seen:?}");
    }
    // Once seen it stays (nothing wrote after it), and it cannot land before its call.
    let h = [
        first.clone(),
        lost.clone(),
        get(2, "x", "2", 30, 40),
        get(2, "x", "1", 50, 60),
    ];
    assert_eq!(illegal(&h).stuck, vec![3]);
    let h = [first, lost, get(2, "x", "2", 6, 9)];
    assert_eq!(illegal(&h).stuck, vec![2]);
    // Even after the clerk's next call: its request may still be in flight.
    let h = [
        timed_out(append(0, "x", "a", 0, 10)),
        append(0, "x", "b", 20, 30),
        get(1, "x", "ba", 40, 50),
    ];
    assert_eq!(verdict(&h), Verdict::Ok);
}

#[test]
fn timed_out_gets_are_not_checked() {
    let h = [
        put(0, "x", "1", 0, 10),
        timed_out(get(1, "x", "never written", 20, 30)),
        timed_out(get(1, "only a timed-out get", "?", 40, 50)),
    ];
    let report = check(&h, BUDGET);
    assert_eq!(report.verdict, Verdict::Ok);
    assert_eq!(report.keys.len(), 1);
    assert_eq!(report.keys[0].linearization, vec![0]);
}

#[test]
fn keys_are_checked_independently() {
    let h = [
        put(0, "a", "1", 0, 10),
        put(0, "b", "1", 0, 10),
        get(1, "b", "1", 20, 30),
        get(1, "a", "", 20, 30),
        put(1, "c", "", 40, 50),
    ];
    let report = check(&h, BUDGET);
    assert_eq!(report.verdict, Verdict::Illegal);
    let keys: Vec<(&str, Verdict)> = report
        .keys
        .iter()
        .map(|k| (k.key.as_str(), k.verdict))
        .collect();
    assert_eq!(
        keys,
        [
            ("a", Verdict::Illegal),
            ("b", Verdict::Ok),
            ("c", Verdict::Ok)
        ]
    );
    assert_eq!(report.key("a").unwrap().stuck, vec![3]);
    assert_eq!(report.key("b").unwrap().linearization, vec![1, 2]);
    assert_eq!(check(&[], BUDGET).verdict, Verdict::Ok);
}

/// `n` appends all concurrent, then a read of a value no order of them makes: refuting it
/// means trying every order, n! of them.
fn hard(key: &str, n: u64) -> Vec<Operation> {
    let mut h: Vec<Operation> = (0..n)
        .map(|i| append(i, key, &format!("<{i}>"), 0, 100))
        .collect();
    h.push(get(n, key, "impossible", 200, 300));
    h
}

#[test]
fn time_budget_gives_unknown_never_ok() {
    let budget = Duration::from_millis(100);
    let report = check(&hard("h", 20), budget);
    assert_eq!(report.verdict, Verdict::Unknown);
    assert!(
        report.elapsed < budget + Duration::from_secs(5),
        "{:?}",
        report.elapsed
    );
    assert!(report.keys[0].stuck.is_empty());
    assert!(report
        .explain(&hard("h", 20))
        .contains("not decided within the time budget"));
    // A zero budget decides nothing.
    let easy = [put(0, "x", "1", 0, 10)];
    assert_eq!(check(&easy, Duration::ZERO).verdict, Verdict::Unknown);
    // A key found illegal wins over a key cut short.
    let mut h = hard("h", 20);
    h.extend([put(0, "x", "1", 0, 10), get(1, "x", "2", 20, 30)]);
    let report = check(&h, budget);
    assert_eq!(report.verdict, Verdict::Illegal);
    assert_eq!(report.key("h").unwrap().verdict, Verdict::Unknown);
    // Small enough, the same kind of history is refuted in time.
    assert_eq!(verdict(&hard("h", 5)), Verdict::Illegal);
}

#[test]
#[should_panic(expected = "op 0 (get(\"x\") -> \"\") returns at 5 ns, before its call at 10 ns")]
fn a_completed_op_returning_before_its_call_is_refused() {
    let _ = check(&[get(0, "x", "", 10, 5)], BUDGET);
}
