//! A scripted history (an upgrade, an incident rollback, a re-upgrade, drift, a cut stream)
//! written with a manual clock on each store, and every audit answer compared with the values
//! worked out by hand from the script.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use ascribe_audit::export::{export, Format};
use ascribe_audit::package::verify_package;
use ascribe_audit::search::InferenceQuery;
use ascribe_audit::{alias, checkpoint, inference, search, Window};
use ascribe_inference::{CompletionRecord, InferenceRecord, Observation, UpstreamCall};
use ascribe_ledger::{NoteSigner, Timestamp};
use ascribe_registry::changes::{
    create_alias, register_checkpoint, register_deployment, rotate_alias, store_document, NewAlias,
    NewCheckpoint, NewDeployment, NewDocument, NewRotation,
};
use ascribe_registry::{
    AnswerModel, Dialect, DocumentRole, MismatchPolicy, Retention, RotationKind,
};
use ascribe_store::testing::{fresh_postgres_schema, ManualClock};
use ascribe_store::{
    open_backend, Backend, DatabaseLocation, Ledger, PendingEntry, TreeHeadPolicy,
};
use serde_json::json;

const ORIGIN: &str = "ascribe.test/audit";
const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const OLD: &str = "openai:gpt-4o-2024-05-13";
const NEW: &str = "openai:gpt-4o-2024-08-06";

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, [9u8; 32])
}

fn t0() -> Timestamp {
    Timestamp::parse("2026-03-01T09:00:00.000000Z").expect("valid")
}

fn at(offset: i64) -> Timestamp {
    Timestamp::from_unix_micros(t0().unix_micros() + offset)
}

fn append(ledger: &mut Ledger, pending: PendingEntry) -> u64 {
    let outcome = ledger
        .append_batch(&[pending])
        .expect("appends")
        .pop()
        .expect("outcome");
    outcome.expect("accepted").entry.seq
}

fn deployment(name: &str, checkpoint: &str, upstream_model: &str) -> NewDeployment {
    NewDeployment {
        name: name.into(),
        checkpoint: checkpoint.into(),
        dialect: Dialect::Openai,
        base_url: "https://api.openai.com/v1".into(),
        upstream_model: upstream_model.into(),
        expect_served: None,
        api_key_env: Some("OPENAI_API_KEY".into()),
        allow_moving_name: false,
        retention: Retention::Digest,
    }
}

struct Call<'a> {
    id: &'a str,
    caller: &'a str,
    decision: Option<&'a str>,
    deployment: &'a str,
    checkpoint: &'a str,
    served_model: &'a str,
    fingerprint: Option<&'a str>,
    identity_match: &'a str,
    stream: bool,
}

fn record(call: &Call<'_>) -> InferenceRecord {
    InferenceRecord {
        inference_id: call.id.into(),
        api: "chat.completions".into(),
        caller: call.caller.into(),
        decision: call.decision.map(str::to_owned),
        requested_model: "v1".into(),
        alias: Some("v1".into()),
        deployment: call.deployment.into(),
        checkpoint: call.checkpoint.into(),
        moving_name: false,
        upstream: UpstreamCall {
            dialect: "openai".into(),
            base_url: "https://api.openai.com/v1".into(),
            model: call.checkpoint.trim_start_matches("openai:").into(),
        },
        served: json!({"model": call.served_model, "system_fingerprint": call.fingerprint}),
        identity_match: call.identity_match.into(),
        mismatch_kind: (call.identity_match == "mismatch").then(|| "different_model".into()),
        stream: call.stream,
        status: 200,
        outcome: if call.stream {
            "stream_open"
        } else {
            "answered"
        }
        .into(),
        request_sha256: "0".repeat(64),
        response_sha256: None,
        usage: None,
        error: None,
        upstream_ms: None,
        retained: None,
    }
}

fn observation(call: &Call<'_>, kind: &str) -> Observation {
    Observation {
        kind: kind.into(),
        inference_id: call.id.into(),
        deployment: call.deployment.into(),
        checkpoint: call.checkpoint.into(),
        expected: call.checkpoint.trim_start_matches("openai:").into(),
        served_model: Some(call.served_model.into()),
        system_fingerprint: call.fingerprint.map(str::to_owned),
        mismatch_kind: (kind == "served_model_mismatch").then(|| "different_model".into()),
    }
}

fn rotation(to: Option<&str>, kind: RotationKind, reason: &str) -> NewRotation {
    NewRotation {
        alias: "v1".into(),
        to: to.map(str::to_owned),
        kind,
        reason: reason.into(),
        evidence: None,
    }
}

/// The script. Returns the `seq` of each inference's entry, by inference id.
fn write_history(ledger: &mut Ledger, clock: &ManualClock) {
    let card = NewDocument {
        role: DocumentRole::Card,
        name: "card-may.md".into(),
        content: b"# gpt-4o May snapshot\n".to_vec(),
    };
    let card_reference = card.reference();
    append(ledger, store_document(card, "admin"));
    for (snapshot, card) in [
        ("gpt-4o-2024-05-13", Some(card_reference)),
        ("gpt-4o-2024-08-06", None),
    ] {
        let checkpoint = NewCheckpoint {
            hosted: Some(("openai".into(), snapshot.into())),
            card,
            ..NewCheckpoint::default()
        };
        append(ledger, register_checkpoint(checkpoint, "admin"));
    }
    append(
        ledger,
        register_deployment(deployment("may", OLD, "gpt-4o-2024-05-13"), "admin"),
    );
    append(
        ledger,
        register_deployment(deployment("aug", NEW, "gpt-4o-2024-08-06"), "admin"),
    );
    let alias = NewAlias {
        name: "v1".into(),
        deployment: "may".into(),
        require_evidence: false,
        on_mismatch: MismatchPolicy::Flag,
        answer_model: AnswerModel::Served,
    };
    append(ledger, create_alias(alias, "admin"));

    let call = |id, caller, decision, deployment, checkpoint, served_model| Call {
        id,
        caller,
        decision,
        deployment,
        checkpoint,
        served_model,
        fingerprint: None,
        identity_match: "match",
        stream: false,
    };

    clock.set(at(HOUR));
    let first = call(
        "inf_1",
        "risk-service",
        Some("case-1"),
        "may",
        OLD,
        "gpt-4o-2024-05-13",
    );
    append(ledger, record(&first).into_entry().expect("entry"));

    clock.set(at(2 * HOUR));
    append(
        ledger,
        rotate_alias(rotation(Some("aug"), RotationKind::Upgrade, "newer"), "ops"),
    );

    clock.set(at(3 * HOUR));
    let second = Call {
        fingerprint: Some("fp_1"),
        ..call(
            "inf_2",
            "risk-service",
            Some("case-2"),
            "aug",
            NEW,
            "gpt-4o-2024-08-06",
        )
    };
    append(ledger, record(&second).into_entry().expect("entry"));
    let drift = observation(&second, "new_system_fingerprint");
    append(ledger, drift.into_new_fingerprint_entry().expect("entry"));

    clock.set(at(4 * HOUR));
    append(
        ledger,
        rotate_alias(
            rotation(None, RotationKind::Incident, "regression"),
            "oncall",
        ),
    );

    clock.set(at(5 * HOUR));
    let cut = Call {
        stream: true,
        ..call(
            "inf_3",
            "risk-service",
            Some("case-3"),
            "may",
            OLD,
            "gpt-4o-2024-05-13",
        )
    };
    append(ledger, record(&cut).into_entry().expect("entry"));
    let completion = CompletionRecord {
        inference_id: "inf_3".into(),
        completed: false,
        truncated: true,
        response_sha256: "1".repeat(64),
        n_bytes: 412,
        served: json!({"model": "gpt-4o-2024-05-13"}),
        usage: None,
        finish_reason: None,
        error: Some("upstream closed the stream before its end".into()),
        retained_response: None,
    };
    append(ledger, completion.into_entry().expect("entry"));

    clock.set(at(5 * HOUR + MINUTE));
    let mismatch = Call {
        identity_match: "mismatch",
        ..call("inf_4", "batch", None, "may", OLD, "gpt-4o-2024-11-20")
    };
    append(ledger, record(&mismatch).into_entry().expect("entry"));
    let drift = observation(&mismatch, "served_model_mismatch");
    append(ledger, drift.into_entry().expect("entry"));

    clock.set(at(6 * HOUR));
    append(
        ledger,
        rotate_alias(rotation(Some("aug"), RotationKind::Upgrade, "fixed"), "ops"),
    );

    clock.set(at(7 * HOUR));
    let last = call(
        "inf_5",
        "risk-service",
        Some("case-1"),
        "aug",
        NEW,
        "gpt-4o-2024-08-06",
    );
    append(ledger, record(&last).into_entry().expect("entry"));
}

/// A ledger at `url` with the script written.
fn ledger_with_history(url: &str) -> Ledger {
    let location: DatabaseLocation = url.parse().expect("location");
    let mut backend = open_backend(&location, true).expect("opens");
    Ledger::init(backend.as_mut(), &signer()).expect("init");
    ascribe_registry::create_tables(backend.as_mut()).expect("tables");
    ascribe_inference::create_tables(backend.as_mut()).expect("tables");
    let clock = ManualClock::new(t0());
    let mut ledger = Ledger::open(
        backend,
        signer(),
        Box::new(clock.clone()),
        TreeHeadPolicy::EveryBatch,
    )
    .expect("opens");
    ledger.add_projection(Box::new(ascribe_registry::RegistryProjection));
    ledger.add_projection(Box::new(ascribe_inference::InferenceProjection));
    write_history(&mut ledger, &clock);
    ledger
}

/// A ledger with the script written, on each store in turn.
fn for_each_store(test: impl Fn(&str, &mut dyn Backend)) {
    let directory = tempfile::tempdir().expect("tempdir");
    let sqlite = format!("sqlite://{}", directory.path().join("ledger.db").display());
    for url in [sqlite, fresh_postgres_schema()] {
        let mut ledger = ledger_with_history(&url);
        test(&url, ledger.backend());
    }
}

#[test]
fn inference_and_decision_answers_name_the_checkpoint_and_the_rotation() {
    for_each_store(|url, backend| {
        let cut = inference::inference(backend, "inf_3", Some(&signer())).expect("answers");
        assert_eq!(cut.record.checkpoint, OLD, "{url}");
        assert_eq!(cut.record.deployment, "may");
        assert_eq!(cut.time, at(5 * HOUR).to_string());
        let cause = &cut.rotation.as_ref().expect("a rotation").rotation;
        assert_eq!(
            (
                cause.kind.as_str(),
                cause.actor.as_str(),
                cause.reason.as_deref()
            ),
            ("incident", "oncall", Some("regression"))
        );
        let completion = cut.completion.as_ref().expect("completion recorded");
        assert!(!completion.record.completed && completion.record.truncated);
        assert_eq!(cut.documents.len(), 1);
        assert_eq!(cut.documents[0].name, "card-may.md");
        assert_eq!(cut.documents[0].role, "card");
        assert_eq!(cut.documents[0].stored_at, t0().to_string());
        assert!(matches!(
            cut.inclusion_proof,
            Some(inference::InclusionAnswer::Proof { .. })
        ));
        assert!(cut.receipt.is_some());

        let mismatch = inference::inference(backend, "inf_4", None).expect("answers");
        assert_eq!(mismatch.served_model.as_deref(), Some("gpt-4o-2024-11-20"));
        assert_eq!(mismatch.record.requested_model, "v1");
        assert_eq!(mismatch.record.identity_match, "mismatch");
        assert_eq!(mismatch.observations.len(), 1);
        assert_eq!(
            mismatch.observations[0].body["kind"],
            "served_model_mismatch"
        );

        let decision = inference::decision(backend, "case-1", None).expect("answers");
        let seen: Vec<_> = decision
            .inferences
            .iter()
            .map(|answer| {
                let cause = &answer.rotation.as_ref().expect("rotation").rotation;
                (
                    answer.record.inference_id.as_str(),
                    answer.record.checkpoint.as_str(),
                    cause.kind.clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("inf_1", OLD, "created".to_owned()),
                ("inf_5", NEW, "upgrade".to_owned())
            ]
        );

        let missing = inference::inference(backend, "inf_nope", None).expect_err("unknown");
        assert!(
            missing.to_string().contains("no inference `inf_nope`"),
            "{missing}"
        );
    });
}

#[test]
fn alias_answers_give_segments_counts_drift_and_gaps() {
    for_each_store(|url, backend| {
        let window = Window::new(at(-HOUR), at(8 * HOUR)).expect("window");
        let answer = alias::window(backend, "v1", window).expect("answers");
        let segments: Vec<_> = answer
            .segments
            .iter()
            .map(|s| {
                (
                    s.segment.rotation.kind.as_str(),
                    s.segment.deployment.as_str(),
                    s.inferences,
                )
            })
            .collect();
        assert_eq!(
            segments,
            [
                ("created", "may", 1),
                ("upgrade", "aug", 1),
                ("incident", "may", 2),
                ("upgrade", "aug", 1)
            ],
            "{url}"
        );
        assert_eq!(
            answer.gaps,
            [ascribe_audit::alias::Gap {
                from: at(-HOUR).to_string(),
                to: t0().to_string()
            }]
        );
        let drift: Vec<_> = answer
            .observations
            .iter()
            .map(|o| (o.time.clone(), o.body["kind"].clone()))
            .collect();
        assert_eq!(
            drift,
            [
                (at(3 * HOUR).to_string(), json!("new_system_fingerprint")),
                (
                    at(5 * HOUR + MINUTE).to_string(),
                    json!("served_model_mismatch")
                ),
            ]
        );
        assert_eq!(answer.observation_count, 2);

        // A window inside the incident: one segment, clipped counts.
        let inside =
            Window::new(at(4 * HOUR + 30 * MINUTE), at(5 * HOUR + 30 * MINUTE)).expect("w");
        let answer = alias::window(backend, "v1", inside).expect("answers");
        assert_eq!(answer.segments.len(), 1);
        assert_eq!(answer.segments[0].inferences, 2);
        assert!(answer.gaps.is_empty());

        // Half-open: at the instant of the rollback, the rollback is in force.
        let rollback = alias::at(backend, "v1", at(4 * HOUR)).expect("answers");
        let segment = rollback.segment.expect("existed").segment;
        assert_eq!(
            (segment.deployment.as_str(), segment.rotation.kind.as_str()),
            ("may", "incident")
        );
        assert_eq!(rollback.documents.len(), 1);
        let before = alias::at(backend, "v1", at(4 * HOUR - 1)).expect("answers");
        assert_eq!(before.segment.expect("existed").segment.deployment, "aug");
        let too_early = alias::at(backend, "v1", at(-1)).expect("answers");
        assert!(too_early.segment.is_none());
    });
}

#[test]
fn checkpoint_answers_list_every_period_in_production() {
    for_each_store(|url, backend| {
        let old = checkpoint::checkpoint(backend, OLD).expect("answers");
        let periods: Vec<_> = old
            .periods
            .iter()
            .map(|p| (p.segment.from.clone(), p.segment.to.clone(), p.inferences))
            .collect();
        assert_eq!(
            periods,
            [
                (t0().to_string(), Some(at(2 * HOUR).to_string()), 1),
                (at(4 * HOUR).to_string(), Some(at(6 * HOUR).to_string()), 2),
            ],
            "{url}"
        );
        assert_eq!(old.inferences, 3);
        assert_eq!(
            old.first_inference
                .as_ref()
                .map(|r| r.inference_id.as_str()),
            Some("inf_1")
        );
        assert_eq!(
            old.last_inference.as_ref().map(|r| r.inference_id.as_str()),
            Some("inf_4")
        );
        assert_eq!(old.decisions, 2);
        assert_eq!(old.decision_references, ["case-1", "case-3"]);

        let new = checkpoint::checkpoint(backend, NEW).expect("answers");
        assert_eq!(new.periods.len(), 2);
        assert_eq!(new.periods[1].segment.to, None);
        assert_eq!(new.inferences, 2);
        assert_eq!(new.fingerprints.len(), 1);
        assert_eq!(new.fingerprints[0].fingerprint, "fp_1");
    });
}

#[test]
fn inference_pages_cover_the_window_once() {
    for_each_store(|url, backend| {
        let mut query = InferenceQuery {
            window: Window::new(t0(), at(8 * HOUR)).expect("window"),
            caller: Some("risk-service".into()),
            alias: None,
            checkpoint: None,
            with_decision: false,
            after: None,
            limit: 2,
        };
        let mut pages = Vec::new();
        loop {
            let page = search::inferences(backend, &query).expect("page");
            pages.push(
                page.inferences
                    .iter()
                    .map(|r| r.inference_id.clone())
                    .collect::<Vec<_>>(),
            );
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        assert_eq!(
            pages,
            [vec!["inf_1", "inf_2"], vec!["inf_3", "inf_5"], vec![]],
            "{url}"
        );

        query.caller = None;
        query.checkpoint = Some(OLD.into());
        query.after = None;
        query.limit = 10;
        let page = search::inferences(backend, &query).expect("page");
        let ids: Vec<_> = page
            .inferences
            .iter()
            .map(|r| r.inference_id.as_str())
            .collect();
        assert_eq!(ids, ["inf_1", "inf_3", "inf_4"]);
        assert_eq!(page.next, None);
        assert_eq!(page.inferences[1].completed, Some(false));

        query.limit = 0;
        assert!(search::inferences(backend, &query).is_err());
    });
}

fn exported(backend: &mut dyn Backend, window: Window, format: Format) -> Vec<u8> {
    let mut bytes = Vec::new();
    export(backend, window, format, &mut bytes).expect("exports");
    bytes
}

/// Runs the independent Python verifier on `package`.
fn python_verifies(package: &[u8], directory: &Path) -> bool {
    let key = directory.join("ledger.pub");
    std::fs::write(&key, signer().verifier().public_key_text()).expect("key written");
    let path = directory.join("package.jsonl");
    std::fs::write(&path, package).expect("package written");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/verify_export.py");
    let output = Command::new(test_python())
        .arg(script)
        .arg("--public-key")
        .arg(&key)
        .arg(&path)
        .output()
        .expect("python3 runs");
    let status = output.status.code();
    assert!(
        matches!(status, Some(0 | 1)),
        "verify_export.py could not run: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    status == Some(0)
}

#[test]
fn the_jsonl_package_verifies_offline_and_fails_after_one_changed_byte() {
    let scratch = tempfile::tempdir().expect("tempdir");
    for_each_store(|url, backend| {
        let window =
            Window::new(at(2 * HOUR + 30 * MINUTE), at(6 * HOUR + 30 * MINUTE)).expect("w");
        let package = exported(backend, window, Format::Jsonl);
        let verifier = signer().verifier();
        let summary = verify_package(Cursor::new(&package), &verifier).expect("verifies");
        // inf_2 and its observation, the rollback, inf_3 and its completion, inf_4 and its
        // observation, the re-upgrade.
        assert_eq!(summary.entries, 8, "{url}");
        // The entry just before the window is the upgrade that put `aug` behind the alias; the
        // deployments and checkpoints of the segments come with it.
        let context: Vec<(String, String)> = package
            .split(|&byte| byte == b'\n')
            .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
            .filter(|line| line["type"] == "context")
            .map(|line| {
                let entry: serde_json::Value =
                    serde_json::from_str(line["entry"].as_str().unwrap_or("")).expect("entry");
                let role = line["role"].as_str().unwrap_or("").to_owned();
                (role, entry["kind"].as_str().unwrap_or("").to_owned())
            })
            .collect();
        let role_kinds = |role: &str| -> Vec<&str> {
            context
                .iter()
                .filter(|(r, _)| r == role)
                .map(|(_, kind)| kind.as_str())
                .collect()
        };
        assert_eq!(role_kinds("before"), ["alias.rotated"]);
        assert_eq!(role_kinds("after"), ["inference.recorded"]);
        assert_eq!(role_kinds("deployment"), ["deployment.registered"; 2]);
        assert_eq!(role_kinds("checkpoint"), ["checkpoint.registered"; 2]);
        assert!(
            python_verifies(&package, scratch.path()),
            "python verifier refused it"
        );

        // Change one byte inside an entry: `inf_3` becomes `inf_8`.
        let text = String::from_utf8(package.clone()).expect("utf-8");
        let position = text.find("inf_3").expect("inf_3 exported") + 4;
        let mut forged = package.clone();
        forged[position] = b'8';
        let failure = verify_package(Cursor::new(&forged), &verifier).expect_err("refused");
        assert!(failure.problem.contains("signed tree head"), "{failure}");
        assert!(
            !python_verifies(&forged, scratch.path()),
            "python verifier accepted a forgery"
        );

        // Drop the `before` line: the window's start is no longer proved.
        let without_before: Vec<u8> = text
            .lines()
            .filter(|line| !line.contains("\"role\":\"before\""))
            .flat_map(|line| format!("{line}\n").into_bytes())
            .collect();
        let failure = verify_package(Cursor::new(&without_before), &verifier).expect_err("refused");
        assert!(failure.problem.contains("before"), "{failure}");

        // Cut short: no `end` line.
        let cut = &package[..package.len() - 30];
        assert!(verify_package(Cursor::new(cut), &verifier).is_err());
        let stranger = NoteSigner::from_seed(ORIGIN, [1u8; 32]).verifier();
        assert!(verify_package(Cursor::new(&package), &stranger).is_err());
    });
}

#[test]
fn csv_and_html_exports_hold_the_rows_and_the_timeline() {
    for_each_store(|url, backend| {
        let window = Window::new(at(-HOUR), at(8 * HOUR)).expect("window");
        let csv = String::from_utf8(exported(backend, window, Format::Csv)).expect("utf-8");
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header = reader.headers().expect("header").clone();
        let column = |name: &str| header.iter().position(|h| h == name).expect(name);
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 5, "{url}");
        let mismatch = rows
            .iter()
            .find(|r| &r[column("inference_id")] == "inf_4")
            .expect("inf_4");
        assert_eq!(&mismatch[column("requested_model")], "v1");
        assert_eq!(&mismatch[column("served_model")], "gpt-4o-2024-11-20");
        assert_eq!(&mismatch[column("checkpoint")], OLD);
        let cut = rows
            .iter()
            .find(|r| &r[column("inference_id")] == "inf_3")
            .expect("inf_3");
        assert_eq!(&cut[column("completed")], "false");

        let html = String::from_utf8(exported(backend, window, Format::Html)).expect("utf-8");
        assert_eq!(html.matches("<rect class=\"segment\"").count(), 4);
        assert_eq!(html.matches("class=\"rotation alert\"").count(), 1);
        assert_eq!(html.matches("<line class=\"rotation\"").count(), 2);
        assert_eq!(html.matches("<line class=\"drift\"").count(), 2);
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "fetches nothing"
        );
    });
}

/// The Python of a venv with the pinned `cryptography` and Playwright, built once under the
/// target directory.
fn test_python() -> std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(build_test_python).clone()
}

fn build_test_python() -> std::path::PathBuf {
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/requirements.txt");
    let pins = std::fs::read_to_string(&requirements).expect("requirements");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-venv");
    let stamp = venv.join("ascribe-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(pins.as_str()) {
        return venv.join("bin/python");
    }
    let building = venv.with_file_name(format!("audit-venv.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let run = |command: &mut Command, what: &str| {
        let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            output.status.success(),
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&building),
        "python3 -m venv",
    );
    run(
        Command::new(building.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install -r tests/python/requirements.txt",
    );
    std::fs::write(building.join("ascribe-requirements.txt"), &pins).expect("stamp");
    let _ = std::fs::remove_dir_all(&venv);
    if std::fs::rename(&building, &venv).is_err() {
        assert!(
            venv.join("bin/python").exists(),
            "cannot move the venv into place"
        );
    }
    venv.join("bin/python")
}

#[test]
fn the_html_report_draws_every_segment_in_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "this test renders the report in Chromium: install the Debian package `chromium` \
         (`.ci/run` does)"
    );
    let directory = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", directory.path().join("ledger.db").display());
    let mut ledger = ledger_with_history(&url);
    let window = Window::new(at(-HOUR), at(8 * HOUR)).expect("window");
    let report = directory.path().join("report.html");
    std::fs::write(&report, exported(ledger.backend(), window, Format::Html)).expect("written");

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-report.png");
    let pdf = directory.path().join("report.pdf");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/render_report.py");
    let output = Command::new(test_python())
        .arg(script)
        .arg(&report)
        .arg(&screenshot)
        .arg(&pdf)
        .output()
        .expect("the render script runs");
    assert!(
        output.status.success(),
        "rendering failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");

    let timelines = rendered["timelines"].as_array().expect("timelines");
    assert_eq!(timelines.len(), 1, "{rendered}");
    let v1 = &timelines[0];
    assert_eq!(v1["alias"], "v1");
    // created, upgrade, incident rollback, re-upgrade; the gap before the alias existed.
    assert_eq!(v1["segments"], 4, "{v1}");
    assert_eq!(v1["rotations"], 3, "{v1}");
    assert_eq!(v1["alerts"], 1, "{v1}");
    assert_eq!(v1["drift"], 2, "{v1}");
    assert_eq!(v1["gaps"], 1, "{v1}");
    // Each segment's drawn width follows its duration: 2 h, 2 h, 2 h and 2 h to the window's
    // end, out of 9 h.
    let widths: Vec<f64> = v1["segment_widths"]
        .as_array()
        .expect("widths")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    let total = v1["width"].as_f64().expect("width");
    for width in &widths {
        let share = width / total;
        assert!(
            (share - 2.0 / 9.0).abs() < 0.02,
            "segment widths {widths:?} of {total}"
        );
    }

    let requested: Vec<&str> = rendered["requested"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert_eq!(
        requested,
        [format!("file://{}", report.display())],
        "the report fetched more"
    );
    let png = std::fs::read(&screenshot).expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    let printed = std::fs::read(&pdf).expect("pdf");
    assert!(printed.starts_with(b"%PDF"), "printed to PDF");
}

#[test]
fn the_independent_python_verifier_passes_its_own_tests() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(test_python())
        .args(["-m", "unittest", "tools/test_verify_export.py"])
        .current_dir(&repository)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "tools/test_verify_export.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
