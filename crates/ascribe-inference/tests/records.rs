//! Inference, completion and observation entries, their projection and the reads over it.

use ascribe_inference::{
    queries, CompletionRecord, InferenceProjection, InferenceRecord, Observation, UpstreamCall,
};
use ascribe_ledger::{NoteSigner, Timestamp};
use ascribe_store::testing::ManualClock;
use ascribe_store::{Ledger, PendingEntry, SqliteBackend, TreeHeadPolicy};
use serde_json::json;

fn ledger(directory: &std::path::Path) -> Ledger {
    let signer = NoteSigner::from_seed("ascribe.test/inference", [4; 32]);
    let mut backend = SqliteBackend::open(&directory.join("ledger.db")).expect("opens");
    Ledger::init(&mut backend, &signer).expect("init");
    ascribe_inference::create_tables(&mut backend).expect("tables");
    let clock = ManualClock::stepping(Timestamp::from_unix_micros(1_800_000_000_000_000), 10);
    let mut ledger = Ledger::open(
        Box::new(backend),
        signer,
        Box::new(clock),
        TreeHeadPolicy::EveryBatch,
    )
    .expect("opens");
    ledger.add_projection(Box::new(InferenceProjection));
    ledger
}

fn record(id: &str, decision: &str, fingerprint: &str) -> InferenceRecord {
    InferenceRecord {
        inference_id: id.into(),
        api: "chat.completions".into(),
        caller: "risk-service".into(),
        decision: Some(decision.into()),
        requested_model: "v1".into(),
        alias: Some("v1".into()),
        deployment: "aug".into(),
        checkpoint: "openai:gpt-4o-2024-08-06".into(),
        moving_name: false,
        upstream: UpstreamCall {
            dialect: "openai".into(),
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-2024-08-06".into(),
        },
        served: json!({"model": "gpt-4o-2024-08-06", "system_fingerprint": fingerprint}),
        identity_match: "match".into(),
        mismatch_kind: None,
        stream: true,
        status: 200,
        outcome: "stream_open".into(),
        request_sha256: "00".repeat(32),
        response_sha256: None,
        usage: None,
        error: None,
        upstream_ms: None,
        retained: None,
    }
}

fn fingerprint_observation(id: &str, fingerprint: &str) -> PendingEntry {
    Observation {
        kind: "new_system_fingerprint".into(),
        inference_id: id.into(),
        deployment: "aug".into(),
        checkpoint: "openai:gpt-4o-2024-08-06".into(),
        expected: "gpt-4o-2024-08-06".into(),
        served_model: Some("gpt-4o-2024-08-06".into()),
        system_fingerprint: Some(fingerprint.into()),
        mismatch_kind: None,
    }
    .into_new_fingerprint_entry()
    .expect("entry")
}

#[test]
fn records_completions_and_new_fingerprints_are_read_back() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut ledger = ledger(directory.path());
    let batch = vec![
        record("inf_a", "case-1", "fp_1")
            .into_entry()
            .expect("entry"),
        fingerprint_observation("inf_a", "fp_1"),
    ];
    let outcomes = ledger.append_batch(&batch).expect("commits");
    assert!(outcomes.iter().all(Result::is_ok));

    // The same fingerprint again is not news: its observation is refused, the record kept.
    let batch = vec![
        record("inf_b", "case-1", "fp_1")
            .into_entry()
            .expect("entry"),
        fingerprint_observation("inf_b", "fp_1"),
        record("inf_c", "case-2", "fp_2")
            .into_entry()
            .expect("entry"),
        fingerprint_observation("inf_c", "fp_2"),
    ];
    let outcomes = ledger.append_batch(&batch).expect("commits");
    let accepted: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
    assert_eq!(accepted, [true, false, true, true]);

    let completion = CompletionRecord {
        inference_id: "inf_a".into(),
        completed: false,
        truncated: true,
        response_sha256: "11".repeat(32),
        n_bytes: 512,
        served: json!({"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1"}),
        usage: None,
        finish_reason: None,
        error: Some("upstream closed the stream before its terminal event".into()),
        retained_response: None,
    };
    ledger
        .append_batch(&[completion.into_entry().expect("entry")])
        .expect("commits");

    let backend = ledger.backend();
    let first = queries::inference(backend, "inf_a")
        .expect("reads")
        .expect("found");
    assert_eq!(first.seq, 0);
    assert_eq!(first.record.requested_model, "v1");
    assert_eq!(first.observations.len(), 1);
    let completion = first.completion.expect("completed");
    assert!(completion.record.truncated);
    assert_eq!(completion.seq, 5);

    let case_one = queries::by_decision(backend, "case-1").expect("reads");
    let ids: Vec<_> = case_one
        .iter()
        .map(|view| view.record.inference_id.as_str())
        .collect();
    assert_eq!(ids, ["inf_a", "inf_b"]);
    assert!(case_one[1].observations.is_empty());
    assert!(queries::inference(backend, "inf_missing")
        .expect("reads")
        .is_none());
}
