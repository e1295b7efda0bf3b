//! `ascribe hash PATH [--json]`: the weight manifest of a model's files and its checkpoint id.

use std::path::PathBuf;

use ascribe_weights::{Format, WeightManifest};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::commands::print_json;
use crate::Outcome;

/// Arguments of `ascribe hash`.
#[derive(clap::Args, Debug)]
pub struct HashArgs {
    /// A model file, or a directory of model files walked recursively. Symbolic links are
    /// refused: pass the resolved path.
    path: PathBuf,
    /// Print `{"checkpoint": .., "files": [..]}` as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One file as `--json` prints it: exactly these members.
#[derive(Serialize)]
struct JsonFile<'a> {
    path: &'a str,
    size: u64,
    sha256: &'a str,
    format: Option<Format>,
    tensor_count: Option<u64>,
}

/// The manifest as `--json` prints it.
#[derive(Serialize)]
struct JsonManifest<'a> {
    checkpoint: &'a str,
    files: Vec<JsonFile<'a>>,
}

/// Hashes the path, with a progress bar on stderr when it is a terminal, and prints the
/// manifest: a table with the checkpoint id last, or JSON.
pub fn run(args: HashArgs) -> anyhow::Result<Outcome> {
    let progress = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    progress.set_style(ProgressStyle::with_template(
        "hashing {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    )?);
    let manifest = ascribe_weights::hash_path(&args.path, &|done, total| {
        if progress.length() != Some(total) {
            progress.set_length(total);
        }
        progress.set_position(done);
    });
    progress.finish_and_clear();
    let manifest = manifest?;

    for file in &manifest.files {
        if let (Some(format), Some(problem)) = (file.format, &file.format_error) {
            eprintln!(
                "warning: {}: {format} header not understood ({problem}); it is hashed all the \
                 same, with no tensor count",
                file.path
            );
        }
    }
    if args.json {
        print_json(&JsonManifest {
            checkpoint: &manifest.checkpoint,
            files: manifest
                .files
                .iter()
                .map(|file| JsonFile {
                    path: &file.path,
                    size: file.size,
                    sha256: &file.sha256,
                    format: file.format,
                    tensor_count: file.tensor_count,
                })
                .collect(),
        })?;
    } else {
        print_table(&manifest);
    }
    Ok(Outcome::Success)
}

fn print_table(manifest: &WeightManifest) {
    let width = manifest
        .files
        .iter()
        .map(|file| file.path.chars().count())
        .chain(["path".len()])
        .max()
        .unwrap_or(4);
    println!(
        "{:<width$}  {:>15}  {:<11}  {:>7}  sha256",
        "path", "size", "format", "tensors"
    );
    for file in &manifest.files {
        let format = file.format.map_or("-", Format::as_str);
        let tensors = file
            .tensor_count
            .map_or_else(|| "-".to_owned(), |count| count.to_string());
        println!(
            "{:<width$}  {:>15}  {:<11}  {:>7}  {}",
            file.path, file.size, format, tensors, file.sha256
        );
    }
    let count = manifest.files.len();
    let noun = if count == 1 { "file" } else { "files" };
    println!("{count} {noun}, {} bytes", manifest.total_size());
    println!("checkpoint {}", manifest.checkpoint);
}
