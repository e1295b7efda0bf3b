//! `hash_path` against independent computations: the system's `sha256sum` for every file, and
//! checkpoint ids built by hand as canonical JSON text.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use ascribe_weights::{hash_path, Format, WeightManifest, WeightsError};

fn quiet(_: u64, _: u64) {}

fn hash(path: &Path) -> Result<WeightManifest, WeightsError> {
    hash_path(path, &quiet)
}

/// The digest `sha256sum` prints for a file.
fn sha256sum(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg("--")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(
        output.status.success(),
        "sha256sum failed on {}",
        path.display()
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    text.split_whitespace().next().expect("digest").to_owned()
}

/// The digest `sha256sum` prints for bytes on its standard input.
fn sha256sum_of(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    text.split_whitespace().next().expect("digest").to_owned()
}

/// The checkpoint id of `(path, size, sha256)` triples, written out as RFC 8785 text by hand
/// (the paths used here need no escaping).
fn expected_id(files: &[(String, u64, String)]) -> String {
    let mut files = files.to_vec();
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let members: Vec<String> = files
        .iter()
        .map(|(path, size, sha256)| {
            format!(r#"{{"path":"{path}","sha256":"{sha256}","size":{size}}}"#)
        })
        .collect();
    let canonical = format!(r#"{{"files":[{}]}}"#, members.join(","));
    format!("sha256:{}", sha256sum_of(canonical.as_bytes()))
}

/// Deterministic bytes that are not all alike.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, bytes).expect("write");
}

/// What the manifest should say about each file of `root`, from `sha256sum`.
fn independent(root: &Path, rels: &[&str]) -> Vec<(String, u64, String)> {
    rels.iter()
        .map(|rel| {
            let path = root.join(rel);
            let size = fs::metadata(&path).expect("stat").len();
            (rel.to_string(), size, sha256sum(&path))
        })
        .collect()
}

fn triples(manifest: &WeightManifest) -> Vec<(String, u64, String)> {
    manifest
        .files
        .iter()
        .map(|file| (file.path.clone(), file.size, file.sha256.clone()))
        .collect()
}

#[test]
fn directory_manifest_matches_sha256sum_and_hand_built_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("model");
    write(&root, "B.txt", b"upper\n");
    write(&root, "a-b", b"dash");
    write(&root, "a.b", b"dot");
    write(&root, "a/b", b"slash");
    write(&root, "a/y/z.json", b"{\"z\":1}");
    write(&root, "big.bin", &pattern(3 * (1 << 20) + 12_345, 1));
    write(&root, "empty", b"");
    write(&root, ".hidden", b"hidden files count too");
    write(&root, "\u{e9}t\u{e9}.txt", b"summer");
    write(&root, "weights/shard-00002.bin", &pattern(1 << 20, 2));
    write(&root, "weights/shard-00001.bin", &pattern((1 << 20) + 1, 3));

    let manifest = hash(&root).expect("manifest");

    // Sorted by the bytes of the path: '.' < 'B' < 'a'; '-' < '.' < '/'; UTF-8 last.
    let order = [
        ".hidden",
        "B.txt",
        "a-b",
        "a.b",
        "a/b",
        "a/y/z.json",
        "big.bin",
        "empty",
        "weights/shard-00001.bin",
        "weights/shard-00002.bin",
        "\u{e9}t\u{e9}.txt",
    ];
    let expected = independent(&root, &order);
    assert_eq!(triples(&manifest), expected);
    assert_eq!(manifest.files[6].size, 3 * (1 << 20) + 12_345);
    assert_eq!(
        manifest.files[7].sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(manifest
        .files
        .iter()
        .all(|f| f.format.is_none() && f.tensor_count.is_none()));
    assert_eq!(manifest.checkpoint, expected_id(&expected));

    // The directory's own name, its location and a trailing `/` are not part of the id.
    let moved = dir.path().join("elsewhere");
    fs::rename(&root, &moved).expect("rename");
    let mut with_slash = moved.into_os_string();
    with_slash.push("/");
    assert_eq!(
        hash(Path::new(&with_slash)).expect("again").checkpoint,
        manifest.checkpoint
    );
}

#[test]
fn single_file_is_named_by_its_file_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "deep/er/model.bin", &pattern(2_000_003, 4));
    let path = dir.path().join("deep/er/model.bin");

    let manifest = hash(&path).expect("manifest");

    let expected = vec![("model.bin".to_owned(), 2_000_003, sha256sum(&path))];
    assert_eq!(triples(&manifest), expected);
    assert_eq!(manifest.checkpoint, expected_id(&expected));
    // The same as a directory holding just that file.
    assert_eq!(
        hash(&dir.path().join("deep/er")).expect("dir").checkpoint,
        manifest.checkpoint
    );
}

#[test]
fn documented_example_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "config.json", b"{}");
    write(dir.path(), "tokenizer/vocab.txt", b"hello\n");
    assert_eq!(
        hash(dir.path()).expect("manifest").checkpoint,
        "sha256:e61cacdb9013b7e8d3de0807658e1cd217fea4ea8227f057be986e6285a92787"
    );
}

fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn gguf(version: u32, tensors: u64, kvs: u64, rest: &[u8]) -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(&tensors.to_le_bytes());
    bytes.extend_from_slice(&kvs.to_le_bytes());
    bytes.extend_from_slice(rest);
    bytes
}

/// Path, format, tensor count and format error of one file record.
type Facts<'a> = (&'a str, Option<Format>, Option<u64>, Option<&'a str>);

#[test]
fn format_facts_are_recorded_but_not_hashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let header = concat!(
        r#"{"__metadata__":{"format":"pt"},"#,
        r#""embed":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"#,
        r#""head":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]}}"#,
    );
    write(
        root,
        "model.safetensors",
        &safetensors(header, &pattern(20, 5)),
    );
    write(root, "huge.safetensors", &(1u64 << 40).to_le_bytes());
    write(root, "bad-json.safetensors", &safetensors("{\"a\":", b""));
    write(
        root,
        "llama.gguf",
        &gguf(3, 3, 2, &pattern(3 * 24 + 2 * 12 + 100, 6)),
    );
    write(root, "old.GGUF", &gguf(2, 1, 0, &pattern(24, 7)));
    write(root, "ggml.gguf", b"GGML\x01\x00\x00\x00 not gguf at all");
    write(root, "notes.txt", b"GGUF");

    let manifest = hash(root).expect("manifest");

    let facts: Vec<Facts<'_>> = manifest
        .files
        .iter()
        .map(|f| {
            (
                f.path.as_str(),
                f.format,
                f.tensor_count,
                f.format_error.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        facts,
        [
            (
                "bad-json.safetensors",
                Some(Format::Safetensors),
                None,
                Some("header is not valid json: EOF while parsing a value at line 1 column 5"),
            ),
            (
                "ggml.gguf",
                Some(Format::Gguf),
                None,
                Some("file does not start with the magic \"GGUF\" (found 47474d4c)"),
            ),
            (
                "huge.safetensors",
                Some(Format::Safetensors),
                None,
                Some("header length 1099511627776 exceeds the limit of 100000000 bytes"),
            ),
            ("llama.gguf", Some(Format::Gguf), Some(3), None),
            (
                "model.safetensors",
                Some(Format::Safetensors),
                Some(2),
                None
            ),
            ("notes.txt", None, None, None),
            ("old.GGUF", Some(Format::Gguf), Some(1), None),
        ]
    );
    let rels: Vec<&str> = facts.iter().map(|fact| fact.0).collect();
    let expected = independent(root, &rels);
    assert_eq!(triples(&manifest), expected);
    assert_eq!(manifest.checkpoint, expected_id(&expected));
}

#[test]
fn progress_reports_every_byte_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (index, size) in [3 << 20, 1 << 20, 5, 0, 2_500_000].into_iter().enumerate() {
        write(
            dir.path(),
            &format!("f{index}"),
            &pattern(size, index as u64),
        );
    }
    let total = (3 << 20) + (1 << 20) + 5 + 2_500_000;
    let calls = Mutex::new(Vec::new());
    let record = |done: u64, all: u64| calls.lock().expect("lock").push((done, all));

    let manifest = hash_path(dir.path(), &record).expect("manifest");

    let calls = calls.into_inner().expect("lock");
    assert_eq!(manifest.total_size(), total);
    assert_eq!(calls.first(), Some(&(0, total)));
    assert_eq!(calls.last(), Some(&(total, total)));
    assert!(calls
        .iter()
        .all(|&(done, all)| all == total && done <= total));
    // At least one report per 1 MiB read.
    assert!(calls.len() >= 8, "{} calls", calls.len());
}

fn assert_error(result: Result<WeightManifest, WeightsError>, message: &str) -> WeightsError {
    let error = result.expect_err("must fail");
    assert_eq!(error.to_string(), message);
    error
}

#[cfg(unix)]
#[test]
fn symlinked_file_inside_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "real.bin", b"real");
    std::os::unix::fs::symlink("real.bin", dir.path().join("link.bin")).expect("symlink");
    let target = fs::canonicalize(dir.path().join("real.bin")).expect("canonical");
    let link = dir.path().join("link.bin");

    let error = assert_error(
        hash(dir.path()),
        &format!(
            "{} is a symbolic link, which ascribe does not follow; pass the resolved path ({}) \
             instead, or replace the link with a copy of it",
            link.display(),
            target.display()
        ),
    );
    assert!(matches!(
        error,
        WeightsError::Symlink { path, resolved: Some(resolved) }
            if path == link && resolved == target
    ));
}

#[cfg(unix)]
#[test]
fn symlinked_directory_inside_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "other/w.bin", b"w");
    write(dir.path(), "model/a.bin", b"a");
    std::os::unix::fs::symlink(dir.path().join("other"), dir.path().join("model/sub"))
        .expect("symlink");

    let error = hash(&dir.path().join("model")).expect_err("must fail");
    assert_eq!(error.path(), Some(dir.path().join("model/sub").as_path()));
    assert!(matches!(
        error,
        WeightsError::Symlink {
            resolved: Some(_),
            ..
        }
    ));
}

#[cfg(unix)]
#[test]
fn symlink_given_as_the_path_is_refused_even_with_a_trailing_slash() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "real/w.bin", b"w");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path().join("real"), &link).expect("symlink");
    let mut with_slash = link.clone().into_os_string();
    with_slash.push("/");

    for given in [link.clone(), PathBuf::from(with_slash)] {
        let error = hash(&given).expect_err("must fail");
        assert_eq!(
            error.path(),
            Some(link.as_path()),
            "given {}",
            given.display()
        );
        assert!(matches!(error, WeightsError::Symlink { .. }));
    }
}

#[cfg(unix)]
#[test]
fn broken_symlink_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.bin", b"a");
    std::os::unix::fs::symlink("nowhere", dir.path().join("z.bin")).expect("symlink");
    assert_error(
        hash(dir.path()),
        &format!(
            "{} is a symbolic link, which ascribe does not follow; it leads nowhere (a broken \
             link): remove it, or pass the resolved path of the file it should name",
            dir.path().join("z.bin").display()
        ),
    );
}

#[test]
fn empty_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = assert_error(
        hash(dir.path()),
        &format!(
            "{} is an empty directory; remove it, or put the model's files in it, and hash again",
            dir.path().display()
        ),
    );
    assert!(matches!(error, WeightsError::EmptyDirectory { .. }));
}

#[test]
fn empty_subdirectory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a/w.bin", b"w");
    write(dir.path(), "z.bin", b"z");
    fs::create_dir_all(dir.path().join("a/empty")).expect("mkdir");
    let error = hash(dir.path()).expect_err("must fail");
    assert!(matches!(
        &error,
        WeightsError::EmptyDirectory { path } if *path == dir.path().join("a/empty")
    ));
}

#[test]
fn directory_of_empty_directories_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("b/c")).expect("mkdir");
    let error = hash(dir.path()).expect_err("must fail");
    assert_eq!(error.path(), Some(dir.path().join("b/c").as_path()));
}

#[test]
fn missing_path_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.gguf");
    assert_error(
        hash(&missing),
        &format!(
            "{} does not exist; check the path and hash again",
            missing.display()
        ),
    );
}

#[cfg(target_os = "linux")]
#[test]
fn non_utf8_names_are_refused() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "ok.bin", b"ok");
    let bad = dir.path().join(OsStr::from_bytes(b"bad\xff.bin"));
    fs::write(&bad, b"bad").expect("write");
    let error = assert_error(
        hash(dir.path()),
        &format!(
            "{} has a name that is not valid utf-8; rename it to utf-8 and hash again",
            bad.display()
        ),
    );
    assert_eq!(error.path(), Some(bad.as_path()));
    assert_eq!(
        hash(&bad).expect_err("file too").path(),
        Some(bad.as_path())
    );

    let other = tempfile::tempdir().expect("tempdir");
    let bad_dir = other.path().join(OsStr::from_bytes(b"d\xfe"));
    write(&bad_dir, "w.bin", b"w");
    assert_eq!(
        hash(other.path()).expect_err("dir").path(),
        Some(bad_dir.as_path())
    );
}

#[cfg(unix)]
#[test]
fn sockets_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "w.bin", b"w");
    let socket = dir.path().join("gateway.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    assert_error(
        hash(dir.path()),
        &format!(
            "{} is a socket, not a regular file; move it out of the model directory and hash \
             again",
            socket.display()
        ),
    );
}

/// `/proc/self/mem` is a regular file that cannot be read from its start (even by root, which
/// file permissions would not stop).
#[cfg(target_os = "linux")]
#[test]
fn unreadable_file_is_named() {
    let error = hash(Path::new("/proc/self/mem")).expect_err("must fail");
    let message = error.to_string();
    assert!(
        matches!(error, WeightsError::Unreadable { .. }),
        "{error:?}"
    );
    assert_eq!(error.path(), Some(Path::new("/proc/self/mem")));
    assert!(
        message.starts_with("cannot read /proc/self/mem: "),
        "{message}"
    );
    assert!(
        message.ends_with("; check that it exists and is readable, then hash again"),
        "{message}"
    );
}

/// Hashes `name` (3 MiB) while `change` runs once, from the progress callback, after the first
/// read; returns the error.
fn hash_while_changing(name: &str, change: impl Fn(&Path) + Send + Sync) -> (PathBuf, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), name, &pattern(3 << 20, 9));
    let path = dir.path().join(name);
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&path)
        .expect("open")
        .set_modified(old)
        .expect("set mtime");
    let changed = AtomicBool::new(false);
    let progress = |done: u64, _total: u64| {
        if done > 0 && !changed.swap(true, Ordering::SeqCst) {
            change(&path);
        }
    };
    let error = hash_path(dir.path(), &progress).expect_err("must fail");
    assert!(changed.load(Ordering::SeqCst));
    assert_eq!(error.path(), Some(path.as_path()));
    assert!(matches!(error, WeightsError::Changed { .. }));
    (path, error.to_string())
}

fn changed_message(path: &Path, detail: &str) -> String {
    format!(
        "{} changed while it was being hashed ({detail}); wait until nothing writes to it and \
         hash again",
        path.display()
    )
}

#[test]
fn file_growing_while_hashed_is_refused() {
    let (path, message) = hash_while_changing("grows.bin", |path| {
        use std::io::Write;
        let mut file = fs::File::options().append(true).open(path).expect("open");
        file.write_all(b"more").expect("append");
    });
    assert_eq!(
        message,
        changed_message(&path, "it grew past the 3145728 bytes it had when listed")
    );
}

#[test]
fn file_shrinking_while_hashed_is_refused() {
    let (path, message) = hash_while_changing("shrinks.bin", |path| {
        let file = fs::File::options().write(true).open(path).expect("open");
        file.set_len(1_500_000).expect("truncate");
    });
    assert_eq!(
        message,
        changed_message(
            &path,
            "it had 3145728 bytes when listed, but only 1500000 could be read"
        )
    );
}

#[cfg(unix)]
#[test]
fn file_rewritten_in_place_while_hashed_is_refused() {
    let (path, message) = hash_while_changing("rewritten.bin", |path| {
        use std::os::unix::fs::FileExt;
        let file = fs::File::options().write(true).open(path).expect("open");
        file.write_all_at(b"X", 0).expect("write");
    });
    assert_eq!(
        message,
        changed_message(&path, "it was modified while it was read")
    );
}
