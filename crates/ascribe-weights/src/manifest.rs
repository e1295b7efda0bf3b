//! The manifest and the canonical bytes its checkpoint id is the digest of.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Format, WeightsError};

/// The canonical list of a model's files and the checkpoint id that is its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightManifest {
    /// `sha256:<hex>` of the canonical JSON of the files (see the crate documentation).
    pub checkpoint: String,
    /// One record per regular file, sorted by the bytes of `path`.
    pub files: Vec<FileRecord>,
}

impl WeightManifest {
    /// Sorts `files` by the bytes of their paths and computes their checkpoint id.
    ///
    /// # Errors
    ///
    /// [`WeightsError::Canonical`] if the canonical JSON cannot be produced (never expected).
    pub fn from_files(mut files: Vec<FileRecord>) -> Result<Self, WeightsError> {
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let checkpoint = checkpoint_id(&files)?;
        Ok(Self { checkpoint, files })
    }

    /// The sum of the files' sizes, in bytes.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }
}

/// What the manifest records about one file.
///
/// Only `path`, `size` and `sha256` enter the checkpoint id; the format facts are informative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path relative to the directory hashed, `/`-separated; for a single file, its name.
    pub path: String,
    /// Length in bytes.
    pub size: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// The format announced by the file's extension, if the manifest reads its header.
    pub format: Option<Format>,
    /// Tensors declared by the header; `None` when there is no format or the header is
    /// malformed.
    pub tensor_count: Option<u64>,
    /// Why the header of a file with a `format` could not be read; never a hashing error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_error: Option<String>,
}

/// The checkpoint id of `files`: `sha256:` and the lowercase hex SHA-256 of the RFC 8785
/// canonical JSON `{"files":[{"path":..,"sha256":..,"size":..},..]}`, the files sorted by the
/// bytes of their paths (whatever order they are given in).
///
/// # Errors
///
/// [`WeightsError::Canonical`] if the canonical JSON cannot be produced (never expected).
pub fn checkpoint_id(files: &[FileRecord]) -> Result<String, WeightsError> {
    /// Exactly the members that identify a checkpoint; adding one changes every id.
    #[derive(Serialize)]
    struct Canonical<'a> {
        files: Vec<CanonicalFile<'a>>,
    }
    #[derive(Serialize)]
    struct CanonicalFile<'a> {
        path: &'a str,
        sha256: &'a str,
        size: u64,
    }

    let mut canonical: Vec<CanonicalFile<'_>> = files
        .iter()
        .map(|file| CanonicalFile {
            path: &file.path,
            sha256: &file.sha256,
            size: file.size,
        })
        .collect();
    canonical.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let bytes = serde_jcs::to_vec(&Canonical { files: canonical })
        .map_err(|cause| WeightsError::Canonical { cause })?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, size: u64, sha256: &str) -> FileRecord {
        FileRecord {
            path: path.to_owned(),
            size,
            sha256: sha256.to_owned(),
            format: None,
            tensor_count: None,
            format_error: None,
        }
    }

    const HELLO: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    const BRACES: &str = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const EXAMPLE_ID: &str =
        "sha256:e61cacdb9013b7e8d3de0807658e1cd217fea4ea8227f057be986e6285a92787";

    #[test]
    fn id_of_the_documented_example() {
        let files = [
            record("config.json", 2, BRACES),
            record("tokenizer/vocab.txt", 6, HELLO),
        ];
        assert_eq!(checkpoint_id(&files).expect("id"), EXAMPLE_ID);
    }

    #[test]
    fn id_ignores_input_order_and_format_facts() {
        let mut vocab = record("tokenizer/vocab.txt", 6, HELLO);
        vocab.format = Some(Format::Gguf);
        vocab.tensor_count = Some(3);
        vocab.format_error = Some("whatever".to_owned());
        let manifest = WeightManifest::from_files(vec![vocab, record("config.json", 2, BRACES)])
            .expect("manifest");
        assert_eq!(manifest.checkpoint, EXAMPLE_ID);
        assert_eq!(manifest.files[0].path, "config.json");
        assert_eq!(manifest.total_size(), 8);
    }

    #[test]
    fn sort_is_by_path_bytes_not_components() {
        let manifest = WeightManifest::from_files(vec![
            record("a/b", 0, HELLO),
            record("b", 0, HELLO),
            record("a.b", 0, HELLO),
            record("\u{e9}", 0, HELLO),
            record("a-b", 0, HELLO),
            record("B", 0, HELLO),
        ])
        .expect("manifest");
        let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["B", "a-b", "a.b", "a/b", "b", "\u{e9}"]);
    }

    #[test]
    fn records_serialise_with_null_facts_and_no_empty_error() {
        let mut model = record("m.safetensors", 6, HELLO);
        model.format = Some(Format::Safetensors);
        model.tensor_count = Some(4);
        assert_eq!(
            serde_json::to_string(&model).expect("json"),
            format!(
                r#"{{"path":"m.safetensors","size":6,"sha256":"{HELLO}",{}}}"#,
                r#""format":"safetensors","tensor_count":4"#
            )
        );
        let mut broken = record("x.gguf", 6, HELLO);
        broken.format = Some(Format::Gguf);
        broken.format_error = Some("unsupported gguf version 9".to_owned());
        assert_eq!(
            serde_json::to_string(&broken).expect("json"),
            format!(
                r#"{{"path":"x.gguf","size":6,"sha256":"{HELLO}",{}}}"#,
                r#""format":"gguf","tensor_count":null,"format_error":"unsupported gguf version 9""#
            )
        );
        let plain = serde_json::to_string(&record("a", 6, HELLO)).expect("json");
        assert_eq!(
            plain,
            format!(
                r#"{{"path":"a","size":6,"sha256":"{HELLO}",{}}}"#,
                r#""format":null,"tensor_count":null"#
            )
        );
        let back: FileRecord = serde_json::from_str(&plain).expect("parse");
        assert_eq!(back, record("a", 6, HELLO));
    }
}
