//! Datagrams waiting out a delay, soonest first, in buffers that are reused.

use crate::endpoint::Endpoint;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

pub struct DelayQueue {
    heap: BinaryHeap<Delayed>,
    /// Buffers of datagrams already sent, kept for the next ones so that a steady flow of
    /// delayed traffic allocates nothing. It never holds more than the most datagrams that were
    /// ever waiting at once.
    spare: Vec<Vec<u8>>,
    /// Breaks ties between equal due times, so a fixed delay keeps the arrival order.
    next_seq: u64,
}

pub struct Delayed {
    pub due: Instant,
    seq: u64,
    pub from: Endpoint,
    pub to: Endpoint,
    pub payload: Vec<u8>,
}

impl DelayQueue {
    pub fn new() -> DelayQueue {
        DelayQueue {
            heap: BinaryHeap::new(),
            spare: Vec::new(),
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn push(&mut self, due: Instant, from: Endpoint, to: Endpoint, datagram: &[u8]) {
        let mut payload = self.spare.pop().unwrap_or_default();
        payload.clear();
        payload.extend_from_slice(datagram);
        self.heap.push(Delayed {
            due,
            seq: self.next_seq,
            from,
            to,
            payload,
        });
        self.next_seq += 1;
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|delayed| delayed.due)
    }

    /// The soonest datagram if it is due by `now`; hand its buffer back with [`Self::recycle`].
    pub fn pop_due(&mut self, now: Instant) -> Option<Delayed> {
        if self.next_due()? <= now {
            self.heap.pop()
        } else {
            None
        }
    }

    pub fn recycle(&mut self, payload: Vec<u8>) {
        self.spare.push(payload);
    }
}

/// Reversed, so that std's max-heap yields the earliest (due, seq) first.
impl Ord for Delayed {
    fn cmp(&self, other: &Delayed) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Delayed) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Delayed) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Delayed {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use Endpoint::{Clerk, Node};

    fn drain(queue: &mut DelayQueue, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(delayed) = queue.pop_due(now) {
            out.push(delayed.payload[0]);
            queue.recycle(delayed.payload);
        }
        out
    }

    #[test]
    fn earliest_first_and_arrival_order_on_ties() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut queue = DelayQueue::new();
        for (ms, byte) in [(30, 1), (10, 2), (20, 3), (10, 4), (20, 5), (10, 6)] {
            queue.push(at(ms), Node(0), Node(1), &[byte]);
        }
        assert_eq!(queue.next_due(), Some(at(10)));
        assert!(drain(&mut queue, at(5)).is_empty());
        assert_eq!(drain(&mut queue, at(20)), [2, 4, 6, 3, 5]);
        assert_eq!(queue.len(), 1);
        assert_eq!(drain(&mut queue, at(30)), [1]);
        assert_eq!(queue.next_due(), None);
    }

    #[test]
    fn buffers_are_reused() {
        let now = Instant::now();
        let mut queue = DelayQueue::new();
        queue.push(now, Node(0), Node(1), &[7; 1000]);
        let delayed = queue.pop_due(now).unwrap();
        let buffer = delayed.payload.as_ptr();
        queue.recycle(delayed.payload);
        queue.push(now, Clerk(1), Node(0), &[8; 10]);
        let delayed = queue.pop_due(now).unwrap();
        assert_eq!(delayed.payload.as_ptr(), buffer);
        assert_eq!(
            (delayed.from, delayed.to, &delayed.payload[..]),
            (Clerk(1), Node(0), &[8; 10][..])
        );
    }
}
