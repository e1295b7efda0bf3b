//! Ascribe on a real model: `examples/real-model/run.sh` serves two checkpoints of
//! SmolLM2-135M-Instruct with llama.cpp, rotates an alias between them, and checks every
//! decision's recorded checkpoint against what each checkpoint itself answers (see
//! `examples/real-model/README.md`).
//!
//! The script downloads the weights and builds llama-cpp-python once into
//! `<target>/real-model/cache`, reused while its stamp matches; the first run compiles
//! llama.cpp (minutes). Nothing is skipped: a failed download or build fails this test with
//! the script's output.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// The scenario's segments: created, rotated, rolled back, rotated forward.
const SEGMENTS: u64 = 4;
const ROTATIONS: u64 = 3;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/ascribe-cli is two levels below the workspace")
        .to_path_buf()
}

#[test]
fn a_real_model_behind_the_gateway_is_attributed_to_the_checkpoint_that_answered() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().expect("CARGO_TARGET_TMPDIR is <target>/tmp");
    let script = workspace_root().join("examples/real-model/run.sh");
    let output = Command::new("bash")
        .arg(&script)
        .env("ASCRIBE_BIN", env!("CARGO_BIN_EXE_ascribe"))
        .env("REAL_MODEL_WORK", tmp.join("real-model"))
        .env("REAL_MODEL_CACHE", target.join("real-model/cache"))
        .env_remove("REAL_MODEL_LLAMA_VENV")
        .env_remove("ASCRIBE_HOME")
        .env_remove("ASCRIBE_DB")
        .env_remove("ASCRIBE_LISTEN")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        output.status
    );
    // Shown with `--nocapture`: the scenario as it ran.
    eprintln!("{stdout}");

    let last = stdout.lines().last().unwrap_or_default();
    let summary: Value = serde_json::from_str(last)
        .unwrap_or_else(|error| panic!("the last line is not JSON ({error}): {last}"));
    let decisions = summary["decisions"].as_u64().expect("decisions");
    assert!(decisions > 0, "{summary}");
    assert_eq!(
        summary,
        json!({
            "decisions": decisions,
            "rotations": ROTATIONS,
            "attributed_correctly": decisions,
            "mismatches": 0,
            "replays_matched": SEGMENTS,
            "verify_ok": true,
            "export_ok": true,
        }),
        "{stdout}"
    );
}
