//! A gateway over a fresh ledger, driven through its router with `oneshot` (no socket).
//!
//! Keys are made before the gateway starts, through a ledger of their own: `release-bot`
//! (admin), `app` (caller), `auditor` (auditor) and `old-admin` (admin, revoked).

#![allow(dead_code)] // Each test file uses a different part of these helpers.

use ascribe_access::{create_key, new_token, revoke_key, Role};
use ascribe_gateway::testing::StandInUpstream;
use ascribe_gateway::AppState;
use ascribe_ledger::NoteSigner;
use ascribe_store::{
    open_backend, query, verify_ledger, Backend, DatabaseLocation, Ledger, PendingEntry,
    SystemClock, TreeHeadPolicy, VerifyReport,
};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// Which database the ledger lives in.
#[derive(Clone, Copy, Debug)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Runs one scenario on SQLite and on PostgreSQL, as two tests of a module named after it.
#[macro_export]
macro_rules! on_both_stores {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn sqlite() {
                super::$scenario($crate::common::Store::Sqlite);
            }

            #[test]
            fn postgres() {
                super::$scenario($crate::common::Store::Postgres);
            }
        }
    };
}

const SEED: [u8; 32] = [7; 32];
const ORIGIN: &str = "ascribe.test/gateway";

/// What a request got back.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A running gateway and the tokens of its keys.
pub struct Gateway {
    router: Option<Router>,
    runtime: tokio::runtime::Runtime,
    pub location: DatabaseLocation,
    pub admin: String,
    pub caller: String,
    pub auditor: String,
    pub revoked: String,
    // Last: the SQLite file must outlive the gateway's connections.
    _home: tempfile::TempDir,
}

impl Gateway {
    pub fn start(store: Store) -> Gateway {
        Gateway::start_with(store, ascribe_gateway::GatewayConfig::default())
    }

    /// A gateway with explicit limits and timeouts.
    pub fn start_with(store: Store, config: ascribe_gateway::GatewayConfig) -> Gateway {
        let home = tempfile::tempdir().expect("tempdir");
        let location = match store {
            Store::Sqlite => DatabaseLocation::Sqlite(home.path().join("ledger.db")),
            Store::Postgres => ascribe_store::testing::fresh_postgres_schema()
                .parse()
                .expect("postgres url"),
        };
        let mut backend = open_backend(&location, true).expect("opens");
        Ledger::init(backend.as_mut(), &signer()).expect("init");
        ascribe_access::create_tables(backend.as_mut()).expect("access tables");
        ascribe_registry::create_tables(backend.as_mut()).expect("registry tables");
        ascribe_inference::create_tables(backend.as_mut()).expect("inference tables");

        let mut tokens = Vec::new();
        let mut entries = Vec::new();
        for (name, role) in [
            ("release-bot", Role::Admin),
            ("app", Role::Caller),
            ("auditor", Role::Auditor),
            ("old-admin", Role::Admin),
        ] {
            let token = new_token().expect("token");
            entries.push(create_key(name, role, &token.token_sha256, "test-setup"));
            tokens.push(token.token);
        }
        entries.push(revoke_key("old-admin", "test-setup"));
        append_directly(backend, entries);

        let state = AppState::open_with(&location, signer(), config).expect("gateway state");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let [admin, caller, auditor, revoked] = <[String; 4]>::try_from(tokens).expect("4");
        Gateway {
            router: Some(ascribe_gateway::router(state)),
            runtime,
            location,
            admin,
            caller,
            auditor,
            revoked,
            _home: home,
        }
    }

    /// Sends a request and returns the raw body, whatever its type.
    pub fn send_raw(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let router = self.router.clone().expect("gateway running");
        self.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await;
            (
                parts.status,
                parts.headers,
                bytes.map(|bytes| bytes.to_vec()).unwrap_or_default(),
            )
        })
    }

    /// Drives the gateway's tasks (stream relays record their completion after the last
    /// byte) until `done` holds; a bounded poll of at most two seconds.
    pub fn wait_until(&self, done: impl Fn() -> bool + Sync) -> bool {
        // The check runs on a thread of its own: the PostgreSQL client may not block on a
        // thread that drives the runtime.
        let check = || std::thread::scope(|scope| scope.spawn(&done).join().unwrap_or(false));
        self.runtime.block_on(async {
            for _ in 0..100 {
                if check() {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            false
        })
    }

    /// Sends a request as built by the caller.
    pub fn send(&self, request: Request<Body>) -> Answer {
        let router = self.router.clone().expect("gateway running");
        self.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                    panic!("not JSON ({error}): {}", String::from_utf8_lossy(&bytes))
                })
            };
            Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        })
    }

    /// Sends `method path` with `token` and, unless `None`, a JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("request"))
    }

    /// `GET path` as `release-bot`.
    pub fn get(&self, path: &str) -> Answer {
        self.call("GET", path, Some(&self.admin), None)
    }

    /// `POST path` as `release-bot`.
    pub fn post(&self, path: &str, body: Value) -> Answer {
        self.call("POST", path, Some(&self.admin), Some(body))
    }

    /// `POST path` as `release-bot`, which must answer `status`; returns the body.
    pub fn post_ok(&self, path: &str, body: Value, status: u16) -> Value {
        let answer = self.post(path, body);
        assert_eq!(
            answer.status.as_u16(),
            status,
            "POST {path}: {}",
            answer.body
        );
        answer.body
    }

    /// The entry at `seq`, as stored, with its `actor` column.
    pub fn entry(&self, seq: u64) -> (String, Value) {
        let mut backend = open_backend(&self.location, false).expect("opens");
        let stored = query::entries(backend.as_mut(), seq, 1).expect("reads");
        let stored = stored.first().expect("entry exists");
        let entry = serde_json::from_str(&stored.entry).expect("entry is JSON");
        (stored.actor.clone(), entry)
    }

    /// Every entry, as parsed JSON.
    pub fn entries(&self) -> Vec<Value> {
        let mut backend = open_backend(&self.location, false).expect("opens");
        query::entries(backend.as_mut(), 0, 1_000_000)
            .expect("reads")
            .iter()
            .map(|stored| serde_json::from_str(&stored.entry).expect("entry is JSON"))
            .collect()
    }

    /// Appends entries through a writer of its own, as another process would.
    pub fn append_as_setup(&self, entries: Vec<PendingEntry>) {
        append_directly(open_backend(&self.location, false).expect("opens"), entries);
    }

    /// Runs SQL on the ledger's database, as someone with database access would.
    pub fn execute(&self, sql: &str) {
        let mut backend = open_backend(&self.location, false).expect("opens");
        backend
            .write(&mut |tx| tx.execute(sql, &[]).map(|_| ()))
            .expect("executes");
    }

    /// Stops the gateway (its writer signs a last tree head) and verifies the whole ledger.
    pub fn stop_and_verify(&mut self) -> VerifyReport {
        drop(self.router.take());
        let mut backend = open_backend(&self.location, false).expect("opens");
        verify_ledger(backend.as_mut(), &signer().verifier(), &mut |_, _| {}).expect("verifies")
    }
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, SEED)
}

fn append_directly(backend: Box<dyn Backend>, entries: Vec<PendingEntry>) {
    let policy = TreeHeadPolicy::EveryBatch;
    let mut ledger =
        Ledger::open(backend, signer(), Box::new(SystemClock), policy).expect("ledger");
    ledger.add_projection(Box::new(ascribe_access::AccessKeysProjection));
    for outcome in ledger.append_batch(&entries).expect("appends") {
        outcome.expect("accepted");
    }
}

/// A document upload of `content`.
pub fn upload(name: &str, content: &str) -> Value {
    use base64::Engine as _;
    let content_base64 = base64::engine::general_purpose::STANDARD.encode(content);
    serde_json::json!({"name": name, "content_base64": content_base64})
}

/// Registers two hosted checkpoints with a deployment each (named after the snapshot) and
/// alias `v1` on the first; returns the two deployment names.
pub fn two_deployments_and_an_alias(gateway: &Gateway) -> (&'static str, &'static str) {
    let (may, aug) = ("gpt-4o-2024-05-13", "gpt-4o-2024-08-06");
    for snapshot in [may, aug] {
        gateway.post_ok(
            "/admin/v1/checkpoints",
            serde_json::json!({"provider": "openai", "snapshot": snapshot}),
            201,
        );
        gateway.post_ok(
            "/admin/v1/deployments",
            serde_json::json!({
                "name": snapshot,
                "checkpoint": format!("openai:{snapshot}"),
                "dialect": "openai",
                "base_url": "https://api.openai.com/v1",
                "upstream_model": snapshot,
            }),
            201,
        );
    }
    gateway.post_ok(
        "/admin/v1/aliases",
        serde_json::json!({"name": "v1", "deployment": may}),
        201,
    );
    (may, aug)
}

/// The variable anthropic-dialect stand-in deployments take their provider key from.
pub const ANTHROPIC_KEY_VARIABLE: &str = "ASCRIBE_TEST_STANDIN_ANTHROPIC_KEY";

/// A stand-in scenario to register: its name (the upstream model that picks the scenario),
/// the deployment's dialect and the served model it expects (`None`: no expectation).
pub type Scenario<'a> = (&'a str, &'a str, Option<&'a str>);

/// A gateway whose deployments point at a stand-in upstream, one per scenario, each behind
/// an alias of the same name; the stand-in stops when this is dropped.
pub struct StandInBench {
    pub gateway: Gateway,
    pub upstream: StandInUpstream,
}

impl StandInBench {
    /// Registers every scenario as a checkpoint `standin:{name}`, a deployment and an alias.
    pub fn start(
        store: Store,
        config: ascribe_gateway::GatewayConfig,
        scenarios: &[Scenario<'_>],
    ) -> StandInBench {
        std::env::set_var(ANTHROPIC_KEY_VARIABLE, "sk-ant-standin");
        let gateway = Gateway::start_with(store, config);
        let upstream = StandInUpstream::start().expect("stand-in starts");
        for &(scenario, dialect, served) in scenarios {
            let checkpoint = json!({"provider": "standin", "snapshot": scenario});
            gateway.post_ok("/admin/v1/checkpoints", checkpoint, 201);
            let deployment = json!({
                "name": scenario,
                "checkpoint": format!("standin:{scenario}"),
                "dialect": dialect,
                "base_url": upstream.base_url(),
                "upstream_model": scenario,
                "expect_served": served,
                "api_key_env": (dialect == "anthropic").then_some(ANTHROPIC_KEY_VARIABLE),
            });
            gateway.post_ok("/admin/v1/deployments", deployment, 201);
            let alias = json!({"name": scenario, "deployment": scenario});
            gateway.post_ok("/admin/v1/aliases", alias, 201);
        }
        StandInBench { gateway, upstream }
    }
}
