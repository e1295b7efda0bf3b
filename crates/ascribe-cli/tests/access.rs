//! Who may do what, through the real `ascribe serve` process, on SQLite and on PostgreSQL.
//!
//! - A role matrix over every route group: inference (`/v1/...`), the admin API
//!   (`/admin/v1/...`) and the audit surface (`/audit/...`). Caller keys only call models,
//!   admin keys only administer the registry, auditor keys only read the audit surface. A
//!   missing or unknown key is 401, a key of the wrong role 403, and no refusal writes an
//!   entry.
//! - Admin changes record the admin key's *name* as their actor, whatever the body says.
//! - A key revoked with `ascribe key revoke` while the server runs is refused on its next
//!   request.
//! - Secrets never appear anywhere: the provider key (the Anthropic deployments' key
//!   variable) and every key token (the wrong ones sent too), raw and in their obvious
//!   transformations (base64, base64url, hex, `Bearer <token>`, the Basic form, the token
//!   without its prefix), are searched for in every column of every table of the ledger
//!   database, every file of the home directory, the gateway's debug-level log in text and in
//!   JSON format, every response body and header the gateway returned (answers and errors:
//!   wrong key, upstream error, timeout), every export format and the `ascribe audit --json`
//!   outputs.
//!
//! Fast version (the default): about 8 s, both stores in parallel. `ASCRIBE_LONG_TESTS=1`
//! repeats the role matrix and the calls 5 times per server run (about 20 s).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ascribe_store::{open_backend, Backend, DatabaseLocation};
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64_URL};
use base64::Engine as _;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};

mod common;

use common::load::client;
use common::{long, register_scenarios, Ascribe, Scenario, Server, CHAT, CLAUDE};

/// The variable the Anthropic deployments read their provider key from, and that key.
const PROVIDER_KEY_VARIABLE: &str = "ACCESS_TEST_PROVIDER_KEY";
const PROVIDER_KEY: &str = "sk-ant-provider-ZQ7x9Wv2Lk4Mn8Pq3Rs6Tu1Vw5Xy0Ab";

/// A token no key has: a caller's typing mistake, or a guess.
const WRONG_KEY: &str = "asc_WRONGkeyJ4f8Hq2Ns6Vb0Xc3Zd7Ke1Lm5Pr9Tw";

const SCENARIOS: &[Scenario] = &[
    CHAT,
    Scenario {
        expect_served: "claude-*",
        ..CLAUDE
    },
    Scenario {
        alias: "overloaded-v1",
        upstream_model: "anthropic-overloaded",
        dialect: "anthropic",
        expect_served: "claude-*",
    },
    Scenario {
        alias: "slow-v1",
        upstream_model: "slow",
        dialect: "anthropic",
        expect_served: "claude-*",
    },
];

const WINDOW: &str = "from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";

/// How a request presents its key.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
    Basic(&'a str),
}

/// The route groups, each with the role that may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    Inference,
    Admin,
    Audit,
}

/// One request of the matrix: its group, method, path and body.
struct Route {
    group: Group,
    method: &'static str,
    path: String,
    body: Option<Value>,
}

fn routes(inference_id: &str) -> Vec<Route> {
    let chat = json!({"model": "chat-v1", "messages": [{"role": "user", "content": "hi"}]});
    let messages = json!({"model": "claude-v1", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]});
    let route = |group, method, path: &str, body: Option<Value>| Route {
        group,
        method,
        path: path.to_owned(),
        body,
    };
    vec![
        route(Group::Inference, "POST", "/v1/chat/completions", Some(chat)),
        route(Group::Inference, "POST", "/v1/messages", Some(messages)),
        route(Group::Inference, "GET", "/v1/models", None),
        route(
            Group::Inference,
            "GET",
            &format!("/v1/ascribe/receipts/{inference_id}"),
            None,
        ),
        route(
            Group::Admin,
            "POST",
            "/admin/v1/checkpoints",
            Some(json!({"provider": "openai", "snapshot": "gpt-4o-2024-11-20"})),
        ),
        route(
            Group::Admin,
            "POST",
            "/admin/v1/deployments",
            Some(
                json!({"name": "intruder", "checkpoint": "standin:openai-chat",
                "dialect": "openai", "base_url": "https://example.invalid/v1",
                "upstream_model": "openai-chat"}),
            ),
        ),
        route(
            Group::Admin,
            "POST",
            "/admin/v1/aliases",
            Some(json!({"name": "intruder-v1", "deployment": "openai-chat"})),
        ),
        route(
            Group::Admin,
            "POST",
            "/admin/v1/aliases/chat-v1/rotate",
            Some(json!({"to": "anthropic-messages", "kind": "incident", "reason": "mine"})),
        ),
        route(
            Group::Admin,
            "POST",
            "/admin/v1/aliases/chat-v1/rollback",
            Some(json!({"reason": "mine"})),
        ),
        route(Group::Admin, "GET", "/admin/v1/aliases", None),
        route(
            Group::Audit,
            "GET",
            &format!("/audit/v1/inferences?{WINDOW}"),
            None,
        ),
        route(
            Group::Audit,
            "GET",
            &format!("/audit/v1/inferences/{inference_id}"),
            None,
        ),
        route(Group::Audit, "GET", "/audit/", None),
        route(
            Group::Audit,
            "GET",
            &format!("/audit/v1/export?{WINDOW}&format=jsonl"),
            None,
        ),
    ]
}

/// The keys of the test, by name, with their tokens.
struct Keys {
    caller: String,
    admin: String,
    auditor: String,
    /// Revoked while the server runs.
    temp_caller: String,
    temp_admin: String,
}

impl Keys {
    fn secrets(&self) -> Vec<(&'static str, String)> {
        vec![
            ("caller token", self.caller.clone()),
            ("admin token", self.admin.clone()),
            ("auditor token", self.auditor.clone()),
            ("revoked caller token", self.temp_caller.clone()),
            ("revoked admin token", self.temp_admin.clone()),
            ("wrong key", WRONG_KEY.to_owned()),
            ("provider key", PROVIDER_KEY.to_owned()),
        ]
    }
}

/// What the gateway answered: every body and header it returned, kept for the search.
struct Session<'a> {
    client: Client,
    server: Server,
    ascribe: &'a Ascribe<'a>,
    ledger: Box<dyn Backend>,
    answers: Vec<String>,
    refusals: u64,
}

impl Session<'_> {
    fn request(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> RequestBuilder {
        let url = format!("{}{path}", self.server.base);
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::ApiKey(token) => request.header("x-api-key", token),
            Auth::Basic(token) => request.basic_auth("auditor", Some(token)),
        };
        if path == "/v1/chat/completions" {
            request = request.header("Ascribe-Decision", "case-1");
        }
        if path.starts_with("/v1/messages") {
            request = request.header("anthropic-version", "2023-06-01");
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request
    }

    /// Sends a request and keeps what came back; returns the status and the body.
    fn send(
        &mut self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> (u16, String) {
        let response = self
            .request(method, path, auth, body)
            .send()
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let headers: String = response
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        let body = response.text().expect("a body");
        self.answers
            .push(format!("{method} {path} {status}\n{headers}\n{body}"));
        (status, body)
    }

    fn entries(&mut self) -> u64 {
        ascribe_store::query::entry_count(self.ledger.as_mut()).expect("entry count")
    }

    /// Sends a request that must be refused with `status`, writing nothing.
    fn refused(
        &mut self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
        status: u16,
    ) {
        let before = self.entries();
        let (got, answer) = self.send(method, path, auth, body);
        assert_eq!(got, status, "{method} {path}: {answer}");
        let after = self.entries();
        assert_eq!(
            after, before,
            "{method} {path} refused with {got} but wrote entries"
        );
        self.refusals += 1;
    }

    /// Sends a request that must succeed; returns its JSON body (or `null` for HTML).
    fn allowed(&mut self, method: &str, path: &str, auth: Auth<'_>, body: Option<&Value>) -> Value {
        let (status, answer) = self.send(method, path, auth, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        serde_json::from_str(&answer).unwrap_or(Value::Null)
    }

    /// The actor of entry `seq`, read from the ledger.
    fn actor_of(&mut self, seq: u64) -> String {
        let rows = ascribe_store::query::entries(self.ledger.as_mut(), seq, 1).expect("read");
        let entry: Value = serde_json::from_str(&rows[0].entry).expect("entry json");
        assert_eq!(rows[0].actor, entry["actor"].as_str().expect("actor"));
        entry["actor"].as_str().expect("actor").to_owned()
    }
}

/// One inference answered for `token`; returns its id.
fn chat(session: &mut Session<'_>, auth: Auth<'_>) -> String {
    let body = json!({"model": "chat-v1", "messages": [{"role": "user", "content": "hi"}]});
    let answer = session.allowed("POST", "/v1/chat/completions", auth, Some(&body));
    assert!(answer["choices"].is_array(), "{answer}");
    let last = session.answers.last().expect("kept");
    let id = last
        .lines()
        .find_map(|line| line.strip_prefix("ascribe-inference-id: "))
        .expect("an inference id");
    id.to_owned()
}

/// The role matrix: every route with no key, a wrong key and each role's key.
fn role_matrix(session: &mut Session<'_>, keys: &Keys, inference_id: &str) {
    for route in routes(inference_id) {
        let (method, path, body) = (route.method, route.path.as_str(), route.body.as_ref());
        session.refused(method, path, Auth::None, body, 401);
        session.refused(method, path, Auth::Bearer(WRONG_KEY), body, 401);
        let roles = [
            (Group::Inference, keys.caller.as_str()),
            (Group::Admin, keys.admin.as_str()),
            (Group::Audit, keys.auditor.as_str()),
        ];
        for (group, token) in roles {
            if group != route.group {
                session.refused(method, path, Auth::Bearer(token), body, 403);
            }
        }
        // The right role: reads are allowed here; the changes are made, once, below.
        if method == "GET" {
            let token = roles
                .iter()
                .find(|(group, _)| *group == route.group)
                .map(|(_, token)| *token)
                .expect("a role");
            session.allowed(method, path, Auth::Bearer(token), None);
        }
    }
    // Anthropic SDKs send `x-api-key`; the Basic form is for a browser on the audit pages.
    let messages = json!({"model": "claude-v1", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]});
    session.refused(
        "POST",
        "/v1/messages",
        Auth::ApiKey(&keys.auditor),
        Some(&messages),
        403,
    );
    session.refused(
        "POST",
        "/v1/messages",
        Auth::ApiKey(WRONG_KEY),
        Some(&messages),
        401,
    );
    session.refused("GET", "/audit/", Auth::Basic(&keys.caller), None, 403);
    session.refused("GET", "/audit/", Auth::Basic(WRONG_KEY), None, 401);
    session.allowed(
        "POST",
        "/v1/messages",
        Auth::ApiKey(&keys.caller),
        Some(&messages),
    );
    session.allowed("GET", "/audit/", Auth::Basic(&keys.auditor), None);
    // Keys are made and revoked only with the CLI, on the database: not even an admin key
    // reaches a route for them.
    let key = json!({"name": "backdoor", "role": "admin"});
    session.refused(
        "POST",
        "/admin/v1/keys",
        Auth::Bearer(&keys.admin),
        Some(&key),
        404,
    );
}

/// Successful calls and failed ones: upstream error, timeout, wrong key.
fn calls(session: &mut Session<'_>, keys: &Keys) -> String {
    let caller = Auth::Bearer(&keys.caller);
    let id = chat(session, caller);
    let messages = |alias: &str| {
        let hi = json!([{"role": "user", "content": "hi"}]);
        json!({"model": alias, "max_tokens": 16, "messages": hi})
    };
    let answer = session.allowed("POST", "/v1/messages", caller, Some(&messages("claude-v1")));
    assert_eq!(answer["type"], "message", "{answer}");
    let (status, body) = session.send(
        "POST",
        "/v1/messages",
        caller,
        Some(&messages("overloaded-v1")),
    );
    assert_eq!(status, 529, "{body}");
    let (status, body) = session.send("POST", "/v1/messages", caller, Some(&messages("slow-v1")));
    assert_eq!(status, 504, "{body}");
    let before = session.entries();
    let stream = json!({"model": "claude-v1", "max_tokens": 16, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let (status, _) = session.send(
        "POST",
        "/v1/messages",
        Auth::ApiKey(&keys.caller),
        Some(&stream),
    );
    assert_eq!(status, 200);
    // The stream's completion is a second entry, written once the stream ended: wait for it,
    // so that the refusals below are measured against a still ledger.
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.entries() < before + 2 {
        assert!(
            Instant::now() < deadline,
            "the stream's completion was not recorded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    session.refused(
        "POST",
        "/v1/messages",
        Auth::Bearer(WRONG_KEY),
        Some(&messages("claude-v1")),
        401,
    );
    id
}

/// Admin changes over HTTP: each records the admin key's name as its actor, not the body's.
fn administer(session: &mut Session<'_>, keys: &Keys, base_url: &str, round: usize) {
    let admin = Auth::Bearer(&keys.admin);
    let snapshot = format!("gpt-4o-round-{round}");
    let name = format!("admin-made-{round}");
    let changes = [
        (
            "/admin/v1/checkpoints".to_owned(),
            json!({"provider": "standin", "snapshot": snapshot, "actor": "forged-actor"}),
        ),
        (
            "/admin/v1/deployments".to_owned(),
            json!({"name": name, "checkpoint": format!("standin:{snapshot}"),
                "dialect": "openai-compatible", "base_url": base_url,
                "upstream_model": "openai-chat", "expect_served": "gpt-4o*",
                "allow_moving_name": true, "actor": "forged-actor"}),
        ),
        (
            "/admin/v1/aliases".to_owned(),
            json!({"name": format!("{name}-v1"), "deployment": "openai-chat",
                "actor": "forged-actor"}),
        ),
        (
            format!("/admin/v1/aliases/{name}-v1/rotate"),
            json!({"to": name, "kind": "upgrade", "reason": "newer", "actor": "forged-actor"}),
        ),
        (
            format!("/admin/v1/aliases/{name}-v1/rollback"),
            json!({"reason": "worse", "actor": "forged-actor"}),
        ),
    ];
    for (path, body) in changes {
        let answer = session.allowed("POST", &path, admin, Some(&body));
        let seq = answer["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("{path}: {answer}"));
        assert_eq!(session.actor_of(seq), "release-bot", "{path}");
    }
}

/// `ascribe key revoke` while the server runs: the key's next request is refused.
fn revoke_while_serving(session: &mut Session<'_>, keys: &Keys) {
    chat(session, Auth::Bearer(&keys.temp_caller));
    session.allowed(
        "GET",
        "/admin/v1/aliases",
        Auth::Bearer(&keys.temp_admin),
        None,
    );
    for name in ["temp-caller", "temp-admin"] {
        let revoked = session.ascribe.ok(&["key", "revoke", name, "--json"]);
        assert_eq!(revoked["revoked"], true);
    }
    let body = json!({"model": "chat-v1", "messages": [{"role": "user", "content": "hi"}]});
    let caller = Auth::Bearer(&keys.temp_caller);
    session.refused("POST", "/v1/chat/completions", caller, Some(&body), 401);
    let checkpoint = json!({"provider": "openai", "snapshot": "gpt-4o-2024-11-20"});
    let admin = Auth::Bearer(&keys.temp_admin);
    session.refused(
        "POST",
        "/admin/v1/checkpoints",
        admin,
        Some(&checkpoint),
        401,
    );
    session.refused("GET", "/admin/v1/aliases", admin, None, 401);
}

/// Every form in which a secret could leak.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![
        secret.to_owned(),
        format!("Bearer {secret}"),
        BASE64.encode(secret),
        BASE64_URL.encode(secret),
        hex::encode(secret),
        BASE64.encode(format!("auditor:{secret}")),
    ];
    if let Some(rest) = secret.strip_prefix("asc_") {
        forms.push(rest.to_owned());
    }
    // A secret cut short is still a leak: its first 20 characters after any prefix.
    let tail = secret.strip_prefix("asc_").unwrap_or(secret);
    forms.push(tail.chars().take(20).collect());
    forms
}

/// Every table of the ledger database, each row as text (blobs also in hex).
fn dump_database(db: &str, home: &std::path::Path) -> BTreeMap<String, String> {
    let mut dump = BTreeMap::new();
    match db.strip_prefix("sqlite://") {
        Some(path) => {
            let connection = rusqlite::Connection::open(home.join(path)).expect("opens");
            let mut tables = connection
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .expect("sql");
            let names: Vec<String> = tables
                .query_map([], |row| row.get(0))
                .expect("tables")
                .map(|name| name.expect("name"))
                .collect();
            for table in names {
                let mut statement = connection
                    .prepare(&format!("SELECT * FROM \"{table}\""))
                    .expect("sql");
                let columns = statement.column_count();
                let mut rows = statement.query([]).expect("rows");
                let mut text = String::new();
                while let Some(row) = rows.next().expect("row") {
                    for column in 0..columns {
                        use rusqlite::types::ValueRef;
                        match row.get_ref(column).expect("value") {
                            ValueRef::Null => text.push_str("NULL"),
                            ValueRef::Integer(n) => text.push_str(&n.to_string()),
                            ValueRef::Real(x) => text.push_str(&x.to_string()),
                            ValueRef::Text(bytes) => text.push_str(&String::from_utf8_lossy(bytes)),
                            ValueRef::Blob(bytes) => {
                                text.push_str(&String::from_utf8_lossy(bytes));
                                text.push('|');
                                text.push_str(&hex::encode(bytes));
                            }
                        }
                        text.push('\t');
                    }
                    text.push('\n');
                }
                dump.insert(format!("table {table}"), text);
            }
        }
        None => {
            let location: DatabaseLocation = db.parse().expect("url");
            let mut backend = open_backend(&location, false).expect("opens");
            let (_, schema) = db.split_once("search_path%3D").expect("schema");
            let tables = ascribe_store::query::read(backend.as_mut(), |tx| {
                tx.query(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                    &[schema.into()],
                )
            })
            .expect("tables");
            for table in tables {
                let table = table[0].text("table_name").expect("name").to_owned();
                // Every column as JSON text; bytea columns come out as `\x<hex>`.
                let rows = ascribe_store::query::read(backend.as_mut(), |tx| {
                    tx.query(
                        &format!("SELECT row_to_json(t)::text FROM \"{table}\" t"),
                        &[],
                    )
                })
                .expect("rows");
                let text: String = rows
                    .iter()
                    .map(|row| format!("{}\n", row[0].text("row").expect("text")))
                    .collect();
                dump.insert(format!("table {table}"), text);
            }
        }
    }
    assert!(
        dump.contains_key("table ledger_entries"),
        "{:?}",
        dump.keys()
    );
    assert!(dump.contains_key("table access_keys"), "{:?}", dump.keys());
    dump
}

/// Every file under `directory`, as bytes read lossily.
fn files_under(directory: &std::path::Path, found: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(directory).expect("readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            let bytes = std::fs::read(&path).expect("readable file");
            found.insert(
                format!("file {}", path.display()),
                String::from_utf8_lossy(&bytes).into_owned(),
            );
        }
    }
}

/// Every secret, in every form, found in any of `places`.
fn search(keys: &Keys, places: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    for (what, secret) in keys.secrets() {
        for form in forms(&secret) {
            for (place, text) in places {
                if text.contains(&form) {
                    found.push(format!("{what} as `{form}` in {place}"));
                }
            }
        }
    }
    found
}

fn access(store: &str) {
    let started = Instant::now();
    let home = tempfile::tempdir().expect("tempdir");
    let db = match store {
        "sqlite" => "sqlite://ledger.db".to_owned(),
        _ => ascribe_store::testing::fresh_postgres_schema(),
    };
    let ascribe = Ascribe {
        home: home.path(),
        db,
    };
    let upstream = ascribe_gateway::testing::StandInUpstream::start().expect("stand-in");
    ascribe.ok(&["init", "--json"]);
    let token = |name: &str, role: &str| {
        let key = ascribe.ok(&["key", "create", name, "--role", role, "--json"]);
        key["token"].as_str().expect("a token").to_owned()
    };
    let keys = Keys {
        caller: token("risk-service", "caller"),
        admin: token("release-bot", "admin"),
        auditor: token("internal-audit", "auditor"),
        temp_caller: token("temp-caller", "caller"),
        temp_admin: token("temp-admin", "admin"),
    };
    register_scenarios(
        &ascribe,
        &upstream.base_url(),
        SCENARIOS,
        PROVIDER_KEY_VARIABLE,
    );

    let rounds = if long() { 5 } else { 1 };
    let mut places: BTreeMap<String, String> = BTreeMap::new();
    let mut refusals = 0;
    let mut inference_id = String::new();
    for (run, format) in ["text", "json"].into_iter().enumerate() {
        let env = [
            (PROVIDER_KEY_VARIABLE, PROVIDER_KEY),
            ("ASCRIBE_LOG_LEVEL", "debug"),
            ("ASCRIBE_LOG_FORMAT", format),
            ("ASCRIBE_UPSTREAM_TIMEOUT", "1s"),
        ];
        let server = Server::start(&ascribe, &[], &env);
        let location: DatabaseLocation = match ascribe.db.strip_prefix("sqlite://") {
            Some(path) => format!("sqlite://{}", home.path().join(path).display()),
            None => ascribe.db.clone(),
        }
        .parse()
        .expect("url");
        let mut session = Session {
            client: client(Duration::from_secs(30)),
            server,
            ascribe: &ascribe,
            ledger: open_backend(&location, false).expect("ledger opens"),
            answers: Vec::new(),
            refusals: 0,
        };
        for round in 0..rounds {
            inference_id = calls(&mut session, &keys);
            role_matrix(&mut session, &keys, &inference_id);
            administer(
                &mut session,
                &keys,
                &upstream.base_url(),
                run * rounds + round,
            );
        }
        if run == 0 {
            revoke_while_serving(&mut session, &keys);
        }
        let mut server = session.server;
        assert!(server.terminate().success(), "{}", server.log());
        let log = server.log();
        assert!(
            log.contains("DEBUG") || log.contains("\"DEBUG\""),
            "a debug-level log"
        );
        places.insert(format!("{format} log at debug level"), log);
        for (n, answer) in session.answers.into_iter().enumerate() {
            places.insert(format!("answer {format} {n:03}"), answer);
        }
        refusals += session.refusals;
    }
    // The gateway did send the provider key upstream, so its absence below means something.
    let sent = upstream.received();
    assert!(sent
        .iter()
        .any(|request| request.header("x-api-key") == Some(PROVIDER_KEY)));

    // Exports and audit answers.
    let window = [
        "--from",
        "2020-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
    ];
    for format in ["jsonl", "csv", "html"] {
        let path = home.path().join(format!("export.{format}"));
        let path_text = path.to_str().expect("utf-8 path");
        ascribe.ok(&[
            &["export"][..],
            &window,
            &["--format", format, "-o", path_text],
        ]
        .concat());
        let text = std::fs::read_to_string(&path).expect("export written");
        assert!(
            text.contains("risk-service"),
            "the {format} export lists the caller"
        );
        places.insert(format!("export {format}"), text);
    }
    let audits: Vec<Vec<&str>> = vec![
        vec!["audit", "inference", &inference_id],
        vec!["audit", "decision", "case-1"],
        vec![
            "audit", "alias", "chat-v1", "--from", window[1], "--to", window[3],
        ],
        vec![
            "audit",
            "alias",
            "claude-v1",
            "--at",
            "2100-01-01T00:00:00Z",
        ],
        vec!["audit", "checkpoint", "standin:anthropic-messages"],
        [&["audit", "inferences"][..], &window].concat(),
        vec!["key", "list"],
        vec!["verify"],
        vec!["ledger", "head"],
    ];
    for args in audits {
        let args = [&args[..], &["--json"]].concat();
        let output = ascribe.command(&args).output().expect("runs");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        places.insert(args.join(" "), format!("{text}\n{stderr}"));
    }
    places.extend(dump_database(&ascribe.db, home.path()));
    files_under(home.path(), &mut places);

    // The search finds a secret where one is meant to be: the provider key in the requests the
    // stand-in received, a token in the `Bearer` header a client sends.
    let upstream_headers: String = sent
        .iter()
        .flat_map(|request| request.headers.iter())
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect();
    let control = BTreeMap::from([
        ("upstream requests".to_owned(), upstream_headers),
        (
            "a client's header".to_owned(),
            format!("authorization: Bearer {}", keys.caller),
        ),
    ]);
    let controls = search(&keys, &control);
    assert!(
        controls
            .iter()
            .any(|hit| hit.starts_with("provider key as")),
        "{controls:?}"
    );
    assert!(
        controls
            .iter()
            .any(|hit| hit.starts_with("caller token as `Bearer ")),
        "{controls:?}"
    );

    let found = search(&keys, &places);
    eprintln!(
        "reliability: test=access store={store} refusals={refusals} secrets_found={} \
         places_searched={} wall_ms={}",
        found.len(),
        places.len(),
        started.elapsed().as_millis()
    );
    assert_eq!(found, Vec::<String>::new(), "secrets leaked");
    assert!(refusals >= 40, "{refusals}");
}

#[test]
fn roles_revocation_and_secrets_on_sqlite() {
    access("sqlite");
}

#[test]
fn roles_revocation_and_secrets_on_postgres() {
    access("postgres");
}
