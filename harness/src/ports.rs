//! Loopback port blocks that concurrent test processes cannot collide on.
//!
//! A block is a run of [`BLOCK_SIZE`] ports below Linux's ephemeral range (which starts at
//! 32768), so the kernel never hands them out on its own; between our own processes an exclusive
//! `flock` on a per-block file decides ownership. The lock dies with the process, so a crashed
//! test never leaks a block. A port that something else already holds fails the bind check and
//! the block is skipped.

use rand::Rng;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Room for a cluster of `cluster::MAX_NODES` nodes and `cluster::MAX_CLERKS` clerks.
pub const BLOCK_SIZE: u16 = 128;
const FIRST_PORT: u16 = 20_000;
const BLOCKS: u16 = (32_768 - FIRST_PORT) / BLOCK_SIZE;

/// Ports `base .. base + BLOCK_SIZE` on 127.0.0.1, owned while this value lives.
#[derive(Debug)]
pub struct PortBlock {
    base: u16,
    _lock: File,
}

impl PortBlock {
    /// Reserves a free block, trying blocks in random order.
    pub fn reserve() -> io::Result<PortBlock> {
        let dir = std::env::temp_dir().join("raft-lab-ports");
        std::fs::create_dir_all(&dir)?;
        let mut rng = rand::thread_rng();
        for _ in 0..4 * BLOCKS {
            let base = FIRST_PORT + rng.gen_range(0..BLOCKS) * BLOCK_SIZE;
            if let Some(lock) = try_lock(dir.join(format!("{base}.lock")))? {
                if (base..base + BLOCK_SIZE).all(port_is_free) {
                    return Ok(PortBlock { base, _lock: lock });
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free loopback port block in 20000..32767",
        ))
    }

    /// The `i`-th address of the block.
    pub fn addr(&self, i: u16) -> SocketAddr {
        assert!(i < BLOCK_SIZE, "port block has only {BLOCK_SIZE} ports");
        SocketAddr::from(([127, 0, 0, 1], self.base + i))
    }
}

/// An exclusive lock on `path` (created if missing), or `None` if another process holds it.
pub fn try_lock(path: PathBuf) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok((rc == 0).then_some(file))
}

fn port_is_free(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_held_at_once_are_disjoint() {
        let blocks: Vec<_> = (0..8).map(|_| PortBlock::reserve().unwrap()).collect();
        let mut bases: Vec<u16> = blocks.iter().map(|b| b.base).collect();
        bases.sort();
        bases.dedup();
        assert_eq!(bases.len(), blocks.len());
    }

    #[test]
    fn a_released_block_can_be_taken_again() {
        let block = PortBlock::reserve().unwrap();
        let base = block.base;
        drop(block);
        let dir = std::env::temp_dir().join("raft-lab-ports");
        assert!(try_lock(dir.join(format!("{base}.lock")))
            .unwrap()
            .is_some());
    }
}
