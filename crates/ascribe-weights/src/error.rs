//! Why a path could not be turned into a weight manifest.

use std::io;
use std::path::{Path, PathBuf};

/// Why [`crate::hash_path`] refused to produce a manifest.
///
/// Each message is lowercase, names the path at fault and says what to do next. The hasher
/// never falls back to a different digest: it fails instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The path given does not exist.
    #[error("{path} does not exist; check the path and hash again")]
    NotFound {
        /// The path that was given.
        path: PathBuf,
    },
    /// A symbolic link, as the path given or anywhere below it. Links are never followed,
    /// so that the manifest always describes the files that were named.
    #[error(
        "{path} is a symbolic link, which ascribe does not follow; {}",
        link_advice(.resolved.as_deref())
    )]
    Symlink {
        /// The link.
        path: PathBuf,
        /// Where the link leads when fully resolved, if it leads anywhere.
        resolved: Option<PathBuf>,
    },
    /// A directory with no entries. The manifest lists files only, so a tree with an empty
    /// directory and one without it would get the same id.
    #[error(
        "{path} is an empty directory; remove it, or put the model's files in it, and hash again"
    )]
    EmptyDirectory {
        /// The empty directory.
        path: PathBuf,
    },
    /// Something that is neither a regular file nor a directory (socket, fifo, device).
    #[error(
        "{path} is a {kind}, not a regular file; move it out of the model directory and hash again"
    )]
    NotRegularFile {
        /// The special file.
        path: PathBuf,
        /// What it is: `socket`, `fifo`, `device` or `special file`.
        kind: &'static str,
    },
    /// A file or directory name that is not valid UTF-8, which the manifest cannot record.
    #[error("{path} has a name that is not valid utf-8; rename it to utf-8 and hash again")]
    NonUtf8Name {
        /// The path, shown lossily.
        path: PathBuf,
    },
    /// A path with no file name (such as `..` resolving to a file), so no manifest path.
    #[error("{path} has no file name; pass the path of the file itself")]
    NoFileName {
        /// The path that was given.
        path: PathBuf,
    },
    /// A file or directory that could not be listed, opened or read.
    #[error("cannot read {path}: {cause}; check that it exists and is readable, then hash again")]
    Unreadable {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        cause: io::Error,
    },
    /// A file that changed (size, modification time or identity) while it was being hashed,
    /// so its digest describes no version of it.
    #[error(
        "{path} changed while it was being hashed ({detail}); \
         wait until nothing writes to it and hash again"
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// What was seen to change.
        detail: String,
    },
    /// The manifest could not be encoded as canonical JSON; a bug, never expected.
    #[error("cannot encode the manifest as canonical json: {cause}; please report this bug")]
    Canonical {
        /// The encoder's error.
        cause: serde_json::Error,
    },
}

impl WeightsError {
    /// The path the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::NotFound { path }
            | Self::Symlink { path, .. }
            | Self::EmptyDirectory { path }
            | Self::NotRegularFile { path, .. }
            | Self::NonUtf8Name { path }
            | Self::NoFileName { path }
            | Self::Unreadable { path, .. }
            | Self::Changed { path, .. } => Some(path),
            Self::Canonical { .. } => None,
        }
    }

    pub(crate) fn unreadable(path: &Path, cause: io::Error) -> Self {
        Self::Unreadable {
            path: path.to_path_buf(),
            cause,
        }
    }

    pub(crate) fn changed(path: &Path, detail: String) -> Self {
        Self::Changed {
            path: path.to_path_buf(),
            detail,
        }
    }

    pub(crate) fn symlink(path: &Path) -> Self {
        Self::Symlink {
            path: path.to_path_buf(),
            resolved: std::fs::canonicalize(path).ok(),
        }
    }
}

fn link_advice(resolved: Option<&Path>) -> String {
    match resolved {
        Some(target) => format!(
            "pass the resolved path ({}) instead, or replace the link with a copy of it",
            target.display()
        ),
        None => "it leads nowhere (a broken link): remove it, or pass the resolved path of the \
                 file it should name"
            .to_owned(),
    }
}
