//! CheckQuorum (Raft thesis §6.2): a leader that does not hear from a majority within an
//! election timeout steps down.

use super::helpers::*;
use crate::core::{HardState, Message, MessageBody, ProposeError, Raft, Role, Time};

/// `leader`'s effects at `now`, after firing its timers.
fn tick(leader: &mut Raft, now: Time) -> Vec<Message> {
    leader.tick(now);
    take_synced(leader).messages
}

/// The success reply to an AppendEntries.
fn ack(m: &Message) -> Message {
    let MessageBody::AppendEntries {
        prev_log_index,
        entries,
        ..
    } = &m.body
    else {
        panic!("not an AppendEntries: {m:?}");
    };
    append_ok(m.to, m.from, m.term, prev_log_index + entries.len() as u64)
}

/// §6.2: a leader that hears nothing for a whole election timeout steps down to follower in the
/// same term. Its term and vote are unchanged, nothing is persisted, and it stops accepting
/// commands. Until the timeout ends it leads on.
#[test]
fn a_leader_cut_off_from_the_majority_steps_down() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    let elected = r.now;
    // A new leader counts every follower as heard when it was elected.
    tick(&mut r, elected + ELECTION_MAX - ms(1));
    assert_eq!(r.status().role, Role::Leader);

    let messages = tick(&mut r, elected + ELECTION_MAX);
    assert_eq!(
        (r.status().role, r.status().term, r.status().leader),
        (Role::Follower, term, None)
    );
    assert_eq!(
        r.hard_state,
        HardState {
            current_term: term,
            voted_for: Some(0)
        }
    );
    assert_eq!(messages, vec![]);
    assert_eq!(take_synced(&mut r).persist, None);
    assert_eq!(
        r.propose(b"x".to_vec(), elected + ELECTION_MAX),
        Err(ProposeError::NotLeader { leader: None })
    );
}

/// §6.2: a leader of five that hears from two followers (a majority with itself) keeps leading
/// however long the other two stay silent; once only one answers, it steps down within two
/// election timeouts.
#[test]
fn a_leader_hearing_from_a_majority_stays() {
    let mut r = node(0, 5, 0, &[]);
    let term = elect_and_sync(&mut r);
    let start = r.now;
    let mut answering = vec![1, 2];
    for t in (0..10_000).step_by(50).map(|t| start + ms(t)) {
        for m in tick(&mut r, t) {
            if answering.contains(&m.to) {
                r.step(ack(&m), t);
            }
        }
        assert_eq!((r.status().role, r.status().term), (Role::Leader, term));
    }
    answering.pop();
    let silent_since = r.now;
    for t in (50..=2 * ELECTION_MAX.as_millis() as u64)
        .step_by(50)
        .map(|t| silent_since + ms(t))
    {
        for m in tick(&mut r, t) {
            let append = matches!(m.body, MessageBody::AppendEntries { .. });
            if append && answering.contains(&m.to) {
                r.step(ack(&m), t);
            }
        }
    }
    // Stepped down (it may have timed out since and be asking for pre-votes), term unchanged.
    assert_ne!(r.status().role, Role::Leader);
    assert_eq!(r.status().term, term);
}

/// A leader that has heard from no majority within the minimum election timeout refuses
/// proposals (a newer leader may lead by then), though it still leads until CheckQuorum's window
/// ends; one answer from a follower of three makes a majority again, and it accepts.
#[test]
fn a_leader_out_of_touch_refuses_proposals_until_it_hears_a_majority() {
    let mut r = node(0, 3, 0, &[]);
    let term = elect_and_sync(&mut r);
    let heard = r.now;
    assert!(r
        .propose(b"a".to_vec(), heard + ELECTION_MIN - ms(1))
        .is_ok());
    take_synced(&mut r);
    assert_eq!(
        r.propose(b"b".to_vec(), heard + ELECTION_MIN),
        Err(ProposeError::OutOfTouch {
            within: ELECTION_MIN
        })
    );
    assert_eq!(r.status().role, Role::Leader);
    r.step(append_ok(2, 0, term, 1), heard + ELECTION_MIN + ms(1));
    assert_eq!(
        r.propose(b"b".to_vec(), heard + ELECTION_MIN + ms(1)),
        Ok((2, term))
    );
}
