//! The sharded nemesis's faults: the shapes a system of several Raft groups has that one cluster
//! has not (a whole group down, a group cut from the controllers or from the group it hands a
//! shard to), and the usual ones on the whole system. Groups are numbered 0.. (gid 100 + g) and
//! their servers as in [`crate::shardtest`]: controllers first, then each group's servers.

use crate::shardtest::{gid_of, process, NCTRLERS};
use rand::rngs::SmallRng;
use rand::Rng;
use std::fmt;

/// Servers in each replica group of the sharded nemesis (a minority is one).
pub const GROUP_SIZE: usize = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardFault {
    /// SIGKILL of every server of a group; restarted at the heal.
    KillGroup(usize),
    /// SIGKILL of one server of a group (a minority); restarted at the heal.
    KillServer { group: usize, server: usize },
    /// SIGKILL of every process, controllers included, then a restart.
    KillAll,
    /// Every link between a group's servers and the controllers cut: it cannot learn the next
    /// configuration.
    CutFromCtrlers(usize),
    /// Every link between two groups' servers cut: shards cannot pass between them.
    CutBetween(usize, usize),
    /// One server of a group cut from the rest of its group (its leader, maybe).
    IsolateServer { group: usize, server: usize },
    /// The lab's unreliable network, with long reordering, on every link.
    Unreliable,
}

impl fmt::Display for ShardFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardFault::KillGroup(g) => write!(f, "SIGKILL group {}", gid_of(*g)),
            ShardFault::KillServer { group, server } => {
                write!(f, "SIGKILL server-{}-{server}", gid_of(*group))
            }
            ShardFault::KillAll => write!(f, "SIGKILL every process, restart"),
            ShardFault::CutFromCtrlers(g) => {
                write!(f, "cut group {} from the controllers", gid_of(*g))
            }
            ShardFault::CutBetween(a, b) => {
                write!(f, "cut group {} from group {}", gid_of(*a), gid_of(*b))
            }
            ShardFault::IsolateServer { group, server } => {
                write!(f, "isolate server-{}-{server} in its group", gid_of(*group))
            }
            ShardFault::Unreliable => write!(f, "unreliable network, long reordering"),
        }
    }
}

impl ShardFault {
    /// The fault's kind, for the report's table.
    pub fn kind(&self) -> &'static str {
        match self {
            ShardFault::KillGroup(_) => "kill group",
            ShardFault::KillServer { .. } => "kill server",
            ShardFault::KillAll => "kill all",
            ShardFault::CutFromCtrlers(_) => "cut from controllers",
            ShardFault::CutBetween(..) => "cut between groups",
            ShardFault::IsolateServer { .. } => "isolate server",
            ShardFault::Unreliable => "unreliable",
        }
    }

    /// The directed links (between processes) this fault cuts; none for the faults that are
    /// not cuts.
    pub fn cuts(&self) -> Vec<(usize, usize)> {
        let servers = |g: usize| (0..GROUP_SIZE).map(move |i| process(GROUP_SIZE, g, i));
        let across = |a: Vec<usize>, b: Vec<usize>| {
            let mut links = Vec::new();
            for &x in &a {
                for &y in &b {
                    links.push((x, y));
                    links.push((y, x));
                }
            }
            links
        };
        match *self {
            ShardFault::CutFromCtrlers(g) => across(servers(g).collect(), (0..NCTRLERS).collect()),
            ShardFault::CutBetween(a, b) => across(servers(a).collect(), servers(b).collect()),
            ShardFault::IsolateServer { group, server } => {
                let me = process(GROUP_SIZE, group, server);
                across(vec![me], servers(group).filter(|&p| p != me).collect())
            }
            _ => Vec::new(),
        }
    }

    /// The processes this fault kills, of a system of `groups` groups.
    pub fn killed(&self, groups: usize) -> Vec<usize> {
        match *self {
            ShardFault::KillGroup(g) => {
                (0..GROUP_SIZE).map(|i| process(GROUP_SIZE, g, i)).collect()
            }
            ShardFault::KillServer { group, server } => vec![process(GROUP_SIZE, group, server)],
            ShardFault::KillAll => (0..NCTRLERS + groups * GROUP_SIZE).collect(),
            _ => Vec::new(),
        }
    }
}

/// Draws the next fault for a system of `groups` groups.
pub fn draw(rng: &mut SmallRng, groups: usize) -> ShardFault {
    let group = rng.gen_range(0..groups);
    let server = rng.gen_range(0..GROUP_SIZE);
    match rng.gen_range(0..7) {
        0 => ShardFault::KillGroup(group),
        1 => ShardFault::KillServer { group, server },
        2 => ShardFault::KillAll,
        3 => ShardFault::CutFromCtrlers(group),
        4 if groups >= 2 => {
            let other = (group + rng.gen_range(1..groups)) % groups;
            ShardFault::CutBetween(group, other)
        }
        5 => ShardFault::IsolateServer { group, server },
        _ => ShardFault::Unreliable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    #[test]
    fn draws_are_seeded_and_cover_every_kind() {
        let draws = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..300).map(|_| draw(&mut rng, 3)).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        let kinds: BTreeSet<_> = draws(7).iter().map(ShardFault::kind).collect();
        assert_eq!(kinds.len(), 7, "{kinds:?}");
        for fault in draws(8) {
            if let ShardFault::CutBetween(a, b) = fault {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn one_group_draws_no_cut_between_groups() {
        let mut rng = SmallRng::seed_from_u64(1);
        assert!((0..300).all(|_| !matches!(draw(&mut rng, 1), ShardFault::CutBetween(..))));
    }

    #[test]
    fn cuts_stay_inside_their_shape() {
        // Group 1 is processes 6, 7, 8; group 2 is 9, 10, 11.
        let cuts = ShardFault::CutBetween(1, 2).cuts();
        assert_eq!(cuts.len(), 18);
        assert!(cuts
            .iter()
            .all(|&(a, b)| (6..9).contains(&a) != (6..9).contains(&b)));
        let cuts = ShardFault::CutFromCtrlers(0).cuts();
        assert!(cuts.contains(&(3, 0)) && cuts.contains(&(0, 5)));
        assert_eq!(cuts.len(), 18);
        let cuts = ShardFault::IsolateServer {
            group: 0,
            server: 1,
        }
        .cuts();
        assert_eq!(
            cuts.iter().collect::<BTreeSet<_>>(),
            [(4, 3), (3, 4), (4, 5), (5, 4)].iter().collect()
        );
        assert_eq!(ShardFault::KillAll.killed(3), (0..12).collect::<Vec<_>>());
        assert_eq!(ShardFault::KillGroup(2).killed(3), vec![9, 10, 11]);
    }
}
