//! Where the runtime makes Raft's persistent state durable (Figure 2: `current_term`,
//! `voted_for`, `log[]`).
//!
//! The runtime calls [`Storage::persist`] with each `Ready::persist` before it sends that
//! `Ready`'s messages, and [`Storage::restore`] once at start. Only [`MemStorage`] exists so far:
//! it keeps the state for the life of the process, so a restarted node starts empty. A
//! file-backed implementation slots in behind the same trait.

use crate::core::{Entry, HardState, Persist, Restored};
use std::io;

pub trait Storage {
    /// What the core restarts from: exactly what earlier `persist` calls made durable.
    fn restore(&mut self) -> io::Result<Restored>;

    /// Makes `persist` durable before returning. An error is fatal to the node: continuing
    /// would break persist-before-send.
    fn persist(&mut self, persist: &Persist) -> io::Result<()>;
}

/// Raft's persistent state kept in process memory: it survives nothing, but it applies each
/// `Persist` exactly as a durable store must, so the two stay interchangeable.
#[derive(Debug, Default)]
pub struct MemStorage {
    hard_state: HardState,
    entries: Vec<Entry>,
}

impl Storage for MemStorage {
    fn restore(&mut self) -> io::Result<Restored> {
        Ok(Restored {
            hard_state: self.hard_state,
            entries: self.entries.clone(),
        })
    }

    fn persist(&mut self, persist: &Persist) -> io::Result<()> {
        if let Some(hard_state) = persist.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(from) = persist.truncate_from {
            self.entries.retain(|e| e.index < from);
        }
        self.entries.extend_from_slice(&persist.append);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            term,
            index,
            command: vec![index as u8],
        }
    }

    #[test]
    fn applies_hard_state_then_truncate_then_append() {
        let mut s = MemStorage::default();
        s.persist(&Persist {
            hard_state: Some(HardState {
                current_term: 1,
                voted_for: Some(0),
            }),
            truncate_from: None,
            append: vec![entry(1, 1), entry(1, 2), entry(1, 3)],
        })
        .unwrap();
        s.persist(&Persist {
            hard_state: Some(HardState {
                current_term: 2,
                voted_for: None,
            }),
            truncate_from: Some(2),
            append: vec![entry(2, 2)],
        })
        .unwrap();

        let restored = s.restore().unwrap();
        assert_eq!(
            restored.hard_state,
            HardState {
                current_term: 2,
                voted_for: None
            }
        );
        assert_eq!(restored.entries, vec![entry(1, 1), entry(2, 2)]);
    }

    #[test]
    fn persist_without_hard_state_keeps_the_old_one() {
        let mut s = MemStorage::default();
        let hs = HardState {
            current_term: 3,
            voted_for: Some(1),
        };
        s.persist(&Persist {
            hard_state: Some(hs),
            ..Persist::default()
        })
        .unwrap();
        s.persist(&Persist {
            append: vec![entry(3, 1)],
            ..Persist::default()
        })
        .unwrap();
        assert_eq!(s.restore().unwrap().hard_state, hs);
    }
}
