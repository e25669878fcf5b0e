//! Reading a run's log (see [`crate::runlog`]): the parser, the per-node column view
//! (`just logs`) and the timeline picture (`just timeline`).

pub mod parse;
pub mod timeline;
pub mod view;
