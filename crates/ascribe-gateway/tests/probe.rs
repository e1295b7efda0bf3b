//! The identity probe against a stand-in self-hosted server: a baseline observation first,
//! nothing while the answers stay the same, an `identity_probe_changed` observation when the
//! server's model listing changes.

use ascribe_gateway::testing::StandInUpstream;
use ascribe_gateway::{AppState, GatewayConfig};
use ascribe_ledger::NoteSigner;
use ascribe_registry::changes::{
    register_checkpoint, register_deployment, NewCheckpoint, NewDeployment,
};
use ascribe_registry::{Dialect, Retention};
use ascribe_store::{open_backend, query, DatabaseLocation, Ledger, SystemClock, TreeHeadPolicy};
use serde_json::Value;

fn observations(location: &DatabaseLocation) -> Vec<Value> {
    let mut backend = open_backend(location, false).expect("opens");
    query::entries(backend.as_mut(), 0, 10_000)
        .expect("reads")
        .iter()
        .filter(|stored| stored.kind == "observation.recorded")
        .map(|stored| serde_json::from_str::<Value>(&stored.entry).expect("json")["body"].clone())
        .collect()
}

#[test]
fn a_changed_deployment_identity_is_observed_once() {
    let home = tempfile::tempdir().expect("tempdir");
    let location = DatabaseLocation::Sqlite(home.path().join("ledger.db"));
    let signer = NoteSigner::from_seed("ascribe.test/probe", [3; 32]);
    let upstream = StandInUpstream::start().expect("stand-in");

    let mut backend = open_backend(&location, true).expect("opens");
    Ledger::init(backend.as_mut(), &signer).expect("init");
    ascribe_registry::create_tables(backend.as_mut()).expect("tables");
    ascribe_inference::create_tables(backend.as_mut()).expect("tables");
    let mut ledger = Ledger::open(
        backend,
        signer.clone(),
        Box::new(SystemClock),
        TreeHeadPolicy::EveryBatch,
    )
    .expect("opens");
    ledger.add_projection(Box::new(ascribe_registry::RegistryProjection));
    let checkpoint = NewCheckpoint {
        hosted: Some(("standin".into(), "openai-chat".into())),
        ..NewCheckpoint::default()
    };
    let deployment = NewDeployment {
        name: "local".into(),
        checkpoint: "standin:openai-chat".into(),
        dialect: Dialect::OpenaiCompatible,
        base_url: upstream.base_url(),
        upstream_model: "openai-chat".into(),
        expect_served: None,
        api_key_env: None,
        allow_moving_name: false,
        retention: Retention::Digest,
    };
    let outcomes = ledger
        .append_batch(&[
            register_checkpoint(checkpoint, "admin"),
            register_deployment(deployment, "admin"),
        ])
        .expect("commits");
    assert!(outcomes.iter().all(Result::is_ok));
    drop(ledger);

    let state = AppState::open_with(&location, signer, GatewayConfig::default()).expect("state");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(ascribe_gateway::probe::probe_once(&state));
    runtime.block_on(ascribe_gateway::probe::probe_once(&state));
    let seen = observations(&location);
    assert_eq!(
        seen.len(),
        1,
        "a baseline, then nothing while unchanged: {seen:?}"
    );
    assert_eq!(seen[0]["kind"], "identity_probe_baseline");
    assert_eq!(seen[0]["models"], serde_json::json!(["standin"]));

    upstream.set_models(&["standin", "swapped"]);
    runtime.block_on(ascribe_gateway::probe::probe_once(&state));
    let seen = observations(&location);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1]["kind"], "identity_probe_changed");
    assert_eq!(seen[1]["deployment"], "local");
    assert_eq!(seen[1]["checkpoint"], "standin:openai-chat");
    assert_eq!(
        seen[1]["previous"]["models_sha256"],
        seen[0]["models_sha256"]
    );
    assert_eq!(
        seen[1]["canary_sha256"], seen[0]["canary_sha256"],
        "same canary answer"
    );
    drop(runtime);
    state.close();
}
