//! The nemesis's faults (Jepsen's nemeses, on netproxy and the node processes): what each does
//! and how it is undone. Which fault comes next, and whom it hits, is drawn from the run's seed.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::fmt;

/// One fault, with its victims already drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Two random halves that cannot talk to each other (either may hold the majority).
    Halves(Vec<usize>, Vec<usize>),
    /// The leader alone on one side.
    IsolateLeader(usize),
    /// Links cut in one direction only: `from -> to` is down, `to -> from` is up.
    OneWay(Vec<(usize, usize)>),
    /// Two halves joined by one node that reaches both (the node in `bridge`).
    Bridge {
        left: Vec<usize>,
        bridge: usize,
        right: Vec<usize>,
    },
    /// Each node reaches only its two neighbours in this order.
    Ring(Vec<usize>),
    /// The lab's unreliable network, with long reordering, on every link.
    Unreliable,
    /// SIGKILL of these nodes (a minority, or the leader); restarted at the heal.
    Kill(Vec<usize>),
    /// SIGKILL of every node at once, then a restart: what was fsynced is all that is left.
    KillAll,
    /// SIGSTOP of one node (its timers fire late when it resumes); SIGCONT at the heal.
    Pause(usize),
    /// The leader asked to hand leadership to `to` (§3.10), with the faults of the others:
    /// proposals stop while it lasts, and the new leader must lose nothing.
    Transfer { from: usize, to: usize },
    /// A voter taken out of the configuration (§4.1; the leader too, §4.2.2); it keeps running,
    /// and must not disturb the others (§4.2.3).
    RemoveVoter(usize),
    /// A node that does not vote added: a learner first, promoted once caught up (§4.2.1). A
    /// spare id starts its process on an empty data dir; a removed node rejoins with its log.
    AddVoter(usize),
    /// Several voters replaced at once by joint consensus (§4.3): these become the voters.
    Joint(Vec<usize>),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Halves(a, b) => write!(f, "halves {a:?} | {b:?}"),
            Fault::IsolateLeader(l) => write!(f, "isolate leader n{l}"),
            Fault::OneWay(links) => {
                write!(f, "one-way cuts")?;
                for (from, to) in links {
                    write!(f, " n{from}->n{to}")?;
                }
                Ok(())
            }
            Fault::Bridge {
                left,
                bridge,
                right,
            } => write!(f, "bridge {left:?} -n{bridge}- {right:?}"),
            Fault::Ring(order) => write!(f, "ring {order:?}"),
            Fault::Unreliable => write!(f, "unreliable network, long reordering"),
            Fault::Kill(nodes) => write!(f, "SIGKILL {nodes:?}"),
            Fault::KillAll => write!(f, "SIGKILL every node, restart"),
            Fault::Pause(n) => write!(f, "SIGSTOP n{n}"),
            Fault::Transfer { from, to } => write!(f, "transfer leadership n{from} -> n{to}"),
            Fault::RemoveVoter(n) => write!(f, "remove voter n{n}, left running"),
            Fault::AddVoter(n) => write!(f, "add voter n{n} (a learner, promoted once caught up)"),
            Fault::Joint(voters) => write!(f, "joint change to voters {voters:?}"),
        }
    }
}

impl Fault {
    /// The fault's kind, for the report's table.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Halves(..) => "halves",
            Fault::IsolateLeader(_) => "isolate leader",
            Fault::OneWay(_) => "one-way cuts",
            Fault::Bridge { .. } => "bridge",
            Fault::Ring(_) => "ring",
            Fault::Unreliable => "unreliable",
            Fault::Kill(_) => "kill",
            Fault::KillAll => "kill all",
            Fault::Pause(_) => "pause",
            Fault::Transfer { .. } => "transfer",
            Fault::RemoveVoter(_) => "remove voter",
            Fault::AddVoter(_) => "add voter",
            Fault::Joint(_) => "joint change",
        }
    }
}

/// Draws the next fault for a cluster whose configuration has `voters` and whose leader is
/// `leader` (if one is known). Network and process faults hit voters only. `outside` are the
/// ids that may be added (none: no membership faults); a removal or a joint change keeps at
/// least three voters, so that a minority can still fail.
pub fn draw(
    rng: &mut SmallRng,
    voters: &[usize],
    outside: &[usize],
    leader: Option<usize>,
) -> Fault {
    let n = voters.len();
    let mut nodes = voters.to_vec();
    nodes.shuffle(rng);
    let leader = leader.filter(|l| voters.contains(l)).unwrap_or(nodes[0]);
    match rng.gen_range(0..14) {
        0 => {
            let cut = rng.gen_range(1..n);
            Fault::Halves(nodes[..cut].to_vec(), nodes[cut..].to_vec())
        }
        1 => Fault::IsolateLeader(leader),
        2 => {
            // The leader can send but not hear from some peers, or the reverse.
            let peers: Vec<usize> = nodes.iter().copied().filter(|&i| i != leader).collect();
            let count = rng.gen_range(1..=peers.len());
            let outgoing = rng.gen_bool(0.5);
            let links = peers[..count]
                .iter()
                .map(|&p| if outgoing { (leader, p) } else { (p, leader) })
                .collect();
            Fault::OneWay(links)
        }
        3 if n >= 3 => {
            let half = (n - 1) / 2;
            Fault::Bridge {
                left: nodes[..half].to_vec(),
                bridge: nodes[half],
                right: nodes[half + 1..].to_vec(),
            }
        }
        4 if n >= 4 => Fault::Ring(nodes),
        5 => Fault::Unreliable,
        6 => {
            let count = rng.gen_range(1..=(n - 1) / 2).max(1);
            Fault::Kill(nodes[..count].to_vec())
        }
        7 => Fault::Kill(vec![leader]),
        8 => Fault::KillAll,
        9 => Fault::Transfer {
            from: leader,
            to: *nodes
                .iter()
                .find(|&&i| i != leader)
                .expect("two nodes at least"),
        },
        11 if n > 3 => Fault::RemoveVoter(if rng.gen_bool(0.5) { leader } else { nodes[0] }),
        12 if !outside.is_empty() => Fault::AddVoter(*outside.choose(rng).expect("not empty")),
        13 if !outside.is_empty() => {
            // One or two voters (the leader among them half the time) replaced by as many
            // outsiders, in one joint change.
            let count = rng.gen_range(1..=outside.len().min(2));
            let mut leaving = nodes.clone();
            if rng.gen_bool(0.5) {
                leaving.retain(|&i| i != leader);
                leaving.insert(0, leader);
            }
            let mut joining = outside.to_vec();
            joining.shuffle(rng);
            let mut next: Vec<usize> = (nodes.iter().copied())
                .filter(|i| !leaving[..count].contains(i))
                .chain(joining[..count].iter().copied())
                .collect();
            next.sort_unstable();
            Fault::Joint(next)
        }
        _ => Fault::Pause(if rng.gen_bool(0.5) { leader } else { nodes[0] }),
    }
}

/// Directed links among `n` nodes that a ring in `order` cuts: every pair that are not
/// neighbours.
pub fn ring_cuts(order: &[usize]) -> Vec<(usize, usize)> {
    let n = order.len();
    let position = |node: usize| order.iter().position(|&x| x == node).expect("in the ring");
    let mut cuts = Vec::new();
    for &a in order {
        for &b in order {
            let distance = (position(a) + n - position(b)) % n;
            if a != b && distance != 1 && distance != n - 1 {
                cuts.push((a, b));
            }
        }
    }
    cuts
}

/// Directed links a bridge cuts: every link between the two sides (the bridge reaches both).
pub fn bridge_cuts(left: &[usize], right: &[usize]) -> Vec<(usize, usize)> {
    let mut cuts = Vec::new();
    for &a in left {
        for &b in right {
            cuts.push((a, b));
            cuts.push((b, a));
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_ring_keeps_each_node_two_neighbours() {
        let order = [3, 0, 4, 1, 2];
        let cuts = ring_cuts(&order);
        for a in 0..5 {
            let reached = (0..5)
                .filter(|&b| b != a && !cuts.contains(&(a, b)))
                .count();
            assert_eq!(reached, 2, "node {a}");
        }
        assert!(
            !cuts.contains(&(3, 2)) && !cuts.contains(&(2, 3)),
            "the ring closes"
        );
    }

    #[test]
    fn a_bridge_cuts_only_across() {
        let cuts = bridge_cuts(&[0, 1], &[3, 4]);
        assert_eq!(cuts.len(), 8);
        assert!(!cuts.iter().any(|&(a, b)| a == 2 || b == 2));
    }

    #[test]
    fn draws_are_seeded_and_cover_every_kind() {
        let draws = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..300)
                .map(|_| draw(&mut rng, &[0, 1, 2, 3, 4], &[5, 6], Some(2)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        let kinds: std::collections::BTreeSet<_> = draws(7).iter().map(Fault::kind).collect();
        assert_eq!(kinds.len(), 13, "{kinds:?}");
        for fault in draws(8) {
            if let Fault::Kill(nodes) = &fault {
                assert!(nodes.len() <= 2, "more than a minority killed: {nodes:?}");
            }
            if let Fault::Transfer { from, to } = fault {
                assert!(
                    from == 2 && to != 2,
                    "a transfer from the leader n2 to another node"
                );
            }
            if let Fault::Joint(voters) = &fault {
                let joining = voters.iter().filter(|&&i| i >= 5).count();
                assert!(
                    voters.len() == 5 && (1..=2).contains(&joining),
                    "a joint change replaces one or two voters by outsiders: {voters:?}"
                );
            }
        }
    }

    #[test]
    fn faults_hit_voters_only_and_keep_three() {
        let mut rng = SmallRng::seed_from_u64(3);
        let voters = [0, 2, 5];
        for _ in 0..500 {
            let fault = draw(&mut rng, &voters, &[], None);
            assert!(
                !matches!(
                    fault,
                    Fault::RemoveVoter(_) | Fault::AddVoter(_) | Fault::Joint(_)
                ),
                "three voters and no outsider: no membership change, got {fault}"
            );
            let hit = match &fault {
                Fault::Kill(nodes) | Fault::Ring(nodes) => nodes.clone(),
                Fault::IsolateLeader(i) | Fault::Pause(i) => vec![*i],
                Fault::Halves(a, b) => a.iter().chain(b).copied().collect(),
                _ => continue,
            };
            assert!(hit.iter().all(|i| voters.contains(i)), "{fault}");
        }
    }
}
