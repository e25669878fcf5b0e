//! Replacing a whole file so that a crash leaves either the old or the new contents: write a
//! temporary file, fsync it, rename it over the target, fsync the directory. A crash before the
//! rename leaves the temporary file behind, possibly cut short, and the old target intact;
//! [`remove_stray`] clears it on open.

use super::error::StorageError;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

/// Makes `dir/name` hold `bytes`, via `dir/tmp_name`; durable when this returns.
pub(super) fn replace(
    dir: &Path,
    dir_handle: &File,
    name: &str,
    tmp_name: &str,
    bytes: &[u8],
) -> Result<(), StorageError> {
    let tmp = dir.join(tmp_name);
    let mut file = File::create(&tmp).map_err(StorageError::io(&tmp, "create"))?;
    file.write_all(bytes)
        .map_err(StorageError::io(&tmp, "write"))?;
    file.sync_all().map_err(StorageError::io(&tmp, "fsync"))?;
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(StorageError::io(&path, "rename the temporary file over"))?;
    dir_handle
        .sync_all()
        .map_err(StorageError::io(dir, "fsync directory"))
}

/// Removes `dir/tmp_name` if a crash before its rename left it; the target still holds what
/// the last completed replace wrote.
pub(super) fn remove_stray(dir: &Path, tmp_name: &str) -> Result<(), StorageError> {
    let tmp = dir.join(tmp_name);
    match fs::remove_file(&tmp) {
        Ok(()) => {
            log::info!(
                "{}: removed, left by a crash before its rename",
                tmp.display()
            );
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(&tmp, "remove")(e)),
    }
}
