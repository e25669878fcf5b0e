//! The KV state machine: the map, and per clerk the last `seq` it applied.
//!
//! Exactly once: a clerk has one operation outstanding and numbers them in order, so a
//! Put/Append whose `seq` is at or below the clerk's last applied one is a retry of something
//! already applied, and is not applied again. Its reply is the same as the first time: a
//! Put/Append answers nothing but "done", so the `seq` is all the table needs to keep. A Get
//! never enters the log (ReadIndex serves it) and changes nothing, so it needs no entry in the
//! table: a retried Get reads again, at a later point, which is just as linearizable. The table
//! is part of the snapshot, so the rule holds across crashes, restarts and snapshot installs.

use super::protocol::{ClerkId, Command, Op, Outcome};
use crate::service::{Access, ClerkService};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever the snapshot's encoding changes incompatibly.
const SNAPSHOT_VERSION: u8 = 1;

/// Sorted maps: every replica's snapshot of the same state is the same bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<String, String>,
    last_seq: BTreeMap<ClerkId, u64>,
}

/// The snapshot's encoding: a version, then the store.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u8,
    store: &'a KvStore,
}

#[derive(Deserialize)]
struct SnapshotOwned {
    version: u8,
    store: KvStore,
}

/// A clerk's write, as applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub clerk: ClerkId,
    pub seq: u64,
    /// False for a retry of a write already applied, which changed nothing.
    pub fresh: bool,
    /// Refused by a replica group that does not serve the key's shard (lab 4B): answered
    /// `WrongGroup`, and nothing changed.
    pub wrong_group: bool,
}

impl KvStore {
    pub fn new() -> KvStore {
        KvStore::default()
    }

    /// Applies one committed entry of the KV's log. `Ok(None)` for a no-op; an entry that does
    /// not decode is an error (this node and the one that proposed it disagree on the format).
    pub fn apply(&mut self, command: &[u8]) -> Result<Option<Applied>, String> {
        match Command::decode(command)? {
            Command::NoOp => Ok(None),
            Command::Op {
                op: Op::Get { .. }, ..
            } => Err("a Get in the log: ReadIndex serves Gets".to_string()),
            Command::Op { clerk, seq, op } => {
                let fresh = !self.applied(clerk, seq);
                match op {
                    Op::Put { key, value } if fresh => {
                        self.data.insert(key, value);
                    }
                    Op::Append { key, value } if fresh => {
                        self.data.entry(key).or_default().push_str(&value)
                    }
                    Op::Put { .. } | Op::Append { .. } => {}
                    other => return Err(format!("not a KV write: {other:?}")),
                }
                if fresh {
                    self.last_seq.insert(clerk, seq);
                }
                Ok(Some(Applied {
                    clerk,
                    seq,
                    fresh,
                    wrong_group: false,
                }))
            }
            other => Err(format!("not a KV entry: {other:?}")),
        }
    }

    /// The lab's Get: "" for a key never written.
    pub fn get(&self, key: &str) -> &str {
        self.data.get(key).map_or("", String::as_str)
    }

    /// Whether the clerk's write `seq` was applied already (a retry can be answered at once).
    pub fn applied(&self, clerk: ClerkId, seq: u64) -> bool {
        self.last_seq.get(&clerk).is_some_and(|&last| seq <= last)
    }

    pub fn keys(&self) -> usize {
        self.data.len()
    }

    pub fn snapshot(&self) -> Vec<u8> {
        let file = SnapshotRef {
            version: SNAPSHOT_VERSION,
            store: self,
        };
        rmp_serde::to_vec(&file).expect("encoding a KvStore to a Vec cannot fail")
    }

    /// The store a snapshot holds; an error names what is wrong with it.
    pub fn restore(data: &[u8]) -> Result<KvStore, String> {
        let file: SnapshotOwned = rmp_serde::from_slice(data)
            .map_err(|e| format!("not a KV snapshot ({} bytes): {e}", data.len()))?;
        if file.version != SNAPSHOT_VERSION {
            return Err(format!(
                "KV snapshot version {}, expected {SNAPSHOT_VERSION}",
                file.version
            ));
        }
        Ok(file.store)
    }
}

/// Gets are reads, served by ReadIndex; Puts and Appends go through the log.
impl ClerkService for KvStore {
    fn access(&self, op: &Op) -> Option<Access> {
        match op {
            Op::Get { .. } => Some(Access::Read),
            Op::Put { .. } | Op::Append { .. } => Some(Access::Write),
            Op::Join { .. }
            | Op::Leave { .. }
            | Op::Move { .. }
            | Op::Query { .. }
            | Op::InstallShard { .. } => None,
        }
    }

    fn answer_now(&self, clerk: ClerkId, seq: u64, _op: &Op) -> Option<Outcome> {
        KvStore::applied(self, clerk, seq).then(|| Outcome::Ok {
            value: String::new(),
        })
    }

    fn read(&self, op: &Op) -> Outcome {
        match op {
            Op::Get { key } => Outcome::Ok {
                value: self.get(key).to_string(),
            },
            _ => Outcome::NoService,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(clerk: ClerkId, seq: u64, op: Op) -> Vec<u8> {
        Command::Op { clerk, seq, op }.encode()
    }

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    fn append(key: &str, value: &str) -> Op {
        Op::Append {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn put_append_get_as_the_lab_defines_them() {
        let mut kv = KvStore::new();
        assert_eq!(kv.get("k"), "");
        kv.apply(&write(1, 1, append("k", "a"))).unwrap();
        kv.apply(&write(1, 2, append("k", "b"))).unwrap();
        assert_eq!(kv.get("k"), "ab");
        kv.apply(&write(1, 3, put("k", "x"))).unwrap();
        assert_eq!(kv.get("k"), "x");
        assert_eq!(kv.apply(&Command::NoOp.encode()).unwrap(), None);
        assert_eq!(kv.keys(), 1);
    }

    #[test]
    fn a_retried_write_applies_once() {
        let mut kv = KvStore::new();
        let first = kv.apply(&write(7, 1, append("k", "a"))).unwrap().unwrap();
        assert!(first.fresh);
        // The same request committed twice (a retry through another leader).
        let again = kv.apply(&write(7, 1, append("k", "a"))).unwrap().unwrap();
        assert!(!again.fresh);
        assert_eq!(kv.get("k"), "a");
        assert!(kv.applied(7, 1));
        assert!(!kv.applied(7, 2));
        // Another clerk's seq 1 is its own.
        kv.apply(&write(8, 1, append("k", "b"))).unwrap();
        assert_eq!(kv.get("k"), "ab");
    }

    #[test]
    fn the_clerk_table_survives_a_snapshot() {
        let mut kv = KvStore::new();
        kv.apply(&write(7, 1, append("k", "a"))).unwrap();
        let mut restored = KvStore::restore(&kv.snapshot()).unwrap();
        assert_eq!(restored, kv);
        restored.apply(&write(7, 1, append("k", "a"))).unwrap();
        assert_eq!(
            restored.get("k"),
            "a",
            "the retry after a restore applied twice"
        );
    }

    #[test]
    fn replicas_in_the_same_state_snapshot_the_same_bytes() {
        let (mut a, mut b) = (KvStore::new(), KvStore::new());
        for (clerk, key) in [(3, "z"), (1, "a"), (2, "m")] {
            a.apply(&write(clerk, 1, put(key, "v"))).unwrap();
        }
        for (clerk, key) in [(2, "m"), (3, "z"), (1, "a")] {
            b.apply(&write(clerk, 1, put(key, "v"))).unwrap();
        }
        assert_eq!(a.snapshot(), b.snapshot());
    }

    #[test]
    fn bad_snapshots_and_entries_are_errors_not_panics() {
        assert!(KvStore::restore(b"\x00garbage").is_err());
        assert!(KvStore::restore(&[]).is_err());
        assert!(KvStore::new().apply(b"\xc1").is_err());
    }

    #[test]
    fn a_get_in_the_log_is_an_error() {
        let get = write(1, 1, Op::Get { key: "k".into() });
        assert!(KvStore::new().apply(&get).is_err());
    }
}
