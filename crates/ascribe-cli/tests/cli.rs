//! The `ascribe` binary driven as a user drives it: init, appends, verify, tampering.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn ascribe(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ascribe"))
        .args(args)
        .env("ASCRIBE_HOME", home)
        .env_remove("ASCRIBE_DB")
        .output()
        .expect("ascribe runs")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn initialised_ledger_with_three_entries() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    assert!(ascribe(home.path(), &["init"]).status.success());
    for (name, role) in [("ops", "admin"), ("app", "caller")] {
        let output = ascribe(
            home.path(),
            &["key", "create", name, "--role", role, "--json"],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(ascribe(home.path(), &["key", "revoke", "app"])
        .status
        .success());
    home
}

#[test]
fn init_then_appends_then_verify_reports_ok() {
    let home = initialised_ledger_with_three_entries();
    let output = ascribe(home.path(), &["verify", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let report = json_of(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["entries"], 3);
    assert_eq!(report["tree_size"], 3);
    assert_eq!(report["heads_checked"], 3);
    assert_eq!(report["first_bad_seq"], Value::Null);
    assert_eq!(report["root"].as_str().map(str::len), Some(64));
}

#[test]
fn one_changed_byte_is_named_with_exit_code_one() {
    let home = initialised_ledger_with_three_entries();
    let connection = rusqlite::Connection::open(home.path().join("ledger.db")).expect("opens");
    connection
        .execute_batch(
            "DROP TRIGGER ledger_entries_refuse_update;
             UPDATE ledger_entries SET entry = replace(entry, 'caller', 'admin') WHERE seq = 1;",
        )
        .expect("attacker edits the row");
    drop(connection);

    let output = ascribe(home.path(), &["verify", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad_seq"], 1);
    assert!(report["error"]
        .as_str()
        .is_some_and(|error| error.contains("seq 1")));
}

#[test]
fn database_refuses_updates_while_triggers_stand() {
    let home = initialised_ledger_with_three_entries();
    let connection = rusqlite::Connection::open(home.path().join("ledger.db")).expect("opens");
    let error = connection
        .execute(
            "UPDATE ledger_entries SET actor = 'someone' WHERE seq = 0",
            [],
        )
        .expect_err("update refused");
    assert!(error.to_string().contains("append-only"), "{error}");
    let error = connection
        .execute("DELETE FROM ledger_entries", [])
        .expect_err("delete refused");
    assert!(error.to_string().contains("append-only"), "{error}");
}

#[test]
fn inclusion_proof_from_the_cli_verifies_against_the_signed_head() {
    use base64::Engine as _;
    let home = initialised_ledger_with_three_entries();
    let head = ascribe(home.path(), &["ledger", "head"]);
    let public_key = ascribe(home.path(), &["ledger", "public-key"]);
    let verifier = ascribe_ledger::NoteVerifier::from_public_key(
        &String::from_utf8(public_key.stdout).expect("utf-8"),
    )
    .expect("public key parses");
    let tree_head = verifier
        .verify_note(&String::from_utf8(head.stdout).expect("utf-8"))
        .expect("head verifies");
    assert_eq!(tree_head.size, 3);

    let proof = json_of(&ascribe(
        home.path(),
        &["ledger", "proof", "--index", "1", "--size", "3"],
    ));
    let decode = |value: &Value| -> ascribe_ledger::Hash {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64 string"))
            .expect("base64");
        bytes.try_into().expect("32 bytes")
    };
    let hashes: Vec<_> = proof["proof"]
        .as_array()
        .expect("array")
        .iter()
        .map(decode)
        .collect();
    ascribe_ledger::merkle::verify_inclusion(
        1,
        3,
        &decode(&proof["leaf_hash"]),
        &hashes,
        &tree_head.root,
    )
    .expect("proof verifies against the signed root");
}

#[test]
fn commands_before_init_say_what_to_do() {
    let home = tempfile::tempdir().expect("tempdir");
    let output = ascribe(home.path(), &["verify"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ascribe init"), "{stderr}");
}

#[test]
fn refused_key_is_reported_and_writes_nothing() {
    let home = initialised_ledger_with_three_entries();
    let output = ascribe(home.path(), &["key", "create", "ops", "--role", "admin"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
    assert_eq!(
        json_of(&ascribe(home.path(), &["verify", "--json"]))["entries"],
        3
    );
}

#[test]
fn json_failures_print_a_json_document_and_a_closed_pipe_is_no_panic() {
    let home = initialised_ledger_with_three_entries();

    let output = ascribe(
        home.path(),
        &["audit", "decision", "case-unknown", "--json"],
    );
    assert_eq!(output.status.code(), Some(2));
    let failure = json_of(&output);
    assert_eq!(failure["ok"], false);
    assert!(
        failure["error"]
            .as_str()
            .is_some_and(|error| error.contains("no inference carries decision reference")),
        "{failure}"
    );

    // `ascribe verify --json | head -c 0`: the reader is gone before the first line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ascribe"))
        .args(["verify", "--json"])
        .env("ASCRIBE_HOME", home.path())
        .env_remove("ASCRIBE_DB")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ascribe runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("ascribe ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}
