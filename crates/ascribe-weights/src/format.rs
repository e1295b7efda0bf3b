//! The headers of `.safetensors` and `.gguf` files: which format, and how many tensors.
//!
//! These facts are informative: they never enter the checkpoint id, and a malformed header is
//! reported as a string rather than an error. The reader is bounded: it never allocates more
//! than [`MAX_HEADER_BYTES`] nor more than the file holds.

use std::fmt;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest safetensors JSON header read, in bytes (100 MB); a longer one is recorded as
/// a format error instead of being read.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The smallest tensor-info record of a GGUF file: name length (u64), dimension count (u32),
/// type (u32), offset (u64), with an empty name and no dimensions.
const GGUF_MIN_TENSOR_INFO: u64 = 24;
/// The smallest metadata key-value record of a GGUF file: key length (u64), value type (u32).
const GGUF_MIN_KV: u64 = 12;

/// A model file format whose header the manifest reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Hugging Face safetensors: an 8-byte little-endian length, then a JSON header.
    Safetensors,
    /// llama.cpp GGUF: magic `GGUF`, a version, then tensor and metadata counts.
    Gguf,
}

impl Format {
    /// The name used in manifests: `safetensors` or `gguf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Safetensors => "safetensors",
            Self::Gguf => "gguf",
        }
    }

    /// The format a file name's extension announces (`.safetensors`, `.gguf`, ASCII case
    /// ignored), if any.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let (_, extension) = name.rsplit_once('.')?;
        if extension.eq_ignore_ascii_case("safetensors") {
            Some(Self::Safetensors)
        } else if extension.eq_ignore_ascii_case("gguf") {
            Some(Self::Gguf)
        } else {
            None
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tensor count, or why the header could not be understood.
pub(crate) type HeaderFacts = Result<u64, String>;

/// Reads the header of a file of `format` and `size` bytes from `reader`, positioned at the
/// start of the file. The outer error is a real read failure; the inner one a malformed header.
pub(crate) fn read_header(
    format: Format,
    reader: &mut impl Read,
    size: u64,
) -> io::Result<HeaderFacts> {
    match format {
        Format::Safetensors => safetensors(reader, size),
        Format::Gguf => gguf(reader, size),
    }
}

fn safetensors(reader: &mut impl Read, size: u64) -> io::Result<HeaderFacts> {
    let mut length = [0u8; 8];
    if !read_full(reader, &mut length)? {
        return Ok(Err(format!(
            "file is {size} bytes, too short for the 8-byte header length"
        )));
    }
    let length = u64::from_le_bytes(length);
    if length > MAX_HEADER_BYTES {
        return Ok(Err(format!(
            "header length {length} exceeds the limit of {MAX_HEADER_BYTES} bytes"
        )));
    }
    let data_len = match size
        .checked_sub(8)
        .and_then(|rest| rest.checked_sub(length))
    {
        Some(data_len) => data_len,
        None => {
            return Ok(Err(format!(
                "header length {length} runs past the end of the {size}-byte file"
            )))
        }
    };
    // Bounded by MAX_HEADER_BYTES and by the file's size, both checked above.
    let mut header = vec![0u8; usize::try_from(length).unwrap_or(usize::MAX)];
    if !read_full(reader, &mut header)? {
        return Ok(Err("file ends inside the header".to_owned()));
    }
    let header: Value = match serde_json::from_slice(&header) {
        Ok(value) => value,
        Err(error) => return Ok(Err(format!("header is not valid json: {error}"))),
    };
    let Some(header) = header.as_object() else {
        return Ok(Err("header is not a json object".to_owned()));
    };
    let mut count = 0u64;
    for (name, tensor) in header {
        if name == "__metadata__" {
            continue;
        }
        if let Err(problem) = check_tensor(tensor, data_len) {
            return Ok(Err(format!("tensor {name:?}: {problem}")));
        }
        count += 1;
    }
    Ok(Ok(count))
}

/// Checks one safetensors tensor entry: `dtype`, `shape`, and `data_offsets` inside the data.
fn check_tensor(tensor: &Value, data_len: u64) -> Result<(), String> {
    let Some(tensor) = tensor.as_object() else {
        return Err("entry is not a json object".to_owned());
    };
    if !tensor.get("dtype").is_some_and(Value::is_string) {
        return Err("`dtype` is missing or not a string".to_owned());
    }
    if !tensor.get("shape").is_some_and(Value::is_array) {
        return Err("`shape` is missing or not an array".to_owned());
    }
    let offsets = tensor
        .get("data_offsets")
        .and_then(Value::as_array)
        .map(|offsets| offsets.iter().map(Value::as_u64).collect::<Vec<_>>());
    match offsets.as_deref() {
        Some(&[Some(begin), Some(end)]) if begin <= end && end <= data_len => Ok(()),
        Some(&[Some(begin), Some(end)]) => Err(format!(
            "`data_offsets` [{begin}, {end}] fall outside the {data_len}-byte data section"
        )),
        _ => Err("`data_offsets` is missing or not two integers".to_owned()),
    }
}

fn gguf(reader: &mut impl Read, size: u64) -> io::Result<HeaderFacts> {
    let mut head = [0u8; 8];
    if !read_full(reader, &mut head)? {
        return Ok(Err(format!(
            "file is {size} bytes, too short for the gguf magic and version"
        )));
    }
    let (magic, version) = head.split_at(4);
    if magic != b"GGUF" {
        return Ok(Err(format!(
            "file does not start with the magic \"GGUF\" (found {})",
            hex::encode(magic)
        )));
    }
    let version_bytes = [version[0], version[1], version[2], version[3]];
    let version = u32::from_le_bytes(version_bytes);
    let (fixed, tensors, kvs) = match version {
        1 => {
            let mut counts = [0u8; 8];
            if !read_full(reader, &mut counts)? {
                return Ok(Err("file ends inside the gguf v1 header".to_owned()));
            }
            let tensors = u32::from_le_bytes([counts[0], counts[1], counts[2], counts[3]]);
            let kvs = u32::from_le_bytes([counts[4], counts[5], counts[6], counts[7]]);
            (16, u64::from(tensors), u64::from(kvs))
        }
        2 | 3 => {
            let mut counts = [0u8; 16];
            if !read_full(reader, &mut counts)? {
                return Ok(Err(format!("file ends inside the gguf v{version} header")));
            }
            let (tensors, kvs) = counts.split_at(8);
            (24, le_u64(tensors), le_u64(kvs))
        }
        _ => {
            let big_endian = u32::from_be_bytes(version_bytes);
            return Ok(Err(if (1..=3).contains(&big_endian) {
                format!("big-endian gguf (version {big_endian}) is not supported")
            } else {
                format!("unsupported gguf version {version}")
            }));
        }
    };
    let needed = tensors
        .checked_mul(GGUF_MIN_TENSOR_INFO)
        .and_then(|bytes| bytes.checked_add(kvs.checked_mul(GGUF_MIN_KV)?))
        .and_then(|bytes| bytes.checked_add(fixed));
    if needed.is_none_or(|needed| needed > size) {
        return Ok(Err(format!(
            "header claims {tensors} tensors and {kvs} metadata entries, \
             more than the {size}-byte file can hold"
        )));
    }
    Ok(Ok(tensors))
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(array)
}

/// Fills `buf` from `reader`; `Ok(false)` when the reader ends first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(format: Format, bytes: &[u8]) -> HeaderFacts {
        read_header(format, &mut &bytes[..], bytes.len() as u64).expect("in-memory read")
    }

    /// A safetensors file: length prefix, `header`, then `data_len` zero bytes.
    fn safetensors_file(header: &str, data_len: usize) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.resize(bytes.len() + data_len, 0);
        bytes
    }

    /// A GGUF v2/v3 file head: magic, version, counts, then `rest` zero bytes.
    fn gguf_file(version: u32, tensors: u64, kvs: u64, rest: usize) -> Vec<u8> {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&tensors.to_le_bytes());
        bytes.extend_from_slice(&kvs.to_le_bytes());
        bytes.resize(bytes.len() + rest, 0);
        bytes
    }

    const TWO_TENSORS: &str = r#"{"__metadata__":{"format":"pt"},
        "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
        "b":{"dtype":"F16","shape":[1,2],"data_offsets":[8,12]}}"#;

    #[test]
    fn formats_come_from_the_extension() {
        assert_eq!(
            Format::from_file_name("model.safetensors"),
            Some(Format::Safetensors)
        );
        assert_eq!(
            Format::from_file_name("M.SafeTensors"),
            Some(Format::Safetensors)
        );
        assert_eq!(Format::from_file_name("llama-q4.gguf"), Some(Format::Gguf));
        assert_eq!(Format::from_file_name("gguf"), None);
        assert_eq!(Format::from_file_name("model.safetensors.index.json"), None);
        assert_eq!(Format::from_file_name("model.bin"), None);
        assert_eq!(Format::Gguf.to_string(), "gguf");
    }

    #[test]
    fn safetensors_counts_tensors_without_metadata() {
        assert_eq!(
            facts(Format::Safetensors, &safetensors_file(TWO_TENSORS, 12)),
            Ok(2)
        );
        // Trailing spaces pad headers to alignment in real files.
        let padded = format!("{TWO_TENSORS}      ");
        assert_eq!(
            facts(Format::Safetensors, &safetensors_file(&padded, 12)),
            Ok(2)
        );
        assert_eq!(
            facts(Format::Safetensors, &safetensors_file("{}", 0)),
            Ok(0)
        );
    }

    #[test]
    fn safetensors_malformed_headers_are_described() {
        let cases: [(Vec<u8>, &str); 9] = [
            (
                vec![1, 2, 3],
                "file is 3 bytes, too short for the 8-byte header length",
            ),
            (
                (MAX_HEADER_BYTES + 1).to_le_bytes().to_vec(),
                "header length 100000001 exceeds the limit of 100000000 bytes",
            ),
            (
                [&100u64.to_le_bytes()[..], b"{}"].concat(),
                "header length 100 runs past the end of the 10-byte file",
            ),
            (
                safetensors_file("{\"a\":", 0),
                "header is not valid json: EOF while parsing a value at line 1 column 5",
            ),
            (safetensors_file("[1]", 0), "header is not a json object"),
            (
                safetensors_file(r#"{"a":1}"#, 0),
                "tensor \"a\": entry is not a json object",
            ),
            (
                safetensors_file(r#"{"a":{"shape":[],"data_offsets":[0,0]}}"#, 0),
                "tensor \"a\": `dtype` is missing or not a string",
            ),
            (
                safetensors_file(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, 4),
                "tensor \"a\": `data_offsets` is missing or not two integers",
            ),
            (
                safetensors_file(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                    4,
                ),
                "tensor \"a\": `data_offsets` [0, 8] fall outside the 4-byte data section",
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(facts(Format::Safetensors, &bytes), Err(expected.to_owned()));
        }
    }

    #[test]
    fn gguf_reads_the_tensor_count() {
        assert_eq!(
            facts(Format::Gguf, &gguf_file(3, 2, 5, 2 * 24 + 5 * 12)),
            Ok(2)
        );
        assert_eq!(facts(Format::Gguf, &gguf_file(2, 7, 0, 7 * 24)), Ok(7));
        let mut v1 = b"GGUF".to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&3u32.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.resize(16 + 3 * 24 + 12, 0);
        assert_eq!(facts(Format::Gguf, &v1), Ok(3));
    }

    #[test]
    fn gguf_malformed_headers_are_described() {
        let mut big_endian = b"GGUF".to_vec();
        big_endian.extend_from_slice(&3u32.to_be_bytes());
        big_endian.resize(64, 0);
        let cases: [(Vec<u8>, &str); 6] = [
            (
                b"GGU".to_vec(),
                "file is 3 bytes, too short for the gguf magic and version",
            ),
            (
                b"GGML\x03\0\0\0".to_vec(),
                "file does not start with the magic \"GGUF\" (found 47474d4c)",
            ),
            (gguf_file(4, 0, 0, 0), "unsupported gguf version 4"),
            (big_endian, "big-endian gguf (version 3) is not supported"),
            (
                gguf_file(3, 0, 0, 0)[..20].to_vec(),
                "file ends inside the gguf v3 header",
            ),
            (
                gguf_file(3, u64::MAX / 2, 1, 100),
                "header claims 9223372036854775807 tensors and 1 metadata entries, \
                 more than the 124-byte file can hold",
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(facts(Format::Gguf, &bytes), Err(expected.to_owned()));
        }
        assert_eq!(
            facts(Format::Gguf, &gguf_file(3, 2, 0, 47)),
            Err("header claims 2 tensors and 0 metadata entries, \
                 more than the 71-byte file can hold"
                .to_owned())
        );
    }
}
