//! Log records, the unit of a segment after its header, little-endian:
//!
//! `[payload length: u32][crc32 of the length and payload: u32][payload]`
//!
//! A payload is one of
//! - an entry: `1u8, term: u64, index: u64, command bytes` (the rest of the payload);
//! - a configuration entry: `4u8, term: u64, index: u64`, then the configuration as
//!   [`encode_membership`] writes it (the rest of the payload);
//! - a truncation marker: `2u8, from: u64`, meaning "entries with index >= from are gone";
//! - a base marker: `3u8, first: u64`, meaning "the log starts at index `first`: every entry
//!   before it is in the snapshot". Only compaction writes one, as the first record of the
//!   segment that starts a generation (see the module docs of `storage`).
//!
//! A fixed hand-rolled encoding rather than serde: the disk format must not change when someone
//! adds a field to [`Entry`], and a torn record must be recognisable from its bytes alone.

use super::block::{le_u32, le_u64};
use crate::core::{Entry, EntryKind, Index, Membership, NodeId};
use std::collections::BTreeSet;

pub(super) const FRAME_LEN: usize = 8;
const KIND_ENTRY: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const KIND_BASE: u8 = 3;
const KIND_MEMBERSHIP: u8 = 4;
const ENTRY_FIXED_LEN: usize = 1 + 8 + 8;
/// The payload length of both markers: kind and index.
const MARKER_LEN: usize = 1 + 8;

/// The largest command a record can carry: the payload length is a u32.
pub(super) const MAX_COMMAND_LEN: usize = u32::MAX as usize - ENTRY_FIXED_LEN;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Record {
    Entry(Entry),
    Truncate(Index),
    Base(Index),
}

/// What [`parse`] found at an offset.
#[derive(Debug)]
pub(super) enum Parsed {
    /// A whole record with a good checksum; the next one starts at `end`.
    Record { record: Record, end: usize },
    /// Not a whole record with a good checksum: a write cut short by a crash, or damage.
    Bad(&'static str),
    /// A whole record with a good checksum whose payload this build cannot decode: written by
    /// another format, never by a crash.
    Undecodable(String),
}

/// Appends `entry` as a record. The caller has checked `command.len() <= MAX_COMMAND_LEN`.
pub(super) fn encode_entry(buf: &mut Vec<u8>, entry: &Entry) {
    framed(buf, |buf| {
        let kind = match entry.kind {
            EntryKind::Command => KIND_ENTRY,
            EntryKind::Membership(_) => KIND_MEMBERSHIP,
        };
        buf.push(kind);
        buf.extend_from_slice(&entry.term.to_le_bytes());
        buf.extend_from_slice(&entry.index.to_le_bytes());
        match &entry.kind {
            EntryKind::Command => buf.extend_from_slice(&entry.command),
            EntryKind::Membership(m) => encode_membership(buf, m),
        }
    });
}

/// A configuration: `voters: u32` ids (u32 each), then `learners: u32` ids, then, for C_old,new
/// only (§4.3), `outgoing: u32` ids. Shared by configuration entries and the snapshot file; a
/// configuration that is not joint is written as before joint consensus existed.
pub(super) fn encode_membership(buf: &mut Vec<u8>, membership: &Membership) {
    let outgoing = membership.is_joint().then_some(&membership.outgoing);
    for set in [&membership.voters, &membership.learners]
        .into_iter()
        .chain(outgoing)
    {
        buf.extend_from_slice(&(set.len() as u32).to_le_bytes());
        for id in set {
            buf.extend_from_slice(&id.to_le_bytes());
        }
    }
}

/// The configuration [`encode_membership`] wrote as exactly `bytes`.
pub(super) fn decode_membership(bytes: &[u8]) -> Result<Membership, String> {
    fn set(rest: &mut &[u8]) -> Result<BTreeSet<NodeId>, String> {
        let count = rest.get(..4).ok_or("configuration cut short")?;
        let count = le_u32(count) as usize;
        let len = count
            .checked_mul(4)
            .ok_or("configuration count overflows")?;
        let ids = rest.get(4..4 + len).ok_or("configuration cut short")?;
        let set: BTreeSet<NodeId> = ids.chunks_exact(4).map(le_u32).collect();
        *rest = &rest[4 + len..];
        match set.len() == count {
            true => Ok(set),
            false => Err("configuration repeats an id".to_owned()),
        }
    }
    let mut rest = bytes;
    let (voters, learners) = (set(&mut rest)?, set(&mut rest)?);
    // C_old,new's outgoing voters, present only in a joint configuration.
    let joint = !rest.is_empty();
    let outgoing = match joint {
        true => set(&mut rest)?,
        false => BTreeSet::new(),
    };
    if !rest.is_empty()
        || voters.is_empty()
        || (joint && outgoing.is_empty())
        || !voters.is_disjoint(&learners)
        || !outgoing.is_disjoint(&learners)
    {
        return Err(format!(
            "{} bytes are not a configuration with voters, disjoint from its learners",
            bytes.len()
        ));
    }
    Ok(Membership {
        voters,
        learners,
        outgoing,
    })
}

/// Appends `record` (an entry's command must be within `MAX_COMMAND_LEN`).
pub(super) fn encode(buf: &mut Vec<u8>, record: &Record) {
    match record {
        Record::Entry(entry) => encode_entry(buf, entry),
        Record::Truncate(from) => encode_marker(buf, KIND_TRUNCATE, *from),
        Record::Base(first) => encode_marker(buf, KIND_BASE, *first),
    }
}

fn encode_marker(buf: &mut Vec<u8>, kind: u8, index: Index) {
    framed(buf, |buf| {
        buf.push(kind);
        buf.extend_from_slice(&index.to_le_bytes());
    });
}

fn framed(buf: &mut Vec<u8>, write_payload: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_LEN]);
    write_payload(buf);
    let payload_len = u32::try_from(buf.len() - start - FRAME_LEN)
        .expect("callers keep commands within MAX_COMMAND_LEN");
    buf[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    let crc = checksum(&buf[start..start + 4], &buf[start + FRAME_LEN..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(payload);
    hasher.finalize()
}

/// Reads the record starting at `at` in `bytes` (a segment's contents, `at <= bytes.len()`).
pub(super) fn parse(bytes: &[u8], at: usize) -> Parsed {
    let rest = &bytes[at..];
    if rest.len() < FRAME_LEN {
        return Parsed::Bad("record header cut short");
    }
    let len = le_u32(&rest[..4]) as usize;
    let Some(payload) = rest.get(FRAME_LEN..FRAME_LEN.saturating_add(len)) else {
        return Parsed::Bad("record payload cut short");
    };
    if checksum(&rest[..4], payload) != le_u32(&rest[4..8]) {
        return Parsed::Bad("record fails its checksum");
    }
    match decode_payload(payload) {
        Ok(record) => Parsed::Record {
            record,
            end: at + FRAME_LEN + len,
        },
        Err(reason) => Parsed::Undecodable(reason),
    }
}

fn decode_payload(payload: &[u8]) -> Result<Record, String> {
    match payload.first() {
        Some(&KIND_ENTRY) if payload.len() >= ENTRY_FIXED_LEN => Ok(Record::Entry(Entry::command(
            le_u64(&payload[1..9]),
            le_u64(&payload[9..17]),
            payload[ENTRY_FIXED_LEN..].to_vec(),
        ))),
        Some(&KIND_MEMBERSHIP) if payload.len() >= ENTRY_FIXED_LEN => Ok(Record::Entry(Entry {
            term: le_u64(&payload[1..9]),
            index: le_u64(&payload[9..17]),
            command: Vec::new(),
            kind: EntryKind::Membership(decode_membership(&payload[ENTRY_FIXED_LEN..])?),
        })),
        Some(&KIND_TRUNCATE) if payload.len() == MARKER_LEN => {
            Ok(Record::Truncate(le_u64(&payload[1..9])))
        }
        Some(&KIND_BASE) if payload.len() == MARKER_LEN => Ok(Record::Base(le_u64(&payload[1..9]))),
        Some(&kind) => Err(format!(
            "record of kind {kind} with a {}-byte payload is not one this build writes",
            payload.len()
        )),
        None => Err("record has an empty payload".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind_and_rejects_every_short_prefix() {
        let entry = Entry::command(3, 7, b"hello".to_vec());
        let mut membership = Membership::voters([0, 2, 5]);
        membership.learners.insert(1);
        let config = Entry {
            term: 3,
            index: 8,
            command: Vec::new(),
            kind: EntryKind::Membership(membership),
        };
        // C_old,new (§4.3): its outgoing voters are a third set.
        let joint = Entry {
            index: 9,
            kind: EntryKind::Membership(Membership {
                voters: [0, 1].into(),
                learners: [2].into(),
                outgoing: [0, 5, 7].into(),
            }),
            ..config.clone()
        };
        let mut buf = Vec::new();
        let records = [
            Record::Entry(entry),
            Record::Entry(config),
            Record::Entry(joint),
            Record::Truncate(5),
            Record::Base(11),
        ];
        let mut ends = Vec::new();
        for record in &records {
            encode(&mut buf, record);
            ends.push(buf.len());
        }
        let mut at = 0;
        for (record, expected_end) in records.iter().zip(ends.iter().copied()) {
            match parse(&buf, at) {
                Parsed::Record {
                    record: parsed,
                    end,
                } => {
                    assert_eq!(&parsed, record);
                    assert_eq!(end, expected_end);
                }
                other => panic!("{other:?}"),
            }
            at = expected_end;
        }
        for cut in 0..ends[0] {
            assert!(matches!(parse(&buf[..cut], 0), Parsed::Bad(_)), "cut {cut}");
        }
        for cut in ends[0]..ends[1] {
            let parsed = parse(&buf[..cut], ends[0]);
            assert!(matches!(parsed, Parsed::Bad(_)), "cut {cut}");
        }
    }

    #[test]
    fn a_good_checksum_over_an_unknown_kind_is_undecodable_not_bad() {
        let mut buf = Vec::new();
        framed(&mut buf, |buf| buf.extend_from_slice(&[9, 1, 2]));
        assert!(matches!(parse(&buf, 0), Parsed::Undecodable(_)));
    }
}
