//! A sharded system (lab 4) as `raft-lab status` and `watch` show it, from every process's
//! `GetState`: the configuration each replica group has applied, each group's leader (a
//! process, and its Raft id within the group), and each shard's owner and state (serving,
//! receiving, handing off). Processes follow `shardtest`'s layout: the controllers first, then
//! each group's servers.

use crate::cluster_file::Sharded;
use crate::shardtest::{gid_of, process, NCTRLERS};
use crate::watch::frame::RaftGroup;
use raft_node::control::{NodeState, ShardsState};
use raft_node::shardkv::store::ShardState;
use std::fmt::Write;

/// The leader of the highest term among `members` (process indexes), if one answers.
fn leader<'a>(
    nodes: &[Option<&'a NodeState>],
    members: &[usize],
) -> Option<(usize, &'a NodeState)> {
    members
        .iter()
        .filter_map(|&p| Some((p, (*nodes.get(p)?)?)))
        .filter(|(_, s)| s.is_leader)
        .max_by_key(|(_, s)| s.term)
}

fn leader_text(leader: Option<(usize, &NodeState)>) -> String {
    leader.map_or("none".into(), |(p, s)| {
        format!("{p} (n{}, t{})", s.id, s.term)
    })
}

/// One group's view: its leader's, else that of the member that has applied the most.
fn group_view<'a>(nodes: &[Option<&'a NodeState>], members: &[usize]) -> Option<&'a ShardsState> {
    if let Some((_, s)) = leader(nodes, members).filter(|(_, s)| s.shards.is_some()) {
        return s.shards.as_deref();
    }
    members
        .iter()
        .filter_map(|&p| (*nodes.get(p)?)?.shards.as_deref())
        .max_by_key(|v| v.config)
}

fn shard_list(view: &ShardsState, keep: impl Fn(&ShardState) -> bool) -> String {
    let list: Vec<String> = (view.held.iter())
        .filter(|(_, state)| keep(state))
        .map(|(shard, _)| shard.to_string())
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

/// The replica groups' gids and their members' process indexes.
fn replica_groups(sharded: Sharded) -> Vec<(u64, Vec<usize>)> {
    (0..sharded.groups)
        .map(|gi| {
            let members = (0..sharded.per_group)
                .map(|i| process(sharded.per_group, gi, i))
                .collect();
            (gid_of(gi), members)
        })
        .collect()
}

/// Every Raft cluster of the system, named as the tables show them: `ctrl` for the
/// controllers, then each replica group by its gid.
pub fn raft_groups(sharded: Sharded) -> Vec<RaftGroup> {
    let ctrl = RaftGroup {
        name: "ctrl".into(),
        members: (0..NCTRLERS).collect(),
    };
    let groups = replica_groups(sharded)
        .into_iter()
        .map(|(gid, members)| RaftGroup {
            name: gid.to_string(),
            members,
        });
    std::iter::once(ctrl).chain(groups).collect()
}

/// The sharded part of the status: `nodes` by process index (`None`: not answering).
pub fn render(nodes: &[Option<&NodeState>], sharded: Sharded) -> String {
    let mut out = String::new();
    let ctrlers: Vec<usize> = (0..NCTRLERS).collect();
    let groups = replica_groups(sharded);
    let views: Vec<Option<&ShardsState>> = groups
        .iter()
        .map(|(_, members)| group_view(nodes, members))
        .collect();
    let newest = views.iter().flatten().max_by_key(|v| v.config);
    let configs: Vec<u64> = views.iter().flatten().map(|v| v.config).collect();
    let _ = write!(
        out,
        "shards: configuration {}",
        newest.map_or("-".into(), |v| v.config.to_string())
    );
    if let (Some(lo), Some(hi)) = (configs.iter().min(), configs.iter().max()) {
        if lo != hi {
            let _ = write!(out, " (groups at {lo}..{hi})");
        }
    }
    let _ = writeln!(
        out,
        ", controller leader {}",
        leader_text(leader(nodes, &ctrlers))
    );
    let _ = writeln!(
        out,
        "{:>5}  {:<14}  {:>6}  {:<20}  {:<10}  handing off",
        "group", "leader", "config", "serving", "receiving"
    );
    for ((gid, members), view) in groups.iter().zip(&views) {
        let leader = leader_text(leader(nodes, members));
        match view {
            Some(v) => {
                let _ = writeln!(
                    out,
                    "{gid:>5}  {leader:<14}  {:>6}  {:<20}  {:<10}  {}",
                    v.config,
                    shard_list(v, |s| *s == ShardState::Serving),
                    shard_list(v, |s| matches!(s, ShardState::Receiving { .. })),
                    shard_list(v, |s| *s == ShardState::Sending),
                );
            }
            None => {
                let _ = writeln!(out, "{gid:>5}  {leader:<14}  {:>6}  not answering", "-");
            }
        }
    }
    let Some(newest) = newest else {
        return out;
    };
    let _ = writeln!(out, "{:>5}  {:>5}  state", "shard", "owner");
    for (shard, &owner) in newest.owners.iter().enumerate() {
        let held = |gid: u64| {
            let gi = groups.iter().position(|(g, _)| *g == gid)?;
            let view = views[gi]?;
            let state = view
                .held
                .iter()
                .find(|(s, _)| *s == shard)
                .map(|(_, st)| st);
            Some((view.config, state))
        };
        let mut state = match (owner, held(owner)) {
            (0, _) => "no group".to_string(),
            (_, Some((_, Some(ShardState::Serving)))) => "serving".into(),
            (_, Some((_, Some(ShardState::Receiving { next_part })))) => {
                format!("receiving ({next_part} parts in)")
            }
            (_, Some((config, _))) if config < newest.config => {
                format!(
                    "to serve once its group reaches configuration {}",
                    newest.config
                )
            }
            _ => "not held".into(),
        };
        let senders: Vec<String> = (groups.iter().zip(&views))
            .filter(|((gid, _), view)| {
                *gid != owner
                    && view.is_some_and(|v| v.held.contains(&(shard, ShardState::Sending)))
            })
            .map(|((gid, _), _)| gid.to_string())
            .collect();
        if !senders.is_empty() {
            let _ = write!(state, "; {} handing it off", senders.join(", "));
        }
        let owner = if owner == 0 {
            "-".into()
        } else {
            owner.to_string()
        };
        let _ = writeln!(out, "{shard:>5}  {owner:>5}  {state}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::known::known;
    use raft_node::core::Role;

    fn node(p: usize, leader: bool, shards: Option<ShardsState>) -> NodeState {
        let id = if p < NCTRLERS { p } else { (p - NCTRLERS) % 3 } as u32;
        let role = if leader { Role::Leader } else { Role::Follower };
        NodeState {
            shards: shards.map(Box::new),
            ..known(id, role, 2, None)
        }
    }

    /// Configuration 2 moves shard 3 from group 100 to 101: 100 is handing it off, 101 has
    /// two parts of it; group 102 does not answer.
    #[test]
    fn it_shows_owners_states_and_leaders() {
        let mut owners = vec![100; 10];
        owners[3] = 101;
        owners[4] = 101;
        let g100 = ShardsState {
            gid: 100,
            config: 2,
            owners: owners.clone(),
            held: (0..10)
                .filter(|&s| s != 4)
                .map(|s| {
                    (
                        s,
                        if s == 3 {
                            ShardState::Sending
                        } else {
                            ShardState::Serving
                        },
                    )
                })
                .collect(),
        };
        let g101 = ShardsState {
            gid: 101,
            config: 2,
            owners,
            held: vec![
                (3, ShardState::Receiving { next_part: 2 }),
                (4, ShardState::Serving),
            ],
        };
        let states: Vec<NodeState> = (0..12)
            .map(|p| match p {
                3..=5 => node(p, p == 4, Some(g100.clone())),
                6..=8 => node(p, p == 6, Some(g101.clone())),
                _ => node(p, p == 1, None),
            })
            .collect();
        let nodes: Vec<Option<&NodeState>> = (states.iter())
            .enumerate()
            .map(|(p, s)| (p < 9).then_some(s))
            .collect();
        let text = render(
            &nodes,
            Sharded {
                groups: 3,
                per_group: 3,
            },
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "shards: configuration 2, controller leader 1 (n1, t2)"
        );
        assert!(lines[2].starts_with("  100  4 (n1, t2)     "), "{text}");
        assert!(
            lines[2].contains("0,1,2,5,6,7,8,9") && lines[2].ends_with("  3"),
            "{text}"
        );
        assert!(
            lines[3].contains("  6 (n0, t2)  ") && lines[3].contains("  3  "),
            "{text}"
        );
        assert!(lines[4].starts_with("  102  none") && lines[4].ends_with("not answering"));
        assert_eq!(lines[6], "    0    100  serving");
        assert_eq!(
            lines[9],
            "    3    101  receiving (2 parts in); 100 handing it off"
        );
        assert_eq!(lines[10], "    4    101  serving");
    }
}
