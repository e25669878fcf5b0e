//! Which of each node's role, term and leader changed lately, so that the view can highlight
//! them long enough for a person to notice: a frame lasts 200 ms, an election is over in less.

use super::frame::NodeReading;
use std::time::{Duration, Instant};

/// How long a changed value stays highlighted.
pub const HOLD: Duration = Duration::from_secs(2);

/// The fields of one node that changed within [`HOLD`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    pub role: bool,
    pub term: bool,
    pub leader: bool,
}

/// What to highlight in one frame, by node id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recent {
    pub nodes: Vec<Changed>,
}

/// Remembers each node's last known values and when each last changed. A node that stops
/// answering keeps its last values, so that it comes back highlighted only if it moved on.
#[derive(Debug, Default)]
pub struct Changes {
    nodes: Vec<Option<Seen>>,
}

#[derive(Debug)]
struct Seen {
    /// The role as shown (a leader's transfer included), the term and the leader.
    values: (String, u64, Option<u32>),
    /// When role, term and leader last changed.
    since: [Option<Instant>; 3],
}

impl Changes {
    pub fn observe(&mut self, nodes: &[NodeReading], now: Instant) -> Recent {
        if self.nodes.len() < nodes.len() {
            self.nodes.resize_with(nodes.len(), || None);
        }
        let mut recent = Recent::default();
        for (slot, node) in self.nodes.iter_mut().zip(nodes) {
            if let Ok(state) = node {
                let values = (state.role_label(), state.term, state.leader);
                match slot {
                    Some(seen) => {
                        let moved = [
                            seen.values.0 != values.0,
                            seen.values.1 != values.1,
                            seen.values.2 != values.2,
                        ];
                        for (since, moved) in seen.since.iter_mut().zip(moved) {
                            if moved {
                                *since = Some(now);
                            }
                        }
                        seen.values = values;
                    }
                    None => {
                        *slot = Some(Seen {
                            values,
                            since: [None; 3],
                        })
                    }
                }
            }
            let lately = |i: usize| {
                slot.as_ref()
                    .and_then(|seen| seen.since[i])
                    .is_some_and(|at| now.duration_since(at) < HOLD)
            };
            recent.nodes.push(Changed {
                role: lately(0),
                term: lately(1),
                leader: lately(2),
            });
        }
        recent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::frame::Unanswered;
    use crate::watch::known::known;
    use raft_node::core::Role;

    fn node(role: Role, term: u64, leader: Option<u32>) -> NodeReading {
        Ok(known(0, role, term, leader))
    }

    #[test]
    fn a_change_is_highlighted_for_the_hold_time_only() {
        let t0 = Instant::now();
        let mut changes = Changes::default();
        let first = changes.observe(&[node(Role::Follower, 1, Some(1))], t0);
        assert_eq!(first.nodes, [Changed::default()], "nothing changed yet");

        let at = t0 + Duration::from_millis(200);
        let elected = changes.observe(&[node(Role::Leader, 2, Some(0))], at);
        let all = Changed {
            role: true,
            term: true,
            leader: true,
        };
        assert_eq!(elected.nodes, [all]);

        // Still highlighted just before the hold ends, not after; a later term change alone
        // highlights only the term.
        let held = changes.observe(&[node(Role::Leader, 2, Some(0))], at + HOLD / 2);
        assert_eq!(held.nodes, [all]);
        let over = changes.observe(&[node(Role::Leader, 2, Some(0))], at + HOLD);
        assert_eq!(over.nodes, [Changed::default()]);
        let bumped = changes.observe(&[node(Role::Leader, 3, Some(0))], at + 2 * HOLD);
        assert_eq!(
            bumped.nodes,
            [Changed {
                term: true,
                ..Changed::default()
            }]
        );
    }

    /// A leader that starts handing over (§3.10) shows `Leader→nN`, highlighted as a change of
    /// role.
    #[test]
    fn a_transfer_is_shown_and_highlighted_as_a_role() {
        let t0 = Instant::now();
        let mut changes = Changes::default();
        changes.observe(&[node(Role::Leader, 2, Some(0))], t0);
        let mut handing_over = known(0, Role::Leader, 2, Some(0));
        handing_over.transferring_to = Some(2);
        assert_eq!(handing_over.role_label(), "Leader→n2");
        let seen = changes.observe(&[Ok(handing_over)], t0 + Duration::from_millis(200));
        assert_eq!(
            seen.nodes,
            [Changed {
                role: true,
                ..Changed::default()
            }]
        );
    }

    #[test]
    fn a_node_that_comes_back_unchanged_is_not_highlighted() {
        let t0 = Instant::now();
        let mut changes = Changes::default();
        let ms = Duration::from_millis;
        changes.observe(&[node(Role::Follower, 4, Some(1))], t0);
        let gone = changes.observe(&[Err(Unanswered::Down)], t0 + ms(200));
        assert_eq!(gone.nodes, [Changed::default()]);
        let back = changes.observe(&[node(Role::Follower, 4, Some(1))], t0 + ms(400));
        assert_eq!(back.nodes, [Changed::default()]);
        let moved_on = changes.observe(&[node(Role::Follower, 6, Some(2))], t0 + ms(600));
        assert!(moved_on.nodes[0].term && moved_on.nodes[0].leader);
    }
}
