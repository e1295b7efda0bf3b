//! `ascribe serve` on a real socket, on SQLite and on PostgreSQL: an admin key made with
//! `ascribe key create` drives registry changes over HTTP, SIGTERM stops the server cleanly,
//! and the ledger it leaves verifies, with a signed tree head over its last entry.

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};

mod common;

use common::{Ascribe, Server};

/// Checks that `/healthz` answers as documented.
fn assert_healthy(client: &Client, server: &Server) {
    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .expect("answers");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().expect("json"),
        json!({"status": "ok"})
    );
}

fn post(client: &Client, server: &Server, token: &str, path: &str, body: Value) -> Value {
    let response = client
        .post(format!("{}{path}", server.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("request sent");
    let status = response.status();
    let answer: Value = response.json().expect("json");
    assert!(status.is_success(), "POST {path}: {status} {answer}");
    answer
}

fn serve_then_stop(db: String) {
    let home = tempfile::tempdir().expect("tempdir");
    let ascribe = Ascribe {
        home: home.path(),
        db,
    };
    ascribe.ok(&["init", "--json"]);
    let key = ascribe.ok(&["key", "create", "release-bot", "--role", "admin", "--json"]);
    let token = key["token"].as_str().expect("token").to_owned();

    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut server = Server::start(&ascribe, &[], &[]);
    assert_healthy(&client, &server);

    let (may, aug) = ("gpt-4o-2024-05-13", "gpt-4o-2024-08-06");
    for snapshot in [may, aug] {
        let checkpoint = json!({"provider": "openai", "snapshot": snapshot});
        post(
            &client,
            &server,
            &token,
            "/admin/v1/checkpoints",
            checkpoint,
        );
        let deployment = json!({
            "name": snapshot, "checkpoint": format!("openai:{snapshot}"), "dialect": "openai",
            "base_url": "https://api.openai.com/v1", "upstream_model": snapshot,
        });
        post(
            &client,
            &server,
            &token,
            "/admin/v1/deployments",
            deployment,
        );
    }
    let alias = json!({"name": "v1", "deployment": may});
    post(&client, &server, &token, "/admin/v1/aliases", alias);
    let rotation =
        json!({"to": aug, "kind": "upgrade", "reason": "newer", "actor": "forged-actor"});
    let rotated = post(
        &client,
        &server,
        &token,
        "/admin/v1/aliases/v1/rotate",
        rotation,
    );
    assert_eq!(rotated["to"]["deployment"], aug);

    let shown: Value = client
        .get(format!("{}/admin/v1/aliases/v1", server.base))
        .bearer_auth(&token)
        .send()
        .and_then(|response| response.json())
        .expect("alias shown");
    assert_eq!(shown["history"][1]["rotation"]["actor"], "release-bot");

    let status = server.terminate();
    assert!(status.success(), "exit {status}: {}", server.log());

    // The key, two checkpoints, two deployments, the alias and its rotation, all covered by
    // the head signed when the server stopped.
    let report = ascribe.ok(&["verify", "--json"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries"], 7);
    assert_eq!(report["tree_size"], 7);
}

#[test]
fn serve_on_sqlite_records_changes_and_stops_cleanly() {
    serve_then_stop("sqlite://ledger.db".to_owned());
}

#[test]
fn serve_on_postgres_records_changes_and_stops_cleanly() {
    serve_then_stop(ascribe_store::testing::fresh_postgres_schema());
}

/// `ascribe replay` sends a kept request to the deployment that answered it: the stand-in
/// answers the same way, so the replay reproduces; once that deployment is gone, the replay
/// says so and calls nothing else.
/// A ledger in `ascribe`'s home with alias `v1` on a stand-in deployment that keeps bodies,
/// and one inference answered through `ascribe serve`, which is stopped again. Returns the
/// stand-in (dropping it takes the deployment away) and the inference id.
fn one_inference_through_serve(
    ascribe: &Ascribe<'_>,
) -> (ascribe_gateway::testing::StandInUpstream, String) {
    let upstream = ascribe_gateway::testing::StandInUpstream::start().expect("stand-in");
    let token = ascribe.init_with_caller_key("risk-service");
    ascribe.ok(&[
        "checkpoint",
        "register",
        "--provider",
        "standin",
        "--snapshot",
        "openai-chat",
    ]);
    let base_url = upstream.base_url();
    ascribe.ok(&[
        "deployment",
        "register",
        "kept",
        "--checkpoint",
        "standin:openai-chat",
        "--dialect",
        "openai-compatible",
        "--base-url",
        &base_url,
        "--upstream-model",
        "openai-chat",
        "--expect-served",
        "gpt-4o-2024-08-06",
        "--retention",
        "full",
    ]);
    ascribe.ok(&["alias", "create", "v1", "--to", "kept"]);

    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut server = Server::start(ascribe, &[], &[]);
    assert_healthy(&client, &server);
    let body = json!({"model": "v1", "messages": [{"role": "user", "content": "hi"}]});
    let response = client
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .expect("answered");
    assert_eq!(response.status(), 200);
    let id = response.headers()["ascribe-inference-id"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(server.terminate().success(), "{}", server.log());
    (upstream, id)
}

#[test]
fn replay_reproduces_against_the_same_deployment_and_says_when_it_is_gone() {
    let home = tempfile::tempdir().expect("tempdir");
    let ascribe = Ascribe {
        home: home.path(),
        db: "sqlite://ledger.db".to_owned(),
    };
    let (upstream, id) = one_inference_through_serve(&ascribe);

    let report = ascribe.ok(&["replay", &id, "--json"]);
    assert_eq!(report["verdict"], "reproduced", "{report}");
    assert_eq!(report["replay_served_model"], "gpt-4o-2024-08-06");
    assert_eq!(
        report["original_output_sha256"],
        report["replay_output_sha256"]
    );

    drop(upstream);
    let output = ascribe
        .command(&["replay", &id, "--json"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["verdict"], "not_deployed");
    assert!(report["error"]
        .as_str()
        .is_some_and(|error| error.contains("no longer deployed")));

    let verified = ascribe.ok(&["verify", "--json"]);
    assert_eq!(verified["ok"], true, "{verified}");
    let kinds: Vec<Value> = ascribe_kinds(&ascribe);
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| *kind == "replay.recorded")
            .count(),
        2
    );
}

#[test]
fn audit_commands_and_exports_answer_about_what_serve_recorded() {
    let home = tempfile::tempdir().expect("tempdir");
    let ascribe = Ascribe {
        home: home.path(),
        db: "sqlite://ledger.db".to_owned(),
    };
    let (_upstream, id) = one_inference_through_serve(&ascribe);
    let window = [
        "--from",
        "2020-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
    ];

    let checkpoint = ascribe.ok(&["audit", "checkpoint", "standin:openai-chat", "--json"]);
    assert_eq!(checkpoint["inferences"], 1, "{checkpoint}");
    assert_eq!(checkpoint["first_inference"]["inference_id"], id.as_str());
    let page = ascribe.ok(&[
        &["audit", "inferences"][..],
        &window,
        &["--caller", "risk-service", "--json"],
    ]
    .concat());
    assert_eq!(page["inferences"][0]["inference_id"], id.as_str(), "{page}");
    assert!(page["next"].is_null());

    let package = home.path().join("window.jsonl");
    let package_text = package.to_str().expect("utf-8 path");
    let written = ascribe.ok(&[&["export"][..], &window, &["-o", package_text, "--json"]].concat());
    assert!(
        written["rows"].as_u64().is_some_and(|rows| rows > 5),
        "{written}"
    );
    let verified = ascribe.ok(&["verify", "--export", package_text, "--json"]);
    assert_eq!(verified["ok"], true, "{verified}");

    let mut bytes = std::fs::read(&package).expect("package");
    let position = bytes
        .windows(4)
        .position(|w| w == b"inf_")
        .expect("an inference")
        + 5;
    bytes[position] ^= 1;
    std::fs::write(&package, &bytes).expect("written");
    let output = ascribe
        .command(&["verify", "--export", package_text, "--json"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let failed: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(failed["ok"], false);
    assert!(
        failed["line"].as_u64().is_some_and(|line| line > 1),
        "{failed}"
    );

    let output = ascribe
        .command(&[&["export"][..], &window, &["--format", "csv", "-o", "-"]].concat())
        .output()
        .expect("runs");
    let csv = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).is_some_and(|row| row.starts_with(&id)));

    let output = ascribe
        .command(&[&["export"][..], &window, &["--format", "pdf", "-o", "x"]].concat())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("use jsonl, csv or html"));
}

fn ascribe_kinds(ascribe: &Ascribe<'_>) -> Vec<Value> {
    let connection = rusqlite::Connection::open(ascribe.home.join("ledger.db")).expect("opens");
    let mut statement = connection
        .prepare("SELECT kind FROM ledger_entries")
        .expect("sql");
    let kinds = statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("rows");
    kinds
        .map(|kind| Value::String(kind.expect("kind")))
        .collect()
}
