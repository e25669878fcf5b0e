//! A key/value history: one [`Operation`] per clerk call, and its JSON-lines form.

use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, Write};

/// What a clerk asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Get,
    Put,
    Append,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The clerk had its reply: for a Get, `output` is what it read.
    Ok,
    /// The clerk gave up without a reply: the outcome is unknown (Jepsen's "info"). A
    /// Put/Append may have taken effect at any time after its call, or never; a Get read
    /// nothing.
    Timeout,
}

/// One call of a clerk. An operation's id in a history is its index in the slice (or its line
/// number, from 0, in a JSON-lines file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub clerk: u64,
    pub kind: OpKind,
    pub key: String,
    /// The value of a Put or Append; empty for a Get.
    pub input: String,
    /// The value a Get returned; empty for a Put or Append, and ignored for them.
    pub output: String,
    /// Taken before the clerk's first try, on the clock every clerk of the history shares.
    pub call_ns: u64,
    /// Taken after the reply; for a timed-out call, when the clerk gave up. The checker
    /// ignores it for timed-out calls (their effect is not bounded by it).
    pub return_ns: u64,
    pub status: Status,
}

impl Operation {
    /// The operation as the visualizer and failure messages show it: `put("k", "v")`,
    /// `append("k", "v")`, `get("k") -> "v"` (strings quoted and escaped as Rust does, long
    /// values cut to their ends and length: [`shorten`]).
    pub fn describe(&self) -> String {
        match (self.kind, self.status) {
            (OpKind::Get, Status::Ok) => {
                format!("get({:?}) -> {}", self.key, shorten(&self.output))
            }
            (OpKind::Get, Status::Timeout) => format!("get({:?}) -> ?", self.key),
            (OpKind::Put, _) => format!("put({:?}, {})", self.key, shorten(&self.input)),
            (OpKind::Append, _) => format!("append({:?}, {})", self.key, shorten(&self.input)),
        }
    }
}

/// `value` quoted, its middle elided if it is long. Reads only its ends: an Append-heavy key's
/// values run to hundreds of kilobytes, and a picture shortens one per operation.
pub fn shorten(value: &str) -> String {
    const HEAD: usize = 40;
    const TAIL: usize = 60;
    if value.chars().nth(HEAD + TAIL + 20).is_none() {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(HEAD).collect();
    let mut tail: Vec<char> = value.chars().rev().take(TAIL).collect();
    tail.reverse();
    let tail: String = tail.into_iter().collect();
    format!("{head:?}…{tail:?} ({} bytes)", value.len())
}

/// Writes `history` as JSON lines: one operation per line, fields `clerk`, `kind`
/// (`"get"`/`"put"`/`"append"`), `key`, `input`, `output`, `call_ns`, `return_ns`, `status`
/// (`"ok"`/`"timeout"`).
pub fn write_jsonl(mut w: impl Write, history: &[Operation]) -> io::Result<()> {
    for op in history {
        serde_json::to_writer(&mut w, op)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Reads a history written by [`write_jsonl`] (blank lines are skipped). An error names the
/// line; a completed operation that returns before its call is refused, as no clock the
/// clerks share can produce it.
pub fn read_jsonl(r: impl BufRead) -> io::Result<Vec<Operation>> {
    let mut history = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |msg: String| {
            io::Error::new(io::ErrorKind::InvalidData, format!("line {}: {msg}", i + 1))
        };
        let op: Operation = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        if op.status == Status::Ok && op.return_ns < op.call_ns {
            return Err(bad(format!(
                "returns at {} ns, before its call at {} ns",
                op.return_ns, op.call_ns
            )));
        }
        history.push(op);
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpKind, input: &str, output: &str, status: Status) -> Operation {
        Operation {
            clerk: 3,
            kind,
            key: "k \"1\"\n".into(),
            input: input.into(),
            output: output.into(),
            call_ns: 10,
            return_ns: 20,
            status,
        }
    }

    #[test]
    fn json_lines_round_trip() {
        let history = vec![
            op(OpKind::Put, "a\tb", "", Status::Ok),
            op(OpKind::Append, "ü{}", "", Status::Timeout),
            op(OpKind::Get, "", "a\tbü{}", Status::Ok),
            op(OpKind::Get, "", "", Status::Timeout),
        ];
        let mut buf = Vec::new();
        write_jsonl(&mut buf, &history).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.starts_with(
            r#"{"clerk":3,"kind":"put","key":"k \"1\"\n","input":"a\tb","output":"","call_ns":10,"return_ns":20,"status":"ok"}"#
        ));
        assert!(text.contains(r#""kind":"append""#) && text.contains(r#""status":"timeout""#));
        assert_eq!(read_jsonl(&buf[..]).unwrap(), history);
    }

    #[test]
    fn json_lines_errors_name_the_line() {
        let good = r#"{"clerk":0,"kind":"get","key":"a","input":"","output":"","call_ns":1,"return_ns":2,"status":"ok"}"#;
        let cases = [
            (format!("{good}\n\n{}", good.replace("\"get\"", "\"cas\""))),
            (format!("{good}\n\n{}", good.replace("\"ok\"", "\"fine\""))),
            (format!("{good}\n\n{}", good.replace(",\"status\":\"ok\"", ""))),
            (format!("{good}\n\n{}", good.replace("}", ",\"extra\":1}"))),
            (format!(
                "{good}\n\n{}",
                good.replace("\"call_ns\":1", "\"call_ns\":3")
            )),
        ];
        for text in cases {
            let err = read_jsonl(text.as_bytes()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().starts_with("line 3: "), "{err}");
        }
        // A timed-out call's return time is only when the clerk gave up: not checked.
        let timeout = good
            .replace("\"call_ns\":1", "\"call_ns\":3")
            .replace("\"ok\"", "\"timeout\"");
        assert_eq!(read_jsonl(timeout.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn describe_quotes_and_escapes() {
        assert_eq!(
            op(OpKind::Put, "v", "", Status::Ok).describe(),
            r#"put("k \"1\"\n", "v")"#
        );
        assert_eq!(
            op(OpKind::Append, "", "", Status::Ok).describe(),
            r#"append("k \"1\"\n", "")"#
        );
        assert_eq!(
            op(OpKind::Get, "", "x", Status::Ok).describe(),
            r#"get("k \"1\"\n") -> "x""#
        );
        assert_eq!(
            op(OpKind::Get, "", "", Status::Timeout).describe(),
            r#"get("k \"1\"\n") -> ?"#
        );
    }

    /// A Get of a long value shows its ends and its length, not the whole value.
    #[test]
    fn describe_shortens_long_values() {
        let value = format!("{}é{}", "a".repeat(100), "z".repeat(100));
        assert_eq!(
            op(OpKind::Get, "", &value, Status::Ok).describe(),
            format!(
                r#"get("k \"1\"\n") -> "{}"…"{}" (202 bytes)"#,
                "a".repeat(40),
                "z".repeat(60)
            )
        );
    }
}
