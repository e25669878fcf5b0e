//! The numbers of the stress report: a failure rate with its 95% confidence interval, and run
//! times.

use std::time::Duration;

/// z for a two-sided 95% interval: the 97.5th percentile of the standard normal.
const Z95: f64 = 1.959_963_984_540_054;

/// The 95% Wilson score interval of a failure rate of `failures` out of `runs`, as fractions
/// in [0, 1]; `None` for no runs. Wilson rather than the textbook `p ± z·sqrt(p(1-p)/n)`
/// because stress runs mostly see 0 or a few failures, where that interval collapses to
/// [0, 0] and tells nothing; Wilson's 0/20 is [0, 16.1%]: "fails at most about 1 run in 6".
pub fn wilson_interval(failures: u64, runs: u64) -> Option<(f64, f64)> {
    if runs == 0 {
        return None;
    }
    let n = runs as f64;
    let p = failures as f64 / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // The clamps only absorb rounding: mathematically the interval lies inside [0, 1].
    Some(((center - half).max(0.0), (center + half).min(1.0)))
}

/// Mean and max of run times; `None` for none.
pub fn mean_and_max(times: &[Duration]) -> Option<(Duration, Duration)> {
    let max = times.iter().max()?;
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    Some((mean, *max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_interval(failures: u64, runs: u64, low: f64, high: f64) {
        let (l, h) = wilson_interval(failures, runs).unwrap();
        assert!(
            (l - low).abs() < 5e-5 && (h - high).abs() < 5e-5,
            "{failures}/{runs}: got [{l:.5}, {h:.5}], want [{low}, {high}]"
        );
    }

    // Newcombe, "Two-sided confidence intervals for the single proportion", Statistics in
    // Medicine 17 (1998), Table I, method 3 (score interval without continuity correction).
    #[test]
    fn newcombes_reference_values() {
        assert_interval(81, 263, 0.2553, 0.3662);
        assert_interval(15, 148, 0.0624, 0.1605);
        assert_interval(1, 29, 0.0061, 0.1718);
    }

    #[test]
    fn no_failures_still_bounds_the_rate_from_above() {
        assert_interval(0, 20, 0.0, 0.1611);
        // One clean run says little: the rate may still be up to 79%.
        assert_interval(0, 1, 0.0, 0.7935);
    }

    #[test]
    fn all_failures_mirror_no_failures() {
        assert_interval(20, 20, 1.0 - 0.1611, 1.0);
    }

    #[test]
    fn no_runs_have_no_interval() {
        assert_eq!(wilson_interval(0, 0), None);
    }

    #[test]
    fn mean_and_max_of_times() {
        let ms = Duration::from_millis;
        assert_eq!(
            mean_and_max(&[ms(100), ms(300), ms(200)]),
            Some((ms(200), ms(300)))
        );
        assert_eq!(mean_and_max(&[]), None);
    }
}
