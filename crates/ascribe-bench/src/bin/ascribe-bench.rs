//! `ascribe-bench`: the small measuring tools `bench/run.sh` needs beside `oha`.
//!
//! - `ttfb`: sends streamed chat completions one at a time (concurrency 1, keep-alive) and
//!   times each to its response headers, its first body byte and its last byte. Prints one
//!   JSON document with the percentiles, in ms.
//! - `safetensors`: writes a directory of valid `.safetensors` files of pseudo-random data
//!   (a header naming one tensor, then its bytes), or leaves it alone when a previous run
//!   already wrote the same set. Prints the directory's files and total size as JSON.
//! - `fsync`: the disk's durability cost in a directory: the median of 200 writes of 4 KiB,
//!   each followed by `fdatasync` (the probe of `ascribe_store::testing`), as JSON.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

/// Measuring tools for bench/run.sh.
#[derive(Debug, Parser)]
#[command(name = "ascribe-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Time streamed chat completions to their first byte, one at a time.
    Ttfb {
        /// The chat-completions URL, such as `http://127.0.0.1:8080/v1/chat/completions`.
        #[arg(long)]
        url: String,
        /// The `model` sent.
        #[arg(long)]
        model: String,
        /// A bearer token to send, if the target needs one.
        #[arg(long)]
        token: Option<String>,
        /// Streams timed.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Streams sent first and not timed.
        #[arg(long, default_value_t = 20)]
        warm_up: usize,
    },
    /// Write a directory of safetensors files (kept when already complete).
    Safetensors {
        /// The directory; created if missing.
        #[arg(long)]
        dir: PathBuf,
        /// Total size of the files, in MiB.
        #[arg(long)]
        total_mib: u64,
        /// How many files.
        #[arg(long, default_value_t = 8)]
        files: u64,
    },
    /// Measure fsync latency (4 KiB write + fdatasync, median of 200) in a directory.
    Fsync {
        /// The directory the probe file is written in.
        #[arg(long)]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Ttfb {
            url,
            model,
            token,
            requests,
            warm_up,
        } => ttfb(&url, &model, token.as_deref(), requests, warm_up),
        Command::Safetensors {
            dir,
            total_mib,
            files,
        } => safetensors(&dir, total_mib, files),
        Command::Fsync { dir } => Ok(json!({
            "dir": dir,
            "fsync_median_ms": ascribe_store::testing::fsync_median_ms(&dir),
        })),
    };
    match outcome {
        Ok(document) => {
            println!("{document}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("ascribe-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The three moments of one streamed call, in ms from sending it.
struct StreamTimes {
    headers: f64,
    first_byte: f64,
    last_byte: f64,
}

/// Sends `warm_up` then `requests` streamed calls one after another on one keep-alive
/// connection; returns the percentiles of each moment and how many calls failed.
fn ttfb(
    url: &str,
    model: &str,
    token: Option<&str>,
    requests: usize,
    warm_up: usize,
) -> Result<Value, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start a runtime: {error}"))?;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
    let body = json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": "Say hello."}],
    })
    .to_string();
    runtime.block_on(async {
        let mut times = Vec::with_capacity(requests);
        let mut failed = 0usize;
        let mut first_error = None;
        for call in 0..warm_up + requests {
            let mut request = client
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            match one_stream(request).await {
                Ok(measured) if call >= warm_up => times.push(measured),
                Ok(_) => {}
                Err(error) => {
                    failed += 1;
                    first_error.get_or_insert(error);
                }
            }
        }
        let column = |pick: fn(&StreamTimes) -> f64| summary(times.iter().map(pick).collect());
        Ok(json!({
            "url": url,
            "requests": requests,
            "warm_up": warm_up,
            "ok": times.len(),
            "failed": failed,
            "first_error": first_error,
            "headers_ms": column(|times| times.headers),
            "ttfb_ms": column(|times| times.first_byte),
            "total_ms": column(|times| times.last_byte),
        }))
    })
}

/// One streamed call read to its end; fails on a non-2xx status or a stream without
/// `[DONE]`.
async fn one_stream(request: reqwest::RequestBuilder) -> Result<StreamTimes, String> {
    let begun = Instant::now();
    let mut response = request.send().await.map_err(|error| error.to_string())?;
    let headers = begun.elapsed();
    let status = response.status();
    let mut first_byte = None;
    let mut tail = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
        if first_byte.is_none() && !chunk.is_empty() {
            first_byte = Some(begun.elapsed());
        }
        // Only the end of the body is kept, to find `[DONE]`.
        tail.extend_from_slice(&chunk);
        if tail.len() > 4096 {
            tail.drain(..tail.len() - 64);
        }
    }
    let last_byte = begun.elapsed();
    if !status.is_success() {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&tail)
        ));
    }
    if !tail.windows(6).any(|window| window == b"[DONE]") {
        return Err("the stream ended without data: [DONE]".to_owned());
    }
    let ms = |elapsed: Duration| elapsed.as_secs_f64() * 1e3;
    Ok(StreamTimes {
        headers: ms(headers),
        first_byte: ms(first_byte.unwrap_or(last_byte)),
        last_byte: ms(last_byte),
    })
}

/// Nearest-rank percentiles, mean, min and max of `values`; `null` members when empty.
fn summary(mut values: Vec<f64>) -> Value {
    if values.is_empty() {
        return json!({"p50": null, "p90": null, "p99": null, "mean": null,
                      "min": null, "max": null});
    }
    values.sort_by(f64::total_cmp);
    let rank = |fraction: f64| {
        let rank = (fraction * values.len() as f64).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    };
    json!({
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "mean": values.iter().sum::<f64>() / values.len() as f64,
        "min": values[0],
        "max": values[values.len() - 1],
    })
}

/// Writes `files` safetensors files of `total_mib` MiB in all into `dir`, unless its stamp
/// says the same set is already there.
fn safetensors(dir: &Path, total_mib: u64, files: u64) -> Result<Value, String> {
    let files = files.max(1);
    let total = total_mib << 20;
    let stamp_path = dir.join(".ascribe-bench-complete");
    let stamp = format!("{total} bytes in {files} files\n");
    let names: Vec<PathBuf> = (0..files)
        .map(|index| dir.join(format!("model-{:05}-of-{files:05}.safetensors", index + 1)))
        .collect();
    let reused = std::fs::read_to_string(&stamp_path).is_ok_and(|found| found == stamp);
    if !reused {
        let _ = std::fs::remove_file(&stamp_path);
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
        for (index, path) in names.iter().enumerate() {
            // Uneven sizes, as in real shard sets: the first file takes the remainder.
            let size = total / files + if index == 0 { total % files } else { 0 };
            write_safetensors(path, size, &mut random)
                .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        }
        std::fs::write(&stamp_path, &stamp)
            .map_err(|error| format!("cannot write {}: {error}", stamp_path.display()))?;
    }
    let mut bytes = 0;
    for path in &names {
        bytes += std::fs::metadata(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?
            .len();
    }
    Ok(json!({
        "dir": dir,
        "files": names,
        "bytes": bytes,
        "reused": reused,
    }))
}

/// A file of exactly `size` bytes: the 8-byte header length, a JSON header padded with
/// spaces to a multiple of 8, then one U8 tensor filling the rest.
fn write_safetensors(path: &Path, size: u64, random: &mut Xorshift) -> std::io::Result<()> {
    // The header's length depends on the data's, which depends on the header's: pad a header
    // written for the largest possible data length, then fix the data length.
    let header_for = |data: u64| {
        json!({
            "__metadata__": {"format": "pt"},
            "weight": {"dtype": "U8", "shape": [data], "data_offsets": [0, data]},
        })
        .to_string()
    };
    let budget = header_for(size).len().div_ceil(8) * 8;
    let data = size
        .checked_sub(8 + budget as u64)
        .ok_or_else(|| std::io::Error::other("file too small for its header"))?;
    let mut header = header_for(data);
    header.extend(std::iter::repeat_n(' ', budget - header.len()));
    let mut file = std::io::BufWriter::with_capacity(1 << 20, File::create(path)?);
    file.write_all(&(budget as u64).to_le_bytes())?;
    file.write_all(header.as_bytes())?;
    let mut block = vec![0u8; 1 << 20];
    let mut left = data;
    while left > 0 {
        random.fill(&mut block);
        let take = left.min(block.len() as u64) as usize;
        file.write_all(&block[..take])?;
        left -= take as u64;
    }
    file.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .sync_all()
}

/// xorshift64: fast bytes that no compressor or deduplicating disk can shrink.
struct Xorshift(u64);

impl Xorshift {
    fn fill(&mut self, block: &mut [u8]) {
        for word in block.chunks_exact_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            word.copy_from_slice(&self.0.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let summary = summary(values);
        assert_eq!(summary["p50"], 50.0);
        assert_eq!(summary["p99"], 99.0);
        assert_eq!(summary["max"], 100.0);
        assert!(super::summary(Vec::new())["p50"].is_null());
    }

    #[test]
    fn generated_files_are_safetensors_ascribe_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = safetensors(dir.path(), 3, 2).expect("writes");
        assert_eq!(made["bytes"], 3 << 20);
        assert_eq!(made["reused"], false);
        let again = safetensors(dir.path(), 3, 2).expect("reuses");
        assert_eq!(again["reused"], true);
        let manifest = ascribe_weights::hash_path(dir.path(), &|_, _| {}).expect("hashes");
        let files: Vec<_> = manifest
            .files
            .iter()
            .filter(|file| file.path.ends_with(".safetensors"))
            .collect();
        assert_eq!(files.len(), 2);
        for file in files {
            assert_eq!(file.tensor_count, Some(1), "{:?}", file.format_error);
        }
    }
}
