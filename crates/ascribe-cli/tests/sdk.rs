//! The official OpenAI and Anthropic Python SDKs call a real `ascribe serve`, as an
//! application would, and the ledger is then asked what served each call.
//!
//! The registry is built with the CLI, its deployments pointing at the stand-in upstream
//! (`ascribe_gateway::testing`), whose answers are recorded provider responses. The scripts
//! in `tests/sdk/` make every kind of call (plain, raw for the `Ascribe-*` headers, streamed,
//! errors) and print one JSON line per call; for each recorded call `ascribe audit` must name
//! the alias asked for and the model the fixture served, each receipt from a header must
//! verify, and after SIGTERM `ascribe verify` must pass.
//!
//! The SDKs live in a virtual environment under the target directory, built from
//! `tests/sdk/requirements.txt` when it is missing or its stamp (the hash of the pins and of
//! the Python version) differs. When it cannot be built the test fails with pip's output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use ascribe_gateway::testing::StandInUpstream;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The pins, compiled in so that a change to them rebuilds this test and its venv.
mod common;

use common::{register_scenarios, Ascribe, Scenario, Server};

const REQUIREMENTS: &str = include_str!("sdk/requirements.txt");
/// The variable the Anthropic deployments read their provider key from.
const ANTHROPIC_KEY_VARIABLE: &str = "ASCRIBE_SDK_TEST_ANTHROPIC_KEY";
/// How long the server may take to print its address, and to exit after SIGTERM.
/// The stamp file inside the venv.
const STAMP: &str = "ascribe-requirements.sha256";

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdk-venv")
}

/// Runs a command to completion, failing the test with its whole output otherwise.
fn run_or_fail(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The stamp a venv built from these pins with this Python carries.
fn wanted_stamp() -> String {
    let version = run_or_fail(
        Command::new("python3").arg("--version"),
        "python3 --version",
    );
    let mut hash = Sha256::new();
    hash.update(REQUIREMENTS.as_bytes());
    hash.update(&version.stdout);
    hash.update(&version.stderr);
    hex::encode(hash.finalize())
}

fn stamp_of(venv: &Path) -> Option<String> {
    let stamp = std::fs::read_to_string(venv.join(STAMP)).ok()?;
    venv.join("bin/python")
        .exists()
        .then(|| stamp.trim().to_owned())
}

/// A venv being built; removed when dropped unless it was moved into place.
struct Building(PathBuf);

impl Drop for Building {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The venv's Python, after building the venv if it is missing or stale. It is built
/// beside its final place and renamed into it, so a concurrent run never sees half of it.
fn sdk_python() -> PathBuf {
    let venv = venv_dir();
    let wanted = wanted_stamp();
    if stamp_of(&venv).as_deref() == Some(wanted.as_str()) {
        return venv.join("bin/python");
    }
    let building =
        Building(venv.with_file_name(format!("sdk-venv.building-{}", std::process::id())));
    let building = &building.0;
    let _ = std::fs::remove_dir_all(building);
    run_or_fail(
        Command::new("python3").args(["-m", "venv"]).arg(building),
        "python3 -m venv",
    );
    run_or_fail(
        Command::new(building.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--quiet", "-r"])
            .arg(scripts_dir().join("requirements.txt")),
        "pip install -r tests/sdk/requirements.txt",
    );
    std::fs::write(building.join(STAMP), &wanted).expect("stamp written");
    let _ = std::fs::remove_dir_all(&venv);
    if std::fs::rename(building, &venv).is_err() {
        // Another run put its own venv there first; use it if it is the one wanted.
        assert_eq!(
            stamp_of(&venv).as_deref(),
            Some(wanted.as_str()),
            "cannot move the new venv into {}",
            venv.display()
        );
    }
    venv.join("bin/python")
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        alias: "v1",
        upstream_model: "openai-chat",
        dialect: "openai-compatible",
        expect_served: "gpt-4o-2024-08-06",
    },
    Scenario {
        alias: "v1-responses",
        upstream_model: "openai-responses",
        dialect: "openai-compatible",
        expect_served: "gpt-4o-2024-08-06",
    },
    Scenario {
        alias: "v1-embeddings",
        upstream_model: "openai-embeddings",
        dialect: "openai-compatible",
        expect_served: "text-embedding-3-small",
    },
    Scenario {
        alias: "claude",
        upstream_model: "anthropic-messages",
        dialect: "anthropic",
        expect_served: "claude-sonnet-4-5-20250929",
    },
    Scenario {
        alias: "claude-overloaded",
        upstream_model: "anthropic-overloaded",
        dialect: "anthropic",
        expect_served: "claude-sonnet-4-5-20250929",
    },
];

/// What the ledger must say about one call a script made.
struct Expected {
    requested: &'static str,
    checkpoint: &'static str,
    /// The model the fixture served; `None` when nothing was served.
    served: Option<&'static str>,
    identity_match: &'static str,
    fingerprint: Option<&'static str>,
    stream: bool,
    status: u64,
    outcome: &'static str,
}

const CHAT: Expected = Expected {
    requested: "v1",
    checkpoint: "standin:openai-chat",
    served: Some("gpt-4o-2024-08-06"),
    identity_match: "match",
    fingerprint: Some("fp_898ac29719"),
    stream: false,
    status: 200,
    outcome: "answered",
};

/// The chat stream fixture was served by mini: a different model than the one expected.
const CHAT_STREAM: Expected = Expected {
    served: Some("gpt-4o-mini-2024-07-18"),
    identity_match: "mismatch",
    fingerprint: Some("fp_d0469e1700"),
    stream: true,
    outcome: "stream_open",
    ..CHAT
};

const RESPONSES: Expected = Expected {
    requested: "v1-responses",
    checkpoint: "standin:openai-responses",
    fingerprint: None,
    ..CHAT
};

const CLAUDE: Expected = Expected {
    requested: "claude",
    checkpoint: "standin:anthropic-messages",
    served: Some("claude-sonnet-4-5-20250929"),
    fingerprint: None,
    ..CHAT
};

/// Every line the scripts print, by call, and what the ledger must hold for it; `None`
/// for calls refused before anything was recorded.
fn expectations() -> BTreeMap<&'static str, Option<Expected>> {
    BTreeMap::from([
        ("chat", Some(CHAT)),
        ("chat.raw", Some(CHAT)),
        ("chat.stream", Some(CHAT_STREAM)),
        ("chat.stream.plain", Some(CHAT_STREAM)),
        ("responses", Some(RESPONSES)),
        (
            "responses.stream",
            Some(Expected {
                served: Some("gpt-4.1-2025-04-14"),
                identity_match: "mismatch",
                stream: true,
                outcome: "stream_open",
                ..RESPONSES
            }),
        ),
        (
            "embeddings",
            Some(Expected {
                requested: "v1-embeddings",
                checkpoint: "standin:openai-embeddings",
                served: Some("text-embedding-3-small"),
                fingerprint: None,
                ..CHAT
            }),
        ),
        ("models.list", None),
        ("chat.unknown_model", None),
        ("chat.bad_key", None),
        ("messages", Some(CLAUDE)),
        ("messages.raw", Some(CLAUDE)),
        (
            "messages.stream",
            Some(Expected {
                stream: true,
                outcome: "stream_open",
                ..CLAUDE
            }),
        ),
        (
            "messages.overloaded",
            Some(Expected {
                requested: "claude-overloaded",
                checkpoint: "standin:anthropic-overloaded",
                served: None,
                identity_match: "none",
                status: 529,
                outcome: "upstream_error",
                ..CLAUDE
            }),
        ),
        ("messages.bad_key", None),
    ])
}

/// Runs one SDK script against the gateway and returns its lines, by call.
fn run_script(python: &Path, script: &str, server: &Server, token: &str) -> Vec<Value> {
    let output = Command::new(python)
        .arg(scripts_dir().join(script))
        .env("ASCRIBE_SDK_GATEWAY", &server.base)
        .env("ASCRIBE_SDK_KEY", token)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}\n--- gateway log\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    // Shown with `--nocapture`: what each SDK call handed back.
    eprintln!("{script}:\n{stdout}");
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON document per line"))
        .collect()
}

/// Checks what the ledger holds for one recorded call, and the receipts it handed out.
fn audit_call(ascribe: &Ascribe<'_>, line: &Value, expected: &Expected) {
    let call = line["call"].as_str().unwrap_or("?");
    assert_eq!(line["requested_model"], expected.requested, "{call}");
    assert_eq!(
        line["returned_model"].as_str(),
        expected.served,
        "{call}: the SDK saw the model the ledger must name"
    );

    // Every recorded call carried a decision reference: plain calls are found through it.
    let decision = line["decision"].as_str().expect("a decision reference");
    let found = ascribe.ok(&["audit", "decision", decision, "--json"]);
    let inferences = found["inferences"].as_array().expect("inferences");
    assert_eq!(inferences.len(), 1, "{call}: {found}");
    let id = inferences[0]["inference_id"].as_str().expect("an id");
    if let Some(from_header) = line["inference_id"].as_str() {
        assert_eq!(
            id, from_header,
            "{call}: the header names the recorded inference"
        );
    }

    let audit = ascribe.ok(&["audit", "inference", id, "--json"]);
    let context = format!("{call}: {audit}");
    assert_eq!(audit["inference_id"], id, "{context}");
    assert_eq!(audit["caller"], "app", "{context}");
    assert_eq!(audit["decision"], decision, "{context}");
    assert_eq!(audit["requested_model"], expected.requested, "{context}");
    assert_eq!(audit["alias"], expected.requested, "{context}");
    assert_eq!(audit["checkpoint"], expected.checkpoint, "{context}");
    assert_eq!(audit["served_model"].as_str(), expected.served, "{context}");
    assert_eq!(
        audit["system_fingerprint"].as_str(),
        expected.fingerprint,
        "{context}"
    );
    assert_eq!(
        audit["identity_match"], expected.identity_match,
        "{context}"
    );
    assert_eq!(audit["stream"], expected.stream, "{context}");
    assert_eq!(audit["status"], expected.status, "{context}");
    assert_eq!(audit["outcome"], expected.outcome, "{context}");
    assert!(
        audit["inclusion_proof"]["tree_size"].is_u64(),
        "{call}: the head signed at shutdown covers it: {}",
        audit["inclusion_proof"]
    );
    if expected.stream {
        let completion = &audit["completion"]["record"];
        assert_eq!(completion["completed"], true, "{context}");
        assert_eq!(completion["truncated"], false, "{context}");
    }

    let headers = &line["headers"];
    match headers["ascribe-receipt"].as_str() {
        Some(receipt) => {
            assert_eq!(headers["ascribe-checkpoint"], expected.checkpoint, "{call}");
            let verified = ascribe.ok(&["receipt", "verify", receipt, "--json"]);
            assert_eq!(verified["ok"], true, "{call}: {verified}");
            assert_eq!(
                verified["receipt"]["inference_id"], id,
                "{call}: {verified}"
            );
            assert_eq!(
                verified["receipt"]["seq"], audit["seq"],
                "{call}: {verified}"
            );
            assert_eq!(
                verified["receipt"]["checkpoint"], expected.checkpoint,
                "{call}: {verified}"
            );
        }
        // Only an error answer carries the id without a receipt.
        None => assert!(
            expected.status >= 400 || line["inference_id"].is_null(),
            "{call}: a success answer read raw carries a receipt: {line}"
        ),
    }
}

#[test]
fn official_sdks_call_the_gateway_and_the_ledger_names_what_served_them() {
    let started = Instant::now();
    let python = sdk_python();
    let venv_ready = started.elapsed();

    let home = tempfile::tempdir().expect("tempdir");
    let ascribe = Ascribe {
        home: home.path(),
        db: "sqlite://ledger.db".to_owned(),
    };
    let token = ascribe.init_with_caller_key("app");
    let upstream = StandInUpstream::start().expect("stand-in starts");
    register_scenarios(
        &ascribe,
        &upstream.base_url(),
        &SCENARIOS,
        ANTHROPIC_KEY_VARIABLE,
    );

    let mut server = Server::start(&ascribe, &[], &[(ANTHROPIC_KEY_VARIABLE, "sk-ant-standin")]);
    let mut lines = run_script(&python, "openai_calls.py", &server, &token);
    lines.extend(run_script(&python, "anthropic_calls.py", &server, &token));
    let status = server.terminate();
    assert!(status.success(), "exit {status}: {}", server.log());

    let mut expected = expectations();
    let mut calls: Vec<&str> = lines.iter().filter_map(|l| l["call"].as_str()).collect();
    calls.sort_unstable();
    let wanted: Vec<&str> = expected.keys().copied().collect();
    assert_eq!(calls, wanted, "one line per call: {lines:?}");
    for line in &lines {
        let call = line["call"].as_str().unwrap_or("?");
        match expected.remove(call).flatten() {
            Some(expected) => audit_call(&ascribe, line, &expected),
            None => assert!(line["inference_id"].is_null(), "{call}: {line}"),
        }
    }

    let report = ascribe.ok(&["verify", "--json"]);
    assert_eq!(report["ok"], true, "{report}");
    eprintln!(
        "venv ready in {:.1} s, SDK calls and audits in {:.1} s",
        venv_ready.as_secs_f64(),
        (started.elapsed() - venv_ready).as_secs_f64()
    );
}
