//! The fault rules of one directed link, and the random draws that apply them to a datagram.

use crate::command::{DelayRange, Probability};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// What happens to each datagram on a link. The default is a perfect link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Chance that a datagram is dropped (decided once, before any copy is made).
    pub drop: Probability,
    /// Every datagram, and every copy, waits its own draw from this range.
    pub delay: DelayRange,
    /// Chance that a datagram is delivered twice.
    pub duplicate: Probability,
    /// Chance that a datagram (or copy) waits an extra draw from `reorder_delay`, skewed
    /// toward its minimum as labrpc's long reordering is ([`draw_skewed`]).
    pub reorder: Probability,
    pub reorder_delay: DelayRange,
}

impl Faults {
    /// A perfect link: the forwarder skips every draw.
    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }

    pub fn drops(&self, rng: &mut impl Rng) -> bool {
        happens(self.drop, rng)
    }

    pub fn duplicates(&self, rng: &mut impl Rng) -> bool {
        happens(self.duplicate, rng)
    }

    /// How long one datagram (or copy) waits before it is sent on.
    pub fn draw_delay(&self, rng: &mut impl Rng) -> Duration {
        let mut delay = draw(self.delay, rng);
        if happens(self.reorder, rng) {
            delay += draw_skewed(self.reorder_delay, rng);
        }
        delay
    }

    /// Sets the reordering rule; a zero chance clears it, range included, so that a cleared
    /// rule compares equal to no rule.
    pub fn set_reorder(&mut self, p: Probability, delay: DelayRange) {
        (self.reorder, self.reorder_delay) = if p.is_zero() {
            (Probability::ZERO, DelayRange::ZERO)
        } else {
            (p, delay)
        };
    }
}

fn happens(p: Probability, rng: &mut impl Rng) -> bool {
    !p.is_zero() && rng.gen_bool(p.get())
}

fn draw(range: DelayRange, rng: &mut impl Rng) -> Duration {
    if range.min() == range.max() {
        range.min()
    } else {
        rng.gen_range(range.min()..=range.max())
    }
}

/// labrpc's long-reordering delay, `200 + rand.Intn(1 + rand.Intn(2000))` ms, on any range:
/// MIN plus a uniform draw below a uniform draw of the span. Its mean is a quarter of the span
/// past MIN (700 ms for 200..2200 ms, where a uniform draw would average 1200 ms), and one draw
/// in five stays within MIN + 5% of the span: many reordered messages are still useful.
fn draw_skewed(range: DelayRange, rng: &mut impl Rng) -> Duration {
    let span = range.max() - range.min();
    let bound = rng.gen_range(Duration::ZERO..=span);
    range.min() + rng.gen_range(Duration::ZERO..=bound)
}

/// The rules in force, in the commands' own words: `drop 0.1, delay 0ms..13ms`.
impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut rules = Vec::new();
        if !self.drop.is_zero() {
            rules.push(format!("drop {}", self.drop));
        }
        if !self.delay.is_zero() {
            rules.push(format!("delay {}", self.delay));
        }
        if !self.duplicate.is_zero() {
            rules.push(format!("duplicate {}", self.duplicate));
        }
        if !self.reorder.is_zero() {
            rules.push(format!("reorder {} {}", self.reorder, self.reorder_delay));
        }
        if rules.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&rules.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn a_perfect_link_draws_nothing() {
        let mut rng = SmallRng::seed_from_u64(1);
        let faults = Faults::default();
        assert!(faults.is_none());
        for _ in 0..1000 {
            assert!(!faults.drops(&mut rng));
            assert!(!faults.duplicates(&mut rng));
            assert_eq!(faults.draw_delay(&mut rng), Duration::ZERO);
        }
    }

    #[test]
    fn delays_stay_within_their_ranges() {
        let mut rng = SmallRng::seed_from_u64(2);
        let ms = Duration::from_millis;
        let mut faults = Faults {
            delay: DelayRange::new(ms(5), ms(10)).unwrap(),
            ..Faults::default()
        };
        faults.set_reorder(
            Probability::new(0.5).unwrap(),
            DelayRange::new(ms(100), ms(200)).unwrap(),
        );
        let (mut short, mut long) = (0, 0);
        for _ in 0..1000 {
            let delay = faults.draw_delay(&mut rng);
            if delay <= ms(10) {
                assert!(delay >= ms(5));
                short += 1;
            } else {
                assert!((ms(105)..=ms(210)).contains(&delay), "{delay:?}");
                long += 1;
            }
        }
        assert!(short > 400 && long > 400, "{short} short, {long} long");
    }

    /// As labrpc's: a quarter of the span past the minimum on average, a fifth of the draws
    /// within 5% of it, none outside the range. (A uniform draw: half the span, a twentieth.)
    #[test]
    fn reorder_delays_are_skewed_toward_the_minimum_as_labrpcs() {
        let mut rng = SmallRng::seed_from_u64(3);
        let ms = Duration::from_millis;
        let mut faults = Faults::default();
        faults.set_reorder(
            Probability::new(1.0).unwrap(),
            DelayRange::new(ms(200), ms(2200)).unwrap(),
        );
        let draws: Vec<Duration> = (0..100_000).map(|_| faults.draw_delay(&mut rng)).collect();
        assert!(draws.iter().all(|d| (ms(200)..=ms(2200)).contains(d)));
        let mean = draws.iter().sum::<Duration>() / draws.len() as u32;
        assert!((ms(690)..=ms(710)).contains(&mean), "mean {mean:?}");
        let near = draws.iter().filter(|&&d| d <= ms(300)).count() as f64 / draws.len() as f64;
        assert!(
            (0.19..=0.21).contains(&near),
            "{near} within 100 ms of the minimum"
        );
    }

    #[test]
    fn clearing_reorder_restores_a_perfect_link() {
        let mut faults = Faults::default();
        faults.set_reorder(Probability::new(0.5).unwrap(), DelayRange::ZERO);
        assert!(!faults.is_none());
        faults.set_reorder(Probability::ZERO, crate::command::LONG_REORDER_DELAY);
        assert!(faults.is_none());
    }

    #[test]
    fn display_lists_the_rules_in_force() {
        let mut faults = Faults {
            drop: crate::command::UNRELIABLE_DROP,
            delay: crate::command::UNRELIABLE_DELAY,
            ..Faults::default()
        };
        assert_eq!(faults.to_string(), "drop 0.1, delay 0ms..13ms");
        faults.set_reorder(Probability::new(0.25).unwrap(), DelayRange::ZERO);
        faults.duplicate = Probability::new(1.0).unwrap();
        assert_eq!(
            faults.to_string(),
            "drop 0.1, delay 0ms..13ms, duplicate 1, reorder 0.25 0ms"
        );
        assert_eq!(Faults::default().to_string(), "none");
    }
}
