//! The weight manifest of a self-hosted model, and the checkpoint id that is its digest.
//!
//! A self-hosted checkpoint is named by what its files are, not by what someone calls it.
//! [`hash_path`] takes a single file or a directory (walked recursively) and returns a
//! [`WeightManifest`]: one [`FileRecord`] per regular file, sorted by the bytes of its path,
//! and the checkpoint id.
//!
//! # The checkpoint id
//!
//! For each file the manifest keeps three facts that go into the digest:
//!
//! - `path`: relative to the directory that was hashed, components joined with `/`, UTF-8;
//!   for a single file, its file name;
//! - `size`: its length in bytes;
//! - `sha256`: the SHA-256 of its bytes, lowercase hex.
//!
//! The files are sorted by the bytes of `path` (so `a-b` < `a.b` < `a/b` < `b`), and the id is
//!
//! ```text
//! checkpoint = "sha256:" + lowercase_hex(SHA-256(JCS({"files": [
//!     {"path": <path>, "sha256": <sha256>, "size": <size>}, ...
//! ]})))
//! ```
//!
//! where JCS is the JSON Canonicalization Scheme of RFC 8785: no whitespace, members sorted,
//! strings and numbers in one canonical form. Each file object has exactly those three
//! members and the document has exactly the one member `files`. Nothing else (format facts,
//! times, the directory's own name, permissions) goes in, so the same bytes under the same
//! relative names always give the same id, on any machine.
//!
//! ## Worked example
//!
//! A directory holding `config.json` (the 2 bytes `{}`) and `tokenizer/vocab.txt` (the
//! 6 bytes `hello\n`) has, with
//!
//! - A = `44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a` = SHA-256(`{}`),
//! - B = `5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03` = SHA-256(`hello\n`),
//!
//! the canonical JSON (one line without any whitespace, wrapped here after the first `,`)
//!
//! ```text
//! {"files":[{"path":"config.json","sha256":"A","size":2},
//! {"path":"tokenizer/vocab.txt","sha256":"B","size":6}]}
//! ```
//!
//! whose SHA-256 gives the checkpoint id
//! `sha256:e61cacdb9013b7e8d3de0807658e1cd217fea4ea8227f057be986e6285a92787`:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("config.json"), "{}")?;
//! std::fs::create_dir(dir.path().join("tokenizer"))?;
//! std::fs::write(dir.path().join("tokenizer/vocab.txt"), "hello\n")?;
//!
//! let manifest = ascribe_weights::hash_path(dir.path(), &|_done, _total| {})?;
//! assert_eq!(
//!     manifest.checkpoint,
//!     "sha256:e61cacdb9013b7e8d3de0807658e1cd217fea4ea8227f057be986e6285a92787"
//! );
//! assert_eq!(manifest.files[1].path, "tokenizer/vocab.txt");
//! # Ok(())
//! # }
//! ```
//!
//! # What is refused
//!
//! The hasher never returns a manifest that quietly describes something other than what was
//! asked: a symbolic link anywhere, an empty directory (the manifest lists files only, so it
//! could not tell the tree apart from one without it), a special file, a name that is not
//! UTF-8, a file that cannot be read, and a file that changes while it is read are all
//! [`WeightsError`]s. Every regular file is listed, hidden ones included: hash a directory
//! that holds only the model's files.
//!
//! # Format facts
//!
//! For `.safetensors` and `.gguf` files the manifest also records the [`Format`] and the
//! tensor count read from the header, from the same bytes that are hashed. They are
//! informative only and never part of the id; a malformed header is recorded in
//! [`FileRecord::format_error`], not raised.

#![deny(missing_docs)]

mod error;
mod format;
mod manifest;
mod pool;
mod walk;

use std::path::Path;

pub use error::WeightsError;
pub use format::{Format, MAX_HEADER_BYTES};
pub use manifest::{checkpoint_id, FileRecord, WeightManifest};

/// Hashes a file, or a directory recursively, into its [`WeightManifest`].
///
/// `progress(done, total)` reports bytes: it is called once with `(0, total)` before any file
/// is read, after every read while hashing, and with `(total, total)` at the end of a success.
/// Files are hashed in parallel, so it is called from several worker threads and two calls can
/// arrive slightly out of order; `done` never exceeds `total`. It suits
/// `indicatif::ProgressBar::set_position` directly.
///
/// # Errors
///
/// Any [`WeightsError`]: the path does not exist, holds a symbolic link, an empty directory, a
/// special file or a name that is not UTF-8, a file cannot be read, or a file changes while it
/// is hashed. No partial manifest is returned.
pub fn hash_path(
    path: &Path,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<WeightManifest, WeightsError> {
    let entries = walk::collect(path)?;
    let files = pool::hash_all(&entries, progress)?;
    WeightManifest::from_files(files)
}
