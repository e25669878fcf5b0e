//! The shard controller's configurations (lab 4A): which replica group serves each of the
//! [`NSHARDS`] shards, and the servers of every group. Each Join, Leave or Move makes the next
//! configuration from the last; every replica must make the same one, so everything here
//! iterates in sorted order (`BTreeMap`, sorted vectors), never in a hash map's.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Shards the keys are split into (the lab's `NShards`; `key2shard` maps a key to one).
pub const NSHARDS: usize = 10;

/// A replica group's id. 0 is no group: the shards of configuration 0, before any Join.
pub type Gid = u64;

/// The lab's `Config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Its number: configuration 0 is the initial one, each change makes the next.
    pub num: u64,
    /// The group serving each shard.
    pub shards: [Gid; NSHARDS],
    /// Each group's servers, kept verbatim and in the order they were joined with.
    pub groups: BTreeMap<Gid, Vec<String>>,
}

impl Config {
    /// The next configuration with `servers` joined (a gid already present has its server list
    /// replaced), rebalanced.
    pub fn join(&self, servers: &BTreeMap<Gid, Vec<String>>) -> Config {
        let mut next = self.successor();
        for (&gid, names) in servers {
            next.groups.insert(gid, names.clone());
        }
        next.rebalance();
        next
    }

    /// The next configuration without `gids`, their shards spread over the rest.
    pub fn leave(&self, gids: &[Gid]) -> Config {
        let mut next = self.successor();
        for gid in gids {
            next.groups.remove(gid);
        }
        next.rebalance();
        next
    }

    /// The next configuration with `shard` on `gid`, and nothing else moved (no rebalancing: a
    /// later Join or Leave may undo it).
    pub fn moved(&self, shard: usize, gid: Gid) -> Config {
        let mut next = self.successor();
        next.shards[shard] = gid;
        next
    }

    fn successor(&self) -> Config {
        Config {
            num: self.num + 1,
            ..self.clone()
        }
    }

    /// Spreads the shards over the groups so that shard counts differ by at most one, moving
    /// as few as possible: a group keeps as many of its shards as its share allows, and only
    /// the shards of departed groups (or of gid 0) and a group's excess move. The groups that
    /// hold the most keep the larger shares; ties go to the smaller gid.
    fn rebalance(&mut self) {
        if self.groups.is_empty() {
            self.shards = [0; NSHARDS];
            return;
        }
        let mut owned: BTreeMap<Gid, Vec<usize>> =
            self.groups.keys().map(|&gid| (gid, Vec::new())).collect();
        let mut free = Vec::new();
        for (shard, gid) in self.shards.iter().enumerate() {
            match owned.get_mut(gid) {
                Some(shards) => shards.push(shard),
                None => free.push(shard),
            }
        }
        // Shares: NSHARDS / n each, one more for the first NSHARDS % n in this order.
        let mut order: Vec<Gid> = owned.keys().copied().collect();
        order.sort_by_key(|gid| (std::cmp::Reverse(owned[gid].len()), *gid));
        let n = order.len();
        let share = |rank: usize| NSHARDS / n + usize::from(rank < NSHARDS % n);
        for (rank, gid) in order.iter().enumerate() {
            let shards = owned.get_mut(gid).expect("a group");
            while shards.len() > share(rank) {
                free.push(shards.pop().expect("more than its share"));
            }
        }
        free.sort_unstable();
        let mut free = free.into_iter();
        for (rank, gid) in order.iter().enumerate() {
            let shards = owned.get_mut(gid).expect("a group");
            while shards.len() < share(rank) {
                shards.push(free.next().expect("the shares add up to NSHARDS"));
            }
        }
        for (gid, shards) in owned {
            for shard in shards {
                self.shards[shard] = gid;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(gid: Gid) -> (Gid, Vec<String>) {
        (
            gid,
            vec![format!("server-{gid}-0"), format!("server-{gid}-1")],
        )
    }

    fn joined(config: &Config, gids: &[Gid]) -> Config {
        config.join(&gids.iter().map(|&g| group(g)).collect())
    }

    /// Every shard on a group of the configuration, counts within one of each other (with no
    /// group, every shard on gid 0).
    fn assert_balanced(config: &Config) {
        if config.groups.is_empty() {
            assert_eq!(config.shards, [0; NSHARDS]);
            return;
        }
        let mut counts: BTreeMap<Gid, usize> = config.groups.keys().map(|&g| (g, 0)).collect();
        for gid in config.shards {
            *counts
                .get_mut(&gid)
                .expect("a shard on a group not in the config") += 1;
        }
        let (min, max) = (counts.values().min(), counts.values().max());
        assert!(max.unwrap() - min.unwrap() <= 1, "unbalanced: {counts:?}");
    }

    fn moves(a: &Config, b: &Config) -> usize {
        a.shards
            .iter()
            .zip(&b.shards)
            .filter(|(x, y)| x != y)
            .count()
    }

    #[test]
    fn joins_and_leaves_balance_and_number_the_configurations() {
        let c0 = Config::default();
        let c1 = joined(&c0, &[1]);
        assert_eq!((c1.num, c1.shards), (1, [1; NSHARDS]));
        let c2 = joined(&c1, &[2, 3]);
        assert_eq!(c2.num, 2);
        assert_balanced(&c2);
        let c3 = c2.leave(&[1]);
        assert_eq!(c3.groups.keys().copied().collect::<Vec<_>>(), [2, 3]);
        assert_balanced(&c3);
        let c4 = c3.leave(&[2, 3]);
        assert_eq!((c4.shards, c4.groups.len()), ([0; NSHARDS], 0));
        assert_eq!(c0.shards, [0; NSHARDS], "configuration 0 is unchanged");
    }

    /// A Join moves only what the new group's share needs, a Leave only the leaver's shards.
    #[test]
    fn changes_move_as_few_shards_as_possible() {
        let c = joined(&Config::default(), &[1, 2]);
        let more = joined(&c, &[3]);
        assert_balanced(&more);
        // 5 + 5 → 4 + 3 + 3 or 3 + 4 + 3: the new group gets 3, all taken from the others.
        assert_eq!(moves(&c, &more), 3);
        let fewer = more.leave(&[3]);
        assert_balanced(&fewer);
        assert_eq!(moves(&more, &fewer), 3);
        let mut gids = vec![1, 2, 3];
        let mut config = more;
        for gid in 4..=12 {
            gids.push(gid);
            let next = joined(&config, &[gid]);
            assert_balanced(&next);
            // The new group's share, and nothing else.
            let share = if gids.len() <= NSHARDS {
                NSHARDS / gids.len()
            } else {
                0
            };
            assert!(moves(&config, &next) <= share.max(1), "join of {gid}");
            config = next;
        }
        // More groups than shards: ten serve one shard each, the rest none.
        assert_eq!(config.groups.len(), 12);
    }

    /// Every replica computes the same configuration whatever order it learned the groups in.
    #[test]
    fn rebalancing_is_deterministic() {
        let a = joined(&joined(&Config::default(), &[7, 3]), &[5]);
        let b = joined(&joined(&Config::default(), &[3, 7]), &[5]);
        assert_eq!(a, b);
    }

    /// Random Joins and Leaves: always balanced, and never a group that both gives shards away
    /// and receives some in one change (a move it did not need).
    #[test]
    fn random_changes_stay_balanced_and_move_no_shard_needlessly() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(4);
        let mut config = Config::default();
        for _ in 0..2_000 {
            let next = if config.groups.is_empty() || rng.gen_bool(0.5) {
                let gids: Vec<Gid> = (0..rng.gen_range(1..3))
                    .map(|_| rng.gen_range(1..15))
                    .collect();
                joined(&config, &gids)
            } else {
                let present: Vec<Gid> = config.groups.keys().copied().collect();
                config.leave(&[present[rng.gen_range(0..present.len())]])
            };
            assert_balanced(&next);
            for gid in next.groups.keys() {
                let gave = (0..NSHARDS).any(|s| config.shards[s] == *gid && next.shards[s] != *gid);
                let got = (0..NSHARDS).any(|s| config.shards[s] != *gid && next.shards[s] == *gid);
                assert!(
                    !(gave && got),
                    "group {gid} gave and got: {config:?} -> {next:?}"
                );
            }
            config = next;
        }
    }

    /// A Move is not rebalanced, and a gid that left may join again.
    #[test]
    fn a_move_moves_one_shard_and_a_departed_group_may_return() {
        let c = joined(&Config::default(), &[1, 2]);
        let target = if c.shards[4] == 1 { 2 } else { 1 };
        let m = c.moved(4, target);
        assert_eq!(m.num, c.num + 1);
        assert_eq!(m.shards[4], target);
        assert_eq!(moves(&c, &m), 1);
        let back = joined(&m.leave(&[1]), &[1]);
        assert_balanced(&back);
        assert!(back.groups.contains_key(&1));
    }
}
