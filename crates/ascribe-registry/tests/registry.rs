//! The registry on both stores: a rotation history resolved at every edge, evidence rules,
//! declarative apply, and concurrent rotations.

use std::path::Path;
use std::sync::Arc;

use ascribe_ledger::{NoteSigner, Timestamp};
use ascribe_registry::changes::{
    create_alias, register_checkpoint, register_deployment, rotate_alias, NewAlias, NewCheckpoint,
    NewDeployment, NewRotation,
};
use ascribe_registry::{
    apply, queries, Dialect, Evidence, MismatchPolicy, Retention, RotationKind,
};
use ascribe_store::testing::{fresh_postgres_schema, ManualClock};
use ascribe_store::{
    open_backend, verify_ledger, Appender, AppenderConfig, Backend, DatabaseLocation, Ledger,
    PendingEntry, TreeHeadPolicy,
};

const ORIGIN: &str = "ascribe.test/registry";
const HOUR: i64 = 3_600_000_000;

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, [5u8; 32])
}

fn t0() -> Timestamp {
    Timestamp::parse("2026-03-01T09:00:00.000000Z").expect("valid")
}

fn at(offset_micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(t0().unix_micros() + offset_micros)
}

/// A fresh ledger with the registry projection, on each store in turn.
fn for_each_store(test: impl Fn(&str, Ledger, ManualClock)) {
    let directory = tempfile::tempdir().expect("tempdir");
    let sqlite = format!("sqlite://{}", directory.path().join("ledger.db").display());
    for url in [sqlite, fresh_postgres_schema()] {
        let location: DatabaseLocation = url.parse().expect("location");
        let mut backend = open_backend(&location, true).expect("opens");
        Ledger::init(backend.as_mut(), &signer()).expect("init");
        ascribe_registry::create_tables(backend.as_mut()).expect("tables");
        let clock = ManualClock::new(t0());
        let mut ledger = Ledger::open(
            backend,
            signer(),
            Box::new(clock.clone()),
            TreeHeadPolicy::EveryBatch,
        )
        .expect("opens");
        ledger.add_projection(Box::new(ascribe_registry::RegistryProjection));
        test(&url, ledger, clock);
    }
}

fn append(ledger: &mut Ledger, pending: PendingEntry) -> Result<u64, String> {
    let mut outcomes = ledger
        .append_batch(&[pending])
        .map_err(|error| error.to_string())?;
    match outcomes.pop().expect("one outcome") {
        Ok(appended) => Ok(appended.entry.seq),
        Err(rejection) => Err(rejection.to_string()),
    }
}

fn hosted(ledger: &mut Ledger, snapshot: &str) -> String {
    let checkpoint = NewCheckpoint {
        hosted: Some(("openai".into(), snapshot.into())),
        ..NewCheckpoint::default()
    };
    append(ledger, register_checkpoint(checkpoint, "admin")).expect("checkpoint");
    format!("openai:{snapshot}")
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

/// Two checkpoints, two deployments, and alias `v1` on the first, created at `t0`.
fn two_deployments(ledger: &mut Ledger, require_evidence: bool) {
    let old = hosted(ledger, "gpt-4o-2024-05-13");
    let new = hosted(ledger, "gpt-4o-2024-08-06");
    append(
        ledger,
        register_deployment(deployment("may", &old, "gpt-4o-2024-05-13"), "admin"),
    )
    .expect("deployment");
    append(
        ledger,
        register_deployment(deployment("aug", &new, "gpt-4o-2024-08-06"), "admin"),
    )
    .expect("deployment");
    let alias = NewAlias {
        name: "v1".into(),
        deployment: "may".into(),
        require_evidence,
        on_mismatch: MismatchPolicy::Flag,
        answer_model: ascribe_registry::AnswerModel::Served,
    };
    append(ledger, create_alias(alias, "admin")).expect("alias");
}

fn rotation(to: Option<&str>, kind: RotationKind, reason: &str) -> NewRotation {
    NewRotation {
        alias: "v1".into(),
        to: to.map(str::to_owned),
        kind,
        reason: reason.into(),
        evidence: Some(Evidence::Uri("https://evals.example/report/17".into())),
    }
}

fn resolved(backend: &mut dyn Backend, instant: Timestamp) -> Option<(String, String)> {
    queries::resolve_at(backend, "v1", instant)
        .expect("reads")
        .map(|segment| (segment.deployment, segment.rotation.kind))
}

#[test]
fn upgrade_incident_rollback_and_reupgrade_resolve_at_every_edge() {
    for_each_store(|url, mut ledger, clock| {
        two_deployments(&mut ledger, false);
        clock.set(at(2 * HOUR));
        append(
            &mut ledger,
            rotate_alias(rotation(Some("aug"), RotationKind::Upgrade, "newer"), "ops"),
        )
        .expect("upgrade");
        clock.set(at(3 * HOUR));
        append(
            &mut ledger,
            rotate_alias(
                rotation(None, RotationKind::Incident, "bad answers"),
                "oncall",
            ),
        )
        .expect("rollback");
        clock.set(at(9 * HOUR));
        append(
            &mut ledger,
            rotate_alias(rotation(Some("aug"), RotationKind::Upgrade, "fixed"), "ops"),
        )
        .expect("re-upgrade");

        let backend = ledger.backend();
        let expect = |deployment: &str, kind: &str| Some((deployment.to_owned(), kind.to_owned()));
        let cases = [
            (at(-1), None),
            (at(0), expect("may", "created")),
            (at(2 * HOUR - 1), expect("may", "created")),
            (at(2 * HOUR), expect("aug", "upgrade")),
            (at(2 * HOUR + 1), expect("aug", "upgrade")),
            (at(3 * HOUR - 1), expect("aug", "upgrade")),
            (at(3 * HOUR), expect("may", "incident")),
            (at(6 * HOUR), expect("may", "incident")),
            (at(9 * HOUR - 1), expect("may", "incident")),
            (at(9 * HOUR), expect("aug", "upgrade")),
            (at(900 * HOUR), expect("aug", "upgrade")),
        ];
        for (instant, expected) in cases {
            assert_eq!(resolved(backend, instant), expected, "{url} at {instant}");
        }

        let timeline = queries::timeline(backend, "v1", at(HOUR), at(4 * HOUR)).expect("reads");
        let shape: Vec<_> = timeline
            .iter()
            .map(|segment| (segment.deployment.as_str(), segment.rotation.actor.as_str()))
            .collect();
        assert_eq!(
            shape,
            [("may", "admin"), ("aug", "ops"), ("may", "oncall")],
            "{url}"
        );
        assert_eq!(timeline[1].from, at(2 * HOUR).to_string());
        assert_eq!(timeline[1].to, Some(at(3 * HOUR).to_string()));
        assert_eq!(timeline[2].rotation.reason.as_deref(), Some("bad answers"));
        assert_eq!(timeline[2].checkpoint, "openai:gpt-4o-2024-05-13");
        let history = queries::history(backend, "v1").expect("reads");
        assert_eq!(history.len(), 4);
        assert_eq!(history[3].to, None);

        let report = verify_ledger(backend, &signer().verifier(), &mut |_, _| {}).expect("runs");
        assert!(report.ok, "{url}: {report:?}");
    });
}

#[test]
fn evidence_required_and_missing_is_refused() {
    for_each_store(|url, mut ledger, _clock| {
        two_deployments(&mut ledger, true);
        let mut bare = rotation(Some("aug"), RotationKind::Upgrade, "newer");
        bare.evidence = None;
        let error = append(&mut ledger, rotate_alias(bare, "ops")).expect_err("no evidence");
        assert!(error.contains("requires evidence"), "{url}: {error}");
        assert_eq!(
            queries::history(ledger.backend(), "v1")
                .expect("reads")
                .len(),
            1
        );
        append(
            &mut ledger,
            rotate_alias(rotation(Some("aug"), RotationKind::Upgrade, "x"), "ops"),
        )
        .expect("with evidence");
    });
}

#[test]
fn moving_upstream_names_need_explicit_consent() {
    for_each_store(|url, mut ledger, _clock| {
        let checkpoint = hosted(&mut ledger, "gpt-4o-2024-08-06");
        let moving = deployment("floating", &checkpoint, "gpt-4o");
        let error = append(&mut ledger, register_deployment(moving.clone(), "admin"))
            .expect_err("moving name");
        assert!(error.contains("--allow-moving-name"), "{url}: {error}");
        let allowed = NewDeployment {
            allow_moving_name: true,
            ..moving
        };
        append(&mut ledger, register_deployment(allowed, "admin")).expect("allowed");
        let record = queries::deployment(ledger.backend(), "floating")
            .expect("reads")
            .expect("found");
        assert!(record.moving_name);
        assert_eq!(record.expect_served, "gpt-4o-2024-08-06");
    });
}

#[test]
fn concurrent_rotations_are_serialised_and_none_is_lost() {
    for_each_store(|url, mut ledger, _clock| {
        let checkpoint = hosted(&mut ledger, "gpt-4o-2024-08-06");
        for index in 0..8 {
            let name = format!("pool-{index}");
            append(
                &mut ledger,
                register_deployment(deployment(&name, &checkpoint, "gpt-4o-2024-08-06"), "admin"),
            )
            .expect("deployment");
        }
        let alias = NewAlias {
            name: "v1".into(),
            deployment: "pool-0".into(),
            require_evidence: false,
            on_mismatch: MismatchPolicy::Flag,
            answer_model: ascribe_registry::AnswerModel::Served,
        };
        append(&mut ledger, create_alias(alias, "admin")).expect("alias");

        let config = AppenderConfig {
            max_batch: 64,
            idle_head_interval: None,
            ..AppenderConfig::default()
        };
        let appender = Arc::new(Appender::start(ledger, config));
        let threads: Vec<_> = (1..8)
            .map(|index| {
                let appender = Arc::clone(&appender);
                std::thread::spawn(move || {
                    (0..10)
                        .map(|round| {
                            let target = format!("pool-{}", (index + round) % 8);
                            let rotation = NewRotation {
                                alias: "v1".into(),
                                to: Some(target),
                                kind: RotationKind::Capacity,
                                reason: format!("thread {index} round {round}"),
                                evidence: None,
                            };
                            appender.append_blocking(rotate_alias(rotation, "ops"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let outcomes: Vec<_> = threads
            .into_iter()
            .flat_map(|thread| thread.join().expect("joins"))
            .collect();
        let accepted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        // Which rotations meet the alias already on their target depends on the schedule;
        // that is the only refusal allowed.
        for outcome in &outcomes {
            if let Err(error) = outcome {
                assert!(
                    error.to_string().contains("already points at"),
                    "{url}: unexpected refusal: {error}"
                );
            }
        }
        let mut ledger = Arc::into_inner(appender)
            .expect("sole owner")
            .shutdown()
            .expect("ledger");

        let history = queries::history(ledger.backend(), "v1").expect("reads");
        assert_eq!(
            history.len(),
            accepted + 1,
            "{url}: every accepted rotation is a segment"
        );
        assert_eq!(outcomes.len(), 70, "{url}: every rotation got an answer");
        assert!(accepted > 0, "{url}: no rotation was accepted");
        for pair in history.windows(2) {
            assert_ne!(
                pair[0].deployment, pair[1].deployment,
                "{url}: no rotation onto itself"
            );
            assert_eq!(
                pair[0].to.as_deref(),
                Some(pair[1].from.as_str()),
                "{url}: contiguous"
            );
        }
        let report =
            verify_ledger(ledger.backend(), &signer().verifier(), &mut |_, _| {}).expect("runs");
        assert!(report.ok, "{url}: {report:?}");
    });
}

fn write(directory: &Path, name: &str, text: &str) {
    std::fs::write(directory.join(name), text).expect("writes");
}

#[test]
fn applying_a_registry_file_twice_writes_nothing_the_second_time() {
    for_each_store(|url, mut ledger, _clock| {
        let directory = tempfile::tempdir().expect("tempdir");
        let base = directory.path();
        write(base, "card.md", "# gpt-4o, August 2024\n");
        write(
            base,
            "eval.json",
            r#"{"metrics": {"accuracy": 0.91}, "data_digest": "sha256:ab"}"#,
        );
        write(
            base,
            "lineage.json",
            r#"{"sources": [{"id": "vendor", "digest": "n/a"}]}"#,
        );
        let registry = |deployment: &str| {
            format!(
                r#"
                [[checkpoint]]
                name = "aug"
                provider = "openai"
                snapshot = "gpt-4o-2024-08-06"
                card = "card.md"
                evaluation = "eval.json"
                lineage = "lineage.json"

                [[deployment]]
                name = "aug-east"
                checkpoint = "aug"
                dialect = "openai"
                base_url = "https://api.openai.com/v1"
                upstream_model = "gpt-4o-2024-08-06"

                [[deployment]]
                name = "aug-west"
                checkpoint = "openai:gpt-4o-2024-08-06"
                dialect = "openai"
                base_url = "https://api.openai.com/v1"
                upstream_model = "gpt-4o-2024-08-06"

                [[alias]]
                name = "v1"
                deployment = "{deployment}"
                rotation_kind = "capacity"
                reason = "east is full"
                "#
            )
        };
        let no_weights = |_: &Path| -> Result<serde_json::Value, String> { Err("unused".into()) };
        let apply_text = |ledger: &mut Ledger, text: String| -> Vec<String> {
            write(base, "registry.toml", &text);
            let file = apply::parse(&base.join("registry.toml")).expect("parses");
            let plan =
                apply::plan(ledger.backend(), &file, base, None, &no_weights).expect("plans");
            let described = plan.iter().map(apply::PlannedChange::describe).collect();
            for change in plan {
                append(ledger, change.into_entry("cli:test")).expect("applies");
            }
            described
        };

        let first = apply_text(&mut ledger, registry("aug-east"));
        assert_eq!(first.len(), 7, "{url}: {first:?}");
        assert!(
            apply_text(&mut ledger, registry("aug-east")).is_empty(),
            "{url}"
        );
        let moved = apply_text(&mut ledger, registry("aug-west"));
        assert_eq!(
            moved,
            ["rotate alias `v1` -> `aug-west` (capacity: east is full)"],
            "{url}"
        );

        let record = queries::checkpoint(ledger.backend(), "openai:gpt-4o-2024-08-06")
            .expect("reads")
            .expect("found");
        let card = record.card.expect("card");
        let content = queries::document_content(ledger.backend(), &card.digest).expect("reads");
        assert_eq!(content.as_deref(), Some(&b"# gpt-4o, August 2024\n"[..]));
    });
}

#[test]
fn registry_file_errors_name_the_line() {
    let directory = tempfile::tempdir().expect("tempdir");
    write(
        directory.path(),
        "bad.toml",
        "[[alias]]\nname = \"v1\"\ndeploymnet = \"x\"\n",
    );
    let error = apply::parse(&directory.path().join("bad.toml")).expect_err("unknown key");
    let message = error.to_string();
    assert!(
        message.contains("deploymnet") && message.contains("line 3"),
        "{message}"
    );
}

#[test]
fn weights_register_under_their_manifest_digest_and_forged_manifests_are_refused() {
    for_each_store(|url, mut ledger, _clock| {
        let directory = tempfile::tempdir().expect("tempdir");
        std::fs::write(directory.path().join("model.gguf"), b"not really a model").expect("writes");
        let manifest = ascribe_weights::hash_path(&directory.path().join("model.gguf"), &|_, _| {})
            .expect("hashes");
        let mut forged = serde_json::to_value(&manifest).expect("json");
        forged["checkpoint"] = format!("sha256:{}", "0".repeat(64)).into();
        let checkpoint = NewCheckpoint {
            manifest: Some(forged),
            ..NewCheckpoint::default()
        };
        let error = append(&mut ledger, register_checkpoint(checkpoint, "admin"))
            .expect_err("forged manifest");
        assert!(error.contains("its files hash to"), "{url}: {error}");

        let real = serde_json::to_value(&manifest).expect("json");
        let checkpoint = NewCheckpoint {
            manifest: Some(real),
            ..NewCheckpoint::default()
        };
        append(&mut ledger, register_checkpoint(checkpoint, "admin")).expect("registers");
        let record = queries::checkpoint(ledger.backend(), &manifest.checkpoint)
            .expect("reads")
            .expect("found");
        assert_eq!(record.kind, ascribe_registry::CheckpointKind::Weights);
        assert_eq!(
            record.manifest.expect("manifest")["files"][0]["path"],
            "model.gguf"
        );
    });
}
