//! Throughput of `hash_path` against `sha256sum` and OpenSSL's single-core SHA-256 limit.
//!
//! Run with `cargo bench -p ascribe-weights --bench hash`. It writes several files of
//! `ASCRIBE_BENCH_HASH_MB` megabytes in total (default 1024) to a temporary directory, so all
//! runs read from the page cache, and prints a table. It prints figures; it asserts nothing
//! about them.

use std::env;
use std::error::Error;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FILES: u64 = 8;
const RUNS: usize = 3;

fn main() -> Result<(), Box<dyn Error>> {
    let total_mb: u64 = match env::var("ASCRIBE_BENCH_HASH_MB") {
        Ok(value) => value.trim().parse()?,
        Err(_) => 1024,
    };
    let dir = tempfile::tempdir()?;
    let files = generate(dir.path(), total_mb << 20)?;
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "{} files, {} bytes in total, {threads} cores; best of {RUNS} runs",
        files.len(),
        total
    );

    let mut rows = Vec::new();
    let (ours, manifest) = best(|| ascribe_weights::hash_path(dir.path(), &|_, _| {}))?;
    rows.push((
        format!("hash_path, {} files, parallel", files.len()),
        total,
        Some(ours),
    ));

    let (first, first_size) = &files[0];
    let (one, _) = best(|| ascribe_weights::hash_path(first, &|_, _| {}))?;
    rows.push((
        "hash_path, 1 file (one core)".to_owned(),
        *first_size,
        Some(one),
    ));

    let paths: Vec<&PathBuf> = files.iter().map(|(path, _)| path).collect();
    let (sum, output) = best(|| {
        Command::new("sha256sum")
            .args(&paths)
            .output()
            .map_err(|error| format!("cannot run sha256sum: {error}"))
    })?;
    rows.push(("sha256sum, files in sequence".to_owned(), total, Some(sum)));
    let theirs = String::from_utf8_lossy(&output.stdout);
    let agree = manifest
        .files
        .iter()
        .all(|file| theirs.lines().any(|line| line.starts_with(&file.sha256)));
    println!("sha256sum digests agree with hash_path: {agree}");

    match openssl_bytes_per_second() {
        Some(rate) => rows.push((
            "openssl speed sha256 (1 core)".to_owned(),
            rate as u64,
            Some(Duration::from_secs(1)),
        )),
        None => rows.push(("openssl speed sha256: not available".to_owned(), 0, None)),
    }

    println!("{:<36} {:>8} {:>10}", "what", "GB/s", "seconds");
    for (what, bytes, time) in rows {
        match time {
            Some(time) => println!(
                "{what:<36} {:>8.3} {:>10.3}",
                bytes as f64 / time.as_secs_f64() / 1e9,
                time.as_secs_f64()
            ),
            None => println!("{what:<36} {:>8} {:>10}", "-", "-"),
        }
    }
    Ok(())
}

/// Writes `FILES` files of pseudo-random bytes totalling `bytes`, largest first.
fn generate(dir: &Path, bytes: u64) -> Result<Vec<(PathBuf, u64)>, Box<dyn Error>> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut files = Vec::new();
    for index in 0..FILES {
        // Uneven sizes, as in real shard sets: the first file takes the remainder.
        let size = bytes / FILES + if index == 0 { bytes % FILES } else { 0 };
        let path = dir.join(format!("model-{index:05}-of-{FILES:05}.safetensors"));
        let mut file = File::create(&path)?;
        let mut left = size;
        while left > 0 {
            for word in chunk.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            let take = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..take])?;
            left -= take as u64;
        }
        file.sync_all()?;
        files.push((path, size));
    }
    Ok(files)
}

/// Runs `job` `RUNS` times; the fastest time and the last result.
fn best<T, E: Into<Box<dyn Error>>>(
    mut job: impl FnMut() -> Result<T, E>,
) -> Result<(Duration, T), Box<dyn Error>> {
    let mut fastest = Duration::MAX;
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let value = job().map_err(Into::into)?;
        fastest = fastest.min(start.elapsed());
        last = Some(value);
    }
    let value = last.ok_or("no run")?;
    Ok((fastest, value))
}

/// Bytes per second of `openssl speed -evp sha256` on 1 MiB blocks, one core.
fn openssl_bytes_per_second() -> Option<f64> {
    let output = Command::new("openssl")
        .args([
            "speed", "-seconds", "3", "-evp", "sha256", "-bytes", "1048576",
        ])
        .output()
        .ok()?;
    // The last line reads `sha256  1768005.77k`: thousands of bytes per second.
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with("sha256"))?;
    let figure = line.split_whitespace().last()?.strip_suffix('k')?;
    figure
        .parse::<f64>()
        .ok()
        .map(|thousands| thousands * 1000.0)
}
