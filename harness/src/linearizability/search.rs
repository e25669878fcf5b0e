//! The search for a linearization of one key's operations: Wing & Gong's backtracking over a
//! time-ordered list of call and return events, with Lowe's memoization of configurations.

use super::bitset::{mix, Bitset};
use super::history::{Operation, Status};
use super::model::{InternedModel, StateId};
use std::collections::HashMap;
use std::time::Instant;

/// How the search of one key ended; ops are indices into the slice given to [`search`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every op placed, in this order.
    Linearizable(Vec<u32>),
    /// No order exists. `longest` is the longest prefix the search could linearize (the first
    /// one found of that length); `stuck` are the Gets that cannot be placed after it: those
    /// real time lets come next but the model refuses in the state `longest` leads to, or, if
    /// the lookahead ended the prefix, the upcoming Gets that can no longer read their value.
    Illegal { longest: Vec<u32>, stuck: Vec<u32> },
    /// The deadline passed first; `longest` is the longest prefix linearized so far.
    TimedOut { longest: Vec<u32> },
}

const NIL: u32 = u32::MAX;
/// Entry 0 of the list is a head that is never removed.
const HEAD: u32 = 0;
/// How many returns ahead the search looks for Gets that a choice has made impossible: a wrong
/// order of writes is refuted by the first read after them, not after every order of the
/// writes in between has been tried.
const LOOKAHEAD: usize = 8;
/// The deadline is read once per this many steps (a power of two).
const CLOCK_EVERY: u64 = 1024;

/// A call or return event in the doubly linked list.
struct Entry {
    op: u32,
    /// For a call, its op's return entry; NIL for a return.
    ret: u32,
    prev: u32,
    next: u32,
}

/// The list of events. Linearizing an op lifts its call and return out of the list (they no
/// longer constrain the rest); backtracking puts them back where they were.
struct Events {
    entries: Vec<Entry>,
}

impl Events {
    /// Events sorted by time; at equal times calls come first, so two ops that touch at one
    /// instant count as concurrent (neither is known to precede the other). A timed-out op
    /// returns at the end of time: it may take effect at any point after its call.
    fn new(ops: &[&Operation]) -> Events {
        let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * ops.len());
        for (i, op) in ops.iter().enumerate() {
            let ret = match op.status {
                Status::Ok => op.return_ns,
                Status::Timeout => u64::MAX,
            };
            events.push((op.call_ns, false, i as u32));
            events.push((ret, true, i as u32));
        }
        events.sort_unstable();
        let mut ret_entry = vec![NIL; ops.len()];
        for (pos, &(_, is_return, op)) in events.iter().enumerate() {
            if is_return {
                ret_entry[op as usize] = pos as u32 + 1;
            }
        }
        let head = Entry {
            op: NIL,
            ret: NIL,
            prev: NIL,
            next: if events.is_empty() { NIL } else { 1 },
        };
        let last = events.len() as u32;
        let entries = std::iter::once(head)
            .chain(events.iter().enumerate().map(|(pos, &(_, is_return, op))| {
                let at = pos as u32 + 1;
                Entry {
                    op,
                    ret: if is_return {
                        NIL
                    } else {
                        ret_entry[op as usize]
                    },
                    prev: at - 1,
                    next: if at == last { NIL } else { at + 1 },
                }
            }))
            .collect();
        Events { entries }
    }

    fn first(&self) -> u32 {
        self.entries[HEAD as usize].next
    }

    /// The calls before the first return still in the list, in call order: the ops real time
    /// allows next, in the order the search tries them (Wing & Gong's); and the ops called
    /// before the [`LOOKAHEAD`]th return.
    fn upcoming(&self) -> (Vec<u32>, Vec<u32>) {
        let mut candidates = Vec::new();
        let mut ahead = Vec::new();
        let mut returns = 0;
        let mut e = self.first();
        while e != NIL && returns < LOOKAHEAD {
            let entry = &self.entries[e as usize];
            if entry.ret == NIL {
                returns += 1;
            } else {
                if returns == 0 {
                    candidates.push(e);
                }
                ahead.push(entry.op);
            }
            e = entry.next;
        }
        (candidates, ahead)
    }

    fn unlink(&mut self, e: u32) {
        let Entry { prev, next, .. } = self.entries[e as usize];
        self.entries[prev as usize].next = next;
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }

    fn relink(&mut self, e: u32) {
        let Entry { prev, next, .. } = self.entries[e as usize];
        self.entries[prev as usize].next = e;
        if next != NIL {
            self.entries[next as usize].prev = e;
        }
    }

    /// Removes call `e` and its return.
    fn lift(&mut self, e: u32) {
        self.unlink(e);
        self.unlink(self.entries[e as usize].ret);
    }

    /// Undoes the last [`lift`](Self::lift), of call `e`.
    fn unlift(&mut self, e: u32) {
        self.relink(self.entries[e as usize].ret);
        self.relink(e);
    }
}

/// Configurations already explored: the set of linearized ops and the state they lead to.
/// Reaching one again can only repeat a search that failed, so it is pruned.
#[derive(Default)]
struct Cache {
    buckets: HashMap<u64, Vec<(Bitset, StateId)>>,
}

impl Cache {
    /// Adds the configuration; false if it was there already.
    fn insert(&mut self, linearized: &Bitset, state: StateId) -> bool {
        let key = linearized.hash() ^ mix(u64::from(state) | 1 << 63);
        let bucket = self.buckets.entry(key).or_default();
        if bucket.iter().any(|(l, s)| *s == state && l == linearized) {
            return false;
        }
        bucket.push((linearized.clone(), state));
        true
    }
}

/// One level of the search: the ops real time allows next, tried in turn.
struct Level {
    /// Call entries, in call order.
    candidates: Vec<u32>,
    tried: usize,
    /// Upcoming Gets that can never be linearized from here (see
    /// [`InternedModel::may_read_later`]); if any, the level is a dead end.
    dead: Vec<u32>,
    /// The call linearized to reach this level (NIL at the root), and the state before it.
    placed: u32,
    before: StateId,
}

impl Level {
    /// The level reached in `state` by linearizing call `placed` from state `before`.
    fn new(
        events: &Events,
        model: &InternedModel,
        state: StateId,
        linearized: &Bitset,
        placed: u32,
        before: StateId,
    ) -> Level {
        let (candidates, mut dead) = events.upcoming();
        dead.retain(|&op| !model.may_read_later(state, op, linearized));
        Level {
            tried: if dead.is_empty() { 0 } else { candidates.len() },
            candidates,
            dead,
            placed,
            before,
        }
    }
}

/// Searches for a linearization of `ops` (one key's), giving up at `deadline` if any.
pub fn search(ops: &[&Operation], deadline: Option<Instant>) -> Outcome {
    let mut events = Events::new(ops);
    let mut model = InternedModel::new(ops);
    let mut linearized = Bitset::new(ops.len());
    let mut cache = Cache::default();
    let mut state = model.init();
    let mut levels = vec![Level::new(&events, &model, state, &linearized, NIL, state)];
    let mut longest: Option<(Vec<u32>, Vec<u32>)> = None;
    let prefix = |levels: &[Level], events: &Events| -> Vec<u32> {
        levels[1..]
            .iter()
            .map(|l| events.entries[l.placed as usize].op)
            .collect()
    };

    let mut steps: u64 = 0;
    while events.first() != NIL {
        steps += 1;
        if steps % CLOCK_EVERY == 1 && deadline.is_some_and(|d| Instant::now() >= d) {
            let longest = longest.map(|(l, _)| l).unwrap_or_default();
            return Outcome::TimedOut { longest };
        }
        let depth = levels.len() - 1;
        let level = &mut levels[depth];
        if let Some(&call) = level.candidates.get(level.tried) {
            level.tried += 1;
            let op = events.entries[call as usize].op;
            if let Some(next) = model.step(state, op) {
                linearized.flip(op as usize);
                if cache.insert(&linearized, next) {
                    events.lift(call);
                    levels.push(Level::new(&events, &model, next, &linearized, call, state));
                    state = next;
                    continue;
                }
                linearized.flip(op as usize);
            }
        } else {
            // Every candidate failed here: back up one level.
            if longest.as_ref().is_none_or(|(l, _)| depth > l.len()) {
                let level = &levels[depth];
                let stuck: Vec<u32> = if level.dead.is_empty() {
                    // The first time the search backs up from this depth, every candidate
                    // was refused by the model: one it accepted would have led deeper.
                    level
                        .candidates
                        .iter()
                        .map(|&e| events.entries[e as usize].op)
                        .filter(|&op| model.step(state, op).is_none())
                        .collect()
                } else {
                    level.dead.clone()
                };
                longest = Some((prefix(&levels, &events), stuck));
            }
            let level = levels.pop().expect("not empty");
            if level.placed == NIL {
                let (longest, stuck) = longest.expect("recorded above");
                return Outcome::Illegal { longest, stuck };
            }
            state = level.before;
            linearized.flip(events.entries[level.placed as usize].op as usize);
            events.unlift(level.placed);
        }
    }
    Outcome::Linearizable(prefix(&levels, &events))
}
