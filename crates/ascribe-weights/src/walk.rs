//! Listing the regular files under a path, refusing anything a manifest could not describe.

use std::fs::{self, FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use crate::WeightsError;

/// A regular file to hash, as it was when listed.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its path in the manifest: relative, `/`-separated, UTF-8.
    pub(crate) rel: String,
    /// Where to open it.
    pub(crate) path: PathBuf,
    /// Its metadata when listed (links not followed).
    pub(crate) meta: Metadata,
}

/// Lists the regular files of `root`, a file or a directory walked recursively, in a
/// deterministic order (sorted names, depth first), so the first problem found is always the
/// same one.
pub(crate) fn collect(root: &Path) -> Result<Vec<Entry>, WeightsError> {
    // `model/` would resolve a link named `model`; look at the path without trailing `/`.
    let trimmed: PathBuf = root.components().collect();
    let meta = fs::symlink_metadata(&trimmed).map_err(|cause| {
        if cause.kind() == io::ErrorKind::NotFound {
            WeightsError::NotFound {
                path: root.to_path_buf(),
            }
        } else {
            WeightsError::unreadable(root, cause)
        }
    })?;
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        return Err(WeightsError::symlink(&trimmed));
    }
    if file_type.is_file() {
        let name = trimmed
            .file_name()
            .ok_or_else(|| WeightsError::NoFileName {
                path: root.to_path_buf(),
            })?;
        let rel = name.to_str().ok_or_else(|| WeightsError::NonUtf8Name {
            path: root.to_path_buf(),
        })?;
        return Ok(vec![Entry {
            rel: rel.to_owned(),
            path: trimmed.clone(),
            meta,
        }]);
    }
    if !file_type.is_dir() {
        return Err(WeightsError::NotRegularFile {
            path: root.to_path_buf(),
            kind: special_kind(&file_type),
        });
    }

    let mut files = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let mut children = Vec::new();
        for child in fs::read_dir(&dir).map_err(|cause| WeightsError::unreadable(&dir, cause))? {
            children.push(child.map_err(|cause| WeightsError::unreadable(&dir, cause))?);
        }
        if children.is_empty() {
            return Err(WeightsError::EmptyDirectory { path: dir });
        }
        children.sort_by_key(fs::DirEntry::file_name);
        let mut subdirs = Vec::new();
        for child in children {
            let path = child.path();
            let name = child.file_name();
            let Some(name) = name.to_str() else {
                return Err(WeightsError::NonUtf8Name { path });
            };
            let rel = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            let meta = fs::symlink_metadata(&path)
                .map_err(|cause| WeightsError::unreadable(&path, cause))?;
            let file_type = meta.file_type();
            if file_type.is_symlink() {
                return Err(WeightsError::symlink(&path));
            } else if file_type.is_dir() {
                subdirs.push((path, rel));
            } else if file_type.is_file() {
                files.push(Entry { rel, path, meta });
            } else {
                return Err(WeightsError::NotRegularFile {
                    path,
                    kind: special_kind(&file_type),
                });
            }
        }
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(files)
}

#[cfg(unix)]
fn special_kind(file_type: &FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_socket() {
        "socket"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &FileType) -> &'static str {
    "special file"
}
