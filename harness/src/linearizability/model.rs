//! The key/value model of one key: its state is the key's value, `""` before any write. A Get
//! is legal iff its output equals the state; a Put sets the state to its input; an Append
//! concatenates its input to the state. Puts and Appends are always legal.

use super::bitset::Bitset;
use super::history::{OpKind, Operation};
use std::collections::HashMap;
use std::rc::Rc;

/// One step of the model on a plain string: false (state unchanged) if `op` cannot be
/// linearized in `state`.
pub fn apply(state: &mut String, op: &Operation) -> bool {
    match op.kind {
        OpKind::Get => *state == op.output,
        OpKind::Put => {
            state.clone_from(&op.input);
            true
        }
        OpKind::Append => {
            state.push_str(&op.input);
            true
        }
    }
}

/// An interned state: equal values get equal ids, so the search compares and hashes states in
/// O(1) however long the value grows (an Append-heavy key reaches kilobytes).
pub type StateId = u32;

/// The model for the search: the same steps as [`apply`], on interned states.
pub struct InternedModel {
    values: Vec<Rc<str>>,
    ids: HashMap<Rc<str>, StateId>,
    /// Append transitions already computed, (state, op) → state: backtracking retries them.
    appended: HashMap<(StateId, u32), StateId>,
    /// Per op (by its index in the key's list): the interned input of a Put or output of a
    /// Get; for an Append, its input (interning it would be wasted).
    steps: Vec<Step>,
}

enum Step {
    /// The value read, and the Puts whose value is a prefix of it and that real time lets
    /// precede the Get: the Puts after which Appends alone could lead to it.
    Get {
        output: StateId,
        bases: Box<[u32]>,
    },
    Put(StateId),
    Append(Box<str>),
}

impl InternedModel {
    /// The model for `ops`, one key's operations; op `i` of the search is `ops[i]`.
    pub fn new(ops: &[&Operation]) -> InternedModel {
        let mut model = InternedModel {
            values: Vec::new(),
            ids: HashMap::new(),
            appended: HashMap::new(),
            steps: Vec::with_capacity(ops.len()),
        };
        model.intern(String::new());
        for op in ops {
            let step = match op.kind {
                OpKind::Get => Step::Get {
                    output: model.intern(op.output.clone()),
                    bases: Box::default(),
                },
                OpKind::Put => Step::Put(model.intern(op.input.clone())),
                OpKind::Append => Step::Append(op.input.as_str().into()),
            };
            model.steps.push(step);
        }
        // Only Puts called before the Get returned can precede it.
        let puts: Vec<(u32, &Operation)> = ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.kind == OpKind::Put)
            .map(|(i, op)| (i as u32, *op))
            .collect();
        for (get, step) in ops.iter().zip(&mut model.steps) {
            if let Step::Get { bases, .. } = step {
                *bases = puts
                    .iter()
                    .filter(|(_, put)| put.call_ns <= get.return_ns)
                    .filter(|(_, put)| get.output.starts_with(&put.input))
                    .map(|&(i, _)| i)
                    .collect();
            }
        }
        model
    }

    /// The state before any write: `""`.
    pub fn init(&self) -> StateId {
        0
    }

    /// The state after op `op` in `state`, or None if it cannot be linearized there.
    pub fn step(&mut self, state: StateId, op: u32) -> Option<StateId> {
        match &self.steps[op as usize] {
            Step::Get { output, .. } => (*output == state).then_some(state),
            Step::Put(value) => Some(*value),
            Step::Append(suffix) if suffix.is_empty() => Some(state),
            Step::Append(suffix) => {
                if let Some(&next) = self.appended.get(&(state, op)) {
                    return Some(next);
                }
                let value = format!("{}{suffix}", self.values[state as usize]);
                let next = self.intern(value);
                self.appended.insert((state, op), next);
                Some(next)
            }
        }
    }

    /// Whether Get `op` could still be linearized later, from `state` with the ops in
    /// `linearized` placed. The state it reads is a base (`state` itself, or the value of a
    /// Put not linearized yet that may precede it) followed by Appends, so the Get is dead if
    /// no base is a prefix of its output. Cheap and one-sided: true does not promise a way.
    pub fn may_read_later(&self, state: StateId, op: u32, linearized: &Bitset) -> bool {
        let Step::Get { output, bases } = &self.steps[op as usize] else {
            return true;
        };
        self.values[*output as usize].starts_with(&*self.values[state as usize])
            || bases.iter().any(|&put| !linearized.contains(put as usize))
    }

    fn intern(&mut self, value: String) -> StateId {
        if let Some(&id) = self.ids.get(value.as_str()) {
            return id;
        }
        let id = StateId::try_from(self.values.len()).expect("fewer than 2^32 states");
        let value: Rc<str> = value.into();
        self.values.push(value.clone());
        self.ids.insert(value, id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::history::Status;

    fn op(kind: OpKind, input: &str, output: &str) -> Operation {
        Operation {
            clerk: 0,
            kind,
            key: "k".into(),
            input: input.into(),
            output: output.into(),
            call_ns: 0,
            return_ns: 0,
            status: Status::Ok,
        }
    }

    #[test]
    fn interned_steps_match_plain_steps() {
        let ops = [
            op(OpKind::Get, "", ""),
            op(OpKind::Append, "ab", ""),
            op(OpKind::Get, "", "ab"),
            op(OpKind::Put, "abab", ""),
            op(OpKind::Append, "", ""),
            op(OpKind::Get, "", "abab"),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut model = InternedModel::new(&refs);
        // Every order of every 4 ops, from the start.
        let n = ops.len() as u32;
        for a in 0..n {
            for b in 0..n {
                for c in 0..n {
                    let mut plain = String::new();
                    let mut interned = Some(model.init());
                    for i in [a, b, c, a] {
                        let legal = apply(&mut plain, &ops[i as usize]);
                        interned = interned.and_then(|s| model.step(s, i));
                        if !legal {
                            assert_eq!(interned, None);
                            break;
                        }
                        let s = interned.expect("legal in both");
                        assert_eq!(*model.values[s as usize], plain);
                    }
                }
            }
        }
        // "ab" appended twice and "abab" put are one state.
        let once = model.step(0, 1).unwrap();
        let twice = model.step(once, 1).unwrap();
        assert_eq!(Some(twice), model.step(0, 3));
    }
}
