//! How `raft-lab add-node`, `remove-node` and `replace-node` ask the running `raft-lab cluster`
//! to start or stop a node: the node must be the cluster's child (its log in `cluster.log`,
//! stopped with the rest by Ctrl-C), so the command asks over a Unix socket in the cluster's
//! data dir (`cluster.sock`, guarded by the data dir's permissions like the secret beside it).
//!
//! One request per connection, one line each way: `add-node` (answered `ok N`: node N joined
//! the proxy and runs, empty, not yet in the configuration) or `retire N` (answered `ok`: node
//! N was stopped and removed from the proxy); `error: WHY` otherwise.

use crate::cluster::Cluster;
use crate::cluster_file::ClusterFile;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The socket's name in the cluster's data dir.
pub const FILE_NAME: &str = "cluster.sock";

/// Serves requests on `dir`/cluster.sock for `cluster` on a thread of its own, rewriting
/// `dir`/layout.json (`file`) when a node joins. The socket file goes when the process ends.
pub fn serve(dir: &Path, cluster: Arc<Mutex<Cluster>>, mut file: ClusterFile) -> io::Result<()> {
    let path = dir.join(FILE_NAME);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let dir = dir.to_path_buf();
    std::thread::Builder::new()
        .name("cluster-socket".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &cluster, &mut file, &dir);
            }
        })?;
    Ok(())
}

/// Removes the socket file (the cluster stopped).
pub fn remove(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILE_NAME));
}

fn answer(
    stream: UnixStream,
    cluster: &Mutex<Cluster>,
    file: &mut ClusterFile,
    dir: &Path,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let reply = match words[..] {
        ["add-node"] => {
            let mut cluster = cluster.lock().unwrap();
            let id = cluster.joined();
            match cluster.add_node(id) {
                Ok(()) => {
                    file.layout = cluster.layout().clone();
                    match file.write(dir) {
                        Ok(()) => format!("ok {id}"),
                        Err(e) => format!("error: node {id} runs, but layout.json: {e}"),
                    }
                }
                Err(e) => format!("error: {e}"),
            }
        }
        ["retire", id] => match id.parse::<usize>() {
            Ok(id) if id < cluster.lock().unwrap().joined() => {
                match cluster.lock().unwrap().retire(id) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("error: {e}"),
                }
            }
            _ => format!("error: there is no node {id}"),
        },
        _ => format!("error: unknown request {:?}", line.trim()),
    };
    (&stream).write_all(format!("{reply}\n").as_bytes())
}

/// Sends one request to the cluster whose data dir holds `secret_file`; the answer after `ok`.
pub fn request(secret_file: &Path, line: &str) -> Result<String, String> {
    let dir = secret_file
        .parent()
        .map_or_else(PathBuf::new, Path::to_path_buf);
    let path = dir.join(FILE_NAME);
    let stream = UnixStream::connect(&path).map_err(|e| {
        format!(
            "cannot reach the running cluster at {} ({e}): is 'just cluster' running?",
            path.display()
        )
    })?;
    // A node's start takes a few seconds at most (the cluster waits for its control channel).
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    (&stream)
        .write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let reply = reply.trim();
    match reply.strip_prefix("ok") {
        Some(rest) => Ok(rest.trim().to_string()),
        None => Err(reply.strip_prefix("error: ").unwrap_or(reply).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cluster_is_said_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let err = request(&dir.path().join("secret"), "add-node").unwrap_err();
        assert!(err.contains("is 'just cluster' running?"), "{err}");
    }
}
