//! How the commands that talk to a running `raft-lab cluster` (`status`, `watch`, `kv`, `submit`,
//! `transfer`, `dashboard`) find it: the cluster writes where each of its processes listens to
//! `layout.json` beside its secret, so a cluster on another base port or in network namespaces
//! is found without being told.

use crate::cluster::{Layout, DEFAULT_BASE_PORT, MAX_NODES};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// The file's name, in the cluster's data dir (beside `secret`).
pub const FILE_NAME: &str = "layout.json";

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// `raft-lab cluster --base-port`.
    pub base_port: u16,
    /// What the nodes' datagrams carry (`raft-node run --cluster-id`; 1 if the file omits it).
    #[serde(default = "default_cluster_id")]
    pub cluster_id: u64,
    pub layout: Layout,
    /// A sharded system (`raft-lab cluster --groups N`): how many replica groups, of how many
    /// servers each, behind the controllers (`shardtest`'s process layout). Absent: one Raft
    /// cluster of every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<Sharded>,
}

/// The replica groups of a sharded system: group gi is gid 100+gi, its server i is process
/// `shardtest::NCTRLERS + gi·per_group + i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sharded {
    pub groups: usize,
    pub per_group: usize,
}

impl ClusterFile {
    /// Writes it into `dir` whole (through a temporary file), replacing any earlier one.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, dir.join(FILE_NAME))
    }

    /// Removes it from `dir` (the cluster stopped).
    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(FILE_NAME));
    }

    fn read(path: &Path) -> Result<Option<ClusterFile>, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                format!(
                    "{}: {e} (delete it, or restart the cluster)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

/// `raft-lab cluster`'s, and raft-node's default.
fn default_cluster_id() -> u64 {
    1
}

/// The cluster a client command talks to: the one `layout.json` beside `secret_file` describes,
/// unless `base_port` (`--base-port`, `RAFT_LAB_BASE_PORT`) names another base; then, or without
/// the file, `raft-lab cluster`'s well-known loopback ports from `base_port` (7000 if not given),
/// for [`MAX_NODES`] nodes.
pub fn resolve(secret_file: &Path, base_port: Option<u16>) -> Result<ClusterFile, String> {
    let path = secret_file
        .parent()
        .map_or_else(|| PathBuf::from(FILE_NAME), |dir| dir.join(FILE_NAME));
    match ClusterFile::read(&path)? {
        Some(file) if base_port.is_none_or(|base| base == file.base_port) => Ok(file),
        _ => {
            let base_port = base_port.unwrap_or(DEFAULT_BASE_PORT);
            Ok(ClusterFile {
                base_port,
                cluster_id: default_cluster_id(),
                layout: Layout::well_known(MAX_NODES, base_port),
                shards: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_the_cluster_unless_another_base_port_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        let layout = |base_port| resolve(&secret, base_port).map(|file| file.layout);
        let loopback = |base| Layout::well_known(MAX_NODES, base);
        assert_eq!(layout(None).unwrap(), loopback(7000));
        assert_eq!(layout(Some(8000)).unwrap(), loopback(8000));

        let written = ClusterFile {
            base_port: 8000,
            cluster_id: 7,
            layout: Layout::well_known(3, 8000),
            shards: None,
        };
        written.write(dir.path()).unwrap();
        assert_eq!(resolve(&secret, None).unwrap(), written);
        assert_eq!(resolve(&secret, Some(8000)).unwrap(), written);
        assert_eq!(layout(Some(9000)).unwrap(), loopback(9000));

        // Written by hand (a deployment): the cluster id may be left out.
        let by_hand = r#"{"base_port": 8000, "layout": {"nodes": ["10.0.0.1:7000"],
            "faces": ["10.0.0.1:7000"], "controls": ["10.0.0.1:7300"],
            "proxy_control": "10.0.0.1:7200", "clerks": [], "clerk_faces": []}}"#;
        std::fs::write(dir.path().join(FILE_NAME), by_hand).unwrap();
        assert_eq!(resolve(&secret, None).unwrap().cluster_id, 1);

        std::fs::write(dir.path().join(FILE_NAME), "{").unwrap();
        let damaged = resolve(&secret, None).unwrap_err();
        assert!(damaged.contains("layout.json"), "{damaged}");
        ClusterFile::remove(dir.path());
        assert_eq!(layout(None).unwrap(), loopback(7000));
    }
}
