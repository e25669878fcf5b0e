//! The stress runner behind `raft-stress` (`just stress`): builds the test executables, runs
//! the chosen tests many times in parallel, each run in its own process group and directory,
//! and reports failure rates with confidence intervals.

pub mod discovery;
pub mod lab_report;
pub mod progress;
pub mod report;
pub mod runner;
pub mod stats;
