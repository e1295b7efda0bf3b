//! Hashing the listed files in parallel, one file per worker thread.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;

use sha2::{Digest, Sha256};

use crate::format::{self, Format, HeaderFacts};
use crate::walk::Entry;
use crate::{FileRecord, WeightsError};

/// Bytes per read. Measured on a 1 GiB file in the page cache, on this project's 2-core
/// machine with SHA-NI (best of 5): 256 KiB 1.29 GB/s, 1 MiB 1.45, 4 MiB 1.42, 16 MiB 1.39,
/// memory map 1.41. Reads of 1 MiB are as fast as a map, which would need `unsafe` (forbidden
/// in this workspace) and kills the process with SIGBUS when a mapped file is truncated.
const BUFFER_BYTES: usize = 1 << 20;

/// The progress callback of [`crate::hash_path`].
type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// What all workers share: progress accounting, and the flag that stops them after an error.
struct Shared<'a> {
    progress: Progress<'a>,
    total: u64,
    done: AtomicU64,
    stop: AtomicBool,
}

impl Shared<'_> {
    fn advance(&self, bytes: u64) {
        let done = self
            .done
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        (self.progress)(done.min(self.total), self.total);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Hashes every entry, in parallel across the available cores. The records come back in no
/// particular order; on failure the error of the first failed path (by bytes) is returned.
pub(crate) fn hash_all(
    entries: &[Entry],
    progress: Progress<'_>,
) -> Result<Vec<FileRecord>, WeightsError> {
    let total = entries
        .iter()
        .fold(0u64, |sum, entry| sum.saturating_add(entry.meta.len()));
    progress(0, total);
    // Largest first, so that a big file started last does not leave the other workers idle.
    let mut order: Vec<&Entry> = entries.iter().collect();
    order.sort_by_key(|entry| std::cmp::Reverse(entry.meta.len()));
    let shared = Shared {
        progress,
        total,
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let next = AtomicUsize::new(0);
    let workers = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(order.len());

    // LIMITATION: a file is hashed by one worker from start to end. SHA-256 is a sequential
    // chain over the blocks of its input, so a single large file hashes at the speed of one
    // core however many there are; only a set of files uses them all.
    let outcomes = if workers <= 1 {
        vec![work(&order, &next, &shared)]
    } else {
        thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| scope.spawn(|| work(&order, &next, &shared)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };

    let mut records = Vec::with_capacity(entries.len());
    let mut failure: Option<(&str, WeightsError)> = None;
    for outcome in outcomes {
        match outcome {
            Ok(done) => records.extend(done),
            Err((rel, error)) => {
                if failure
                    .as_ref()
                    .is_none_or(|(first, _)| rel.as_bytes() < first.as_bytes())
                {
                    failure = Some((rel, error));
                }
            }
        }
    }
    if let Some((_, error)) = failure {
        return Err(error);
    }
    progress(total, total);
    Ok(records)
}

/// One worker: takes the next entry until none is left or another worker failed.
fn work<'e>(
    order: &[&'e Entry],
    next: &AtomicUsize,
    shared: &Shared<'_>,
) -> Result<Vec<FileRecord>, (&'e str, WeightsError)> {
    let mut buffer = vec![0u8; BUFFER_BYTES];
    let mut records = Vec::new();
    while !shared.stopped() {
        let Some(entry) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
            break;
        };
        match hash_file(entry, &mut buffer, shared) {
            Ok(Some(record)) => records.push(record),
            Ok(None) => break,
            Err(error) => {
                shared.stop.store(true, Ordering::Relaxed);
                return Err((&entry.rel, error));
            }
        }
    }
    Ok(records)
}

/// Hashes one file; `None` when stopped because another worker failed.
fn hash_file(
    entry: &Entry,
    buffer: &mut [u8],
    shared: &Shared<'_>,
) -> Result<Option<FileRecord>, WeightsError> {
    let path = entry.path.as_path();
    let file = File::open(path).map_err(|cause| WeightsError::unreadable(path, cause))?;
    let opened = file
        .metadata()
        .map_err(|cause| WeightsError::unreadable(path, cause))?;
    same_file(path, &entry.meta, &opened, "between listing and opening")?;
    let format = Format::from_file_name(&entry.rel);
    let mut stream = HashingReader::new(file, shared);
    let Some((sha256, facts)) = digest(&mut stream, path, format, entry.meta.len(), buffer)? else {
        return Ok(None);
    };
    let after = stream
        .inner
        .metadata()
        .map_err(|cause| WeightsError::unreadable(path, cause))?;
    same_file(path, &opened, &after, "while it was read")?;
    let (tensor_count, format_error) = match facts {
        Some(Ok(count)) => (Some(count), None),
        Some(Err(problem)) => (None, Some(problem)),
        None => (None, None),
    };
    Ok(Some(FileRecord {
        path: entry.rel.clone(),
        size: entry.meta.len(),
        sha256,
        format,
        tensor_count,
        format_error,
    }))
}

/// Reads `stream` to its end: the header facts of `format` first, then the rest through
/// `buffer`. Fails when the stream does not hold exactly `size` bytes; `None` when stopped.
fn digest<R: Read>(
    stream: &mut HashingReader<'_, R>,
    path: &Path,
    format: Option<Format>,
    size: u64,
    buffer: &mut [u8],
) -> Result<Option<(String, Option<HeaderFacts>)>, WeightsError> {
    let facts = match format {
        Some(format) => Some(
            format::read_header(format, stream, size)
                .map_err(|cause| WeightsError::unreadable(path, cause))?,
        ),
        None => None,
    };
    loop {
        if stream.shared.stopped() {
            return Ok(None);
        }
        let read = match stream.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(cause) => return Err(WeightsError::unreadable(path, cause)),
        };
        debug_assert!(read > 0);
        if stream.read > size {
            return Err(WeightsError::changed(
                path,
                format!("it grew past the {size} bytes it had when listed"),
            ));
        }
    }
    if stream.read != size {
        return Err(WeightsError::changed(
            path,
            format!(
                "it had {size} bytes when listed, but only {} could be read",
                stream.read
            ),
        ));
    }
    let sha256 = hex::encode(std::mem::take(&mut stream.hasher).finalize());
    Ok(Some((sha256, facts)))
}

/// Checks that `now` describes the same unchanged regular file as `before`.
fn same_file(
    path: &Path,
    before: &Metadata,
    now: &Metadata,
    when: &str,
) -> Result<(), WeightsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (before.dev(), before.ino()) != (now.dev(), now.ino()) {
            return Err(WeightsError::changed(
                path,
                format!("it was replaced {when}"),
            ));
        }
    }
    if !now.is_file() {
        return Err(WeightsError::changed(
            path,
            format!("it stopped being a regular file {when}"),
        ));
    }
    if before.len() != now.len() {
        return Err(WeightsError::changed(
            path,
            format!(
                "its size went from {} to {} bytes {when}",
                before.len(),
                now.len()
            ),
        ));
    }
    if before.modified().ok() != now.modified().ok() {
        return Err(WeightsError::changed(
            path,
            format!("it was modified {when}"),
        ));
    }
    Ok(())
}

/// A reader that hashes, counts and reports every byte read through it, so that the header
/// facts describe exactly the bytes that were hashed.
struct HashingReader<'a, R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    shared: &'a Shared<'a>,
}

impl<'a, R: Read> HashingReader<'a, R> {
    fn new(inner: R, shared: &'a Shared<'a>) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            read: 0,
            shared,
        }
    }
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Some(bytes) = buf.get(..read) {
            self.hasher.update(bytes);
            let read = read as u64;
            self.read = self.read.saturating_add(read);
            self.shared.advance(read);
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data`, then fails with `error` instead of reporting the end.
    struct Failing {
        data: io::Cursor<Vec<u8>>,
        error: Option<io::ErrorKind>,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let read = self.data.read(buf)?;
            match (read, self.error) {
                (0, Some(kind)) => Err(io::Error::new(kind, "disk on fire")),
                _ => Ok(read),
            }
        }
    }

    fn run(
        data: &[u8],
        error: Option<io::ErrorKind>,
        format: Option<Format>,
        size: u64,
    ) -> Result<Option<(String, Option<HeaderFacts>)>, WeightsError> {
        let shared = Shared {
            progress: &|_, _| {},
            total: size,
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        };
        let mut stream = HashingReader::new(
            Failing {
                data: io::Cursor::new(data.to_vec()),
                error,
            },
            &shared,
        );
        let mut buffer = [0u8; 4];
        digest(
            &mut stream,
            Path::new("w/model.bin"),
            format,
            size,
            &mut buffer,
        )
    }

    #[test]
    fn digest_of_a_stream_in_small_reads() {
        let (sha256, facts) = run(b"hello\n", None, None, 6)
            .expect("digest")
            .expect("done");
        assert_eq!(
            sha256,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(facts, None);
    }

    #[test]
    fn read_failure_names_the_file() {
        let error = run(b"hello\n", Some(io::ErrorKind::Other), None, 6).expect_err("fails");
        assert!(matches!(error, WeightsError::Unreadable { .. }));
        assert_eq!(
            error.to_string(),
            "cannot read w/model.bin: disk on fire; check that it exists and is readable, \
             then hash again"
        );
        let error = run(b"", Some(io::ErrorKind::Other), Some(Format::Gguf), 0).expect_err("x");
        assert_eq!(error.path(), Some(Path::new("w/model.bin")));
    }

    #[test]
    fn a_stream_of_the_wrong_length_is_a_change() {
        let error = run(b"hello\n", None, None, 5).expect_err("grew");
        assert_eq!(
            error.to_string(),
            "w/model.bin changed while it was being hashed (it grew past the 5 bytes it had \
             when listed); wait until nothing writes to it and hash again"
        );
        let error = run(b"hello\n", None, None, 9).expect_err("shrank");
        assert_eq!(
            error.to_string(),
            "w/model.bin changed while it was being hashed (it had 9 bytes when listed, but \
             only 6 could be read); wait until nothing writes to it and hash again"
        );
    }

    #[test]
    fn header_facts_come_from_the_hashed_bytes() {
        let mut file = b"GGUF".to_vec();
        file.extend_from_slice(&3u32.to_le_bytes());
        file.extend_from_slice(&1u64.to_le_bytes());
        file.extend_from_slice(&0u64.to_le_bytes());
        file.resize(64, 7);
        let size = file.len() as u64;
        let (sha256, facts) = run(&file, None, Some(Format::Gguf), size)
            .expect("digest")
            .expect("done");
        assert_eq!(sha256, hex::encode(Sha256::digest(&file)));
        assert_eq!(facts, Some(Ok(1)));
    }
}
