//! The admin API through the router, on SQLite and on PostgreSQL: who may call it, who is
//! recorded as acting, what a registry built over HTTP looks like, and the status of every
//! kind of failure.

mod common;

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};

use common::{two_deployments_and_an_alias, upload, Gateway, Store};

/// Every admin route, with a path that names something.
const ADMIN_ROUTES: [(&str, &str); 11] = [
    ("GET", "/admin/v1/checkpoints"),
    ("POST", "/admin/v1/checkpoints"),
    ("GET", "/admin/v1/checkpoints/openai:gpt-4o-2024-05-13"),
    ("GET", "/admin/v1/deployments"),
    ("POST", "/admin/v1/deployments"),
    ("GET", "/admin/v1/deployments/gpt-4o-2024-05-13"),
    ("GET", "/admin/v1/aliases"),
    ("POST", "/admin/v1/aliases"),
    ("GET", "/admin/v1/aliases/v1"),
    ("POST", "/admin/v1/aliases/v1/rotate"),
    ("POST", "/admin/v1/aliases/v1/rollback"),
];

fn health_needs_no_key(store: Store) {
    let gateway = Gateway::start(store);
    let answer = gateway.call("GET", "/healthz", None, None);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({"status": "ok"}));
}
on_both_stores!(health_needs_no_key);

fn admin_routes_need_an_active_admin_key(store: Store) {
    let gateway = Gateway::start(store);
    two_deployments_and_an_alias(&gateway);
    for (method, path) in ADMIN_ROUTES {
        let post_body = (method == "POST").then(|| json!({}));
        let unauthenticated = [None, Some("asc_not-a-key"), Some(gateway.revoked.as_str())];
        for token in unauthenticated {
            let answer = gateway.call(method, path, token, post_body.clone());
            assert_eq!(answer.status, 401, "{method} {path} with {token:?}");
            assert_eq!(answer.body["error"]["type"], "unauthenticated");
            assert_eq!(answer.headers["www-authenticate"], "Bearer");
        }
        let basic = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Basic {}", gateway.admin))
            .body(Body::empty())
            .expect("request");
        assert_eq!(
            gateway.send(basic).status,
            401,
            "{method} {path} with Basic"
        );
        for token in [&gateway.caller, &gateway.auditor] {
            let answer = gateway.call(method, path, Some(token), post_body.clone());
            assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
            assert_eq!(answer.body["error"]["type"], "forbidden");
        }
        let answer = gateway.call(method, path, Some(&gateway.admin), post_body.clone());
        assert!(
            ![401, 403].contains(&answer.status.as_u16()),
            "{method} {path} refused the admin key: {}",
            answer.body
        );
    }
}
on_both_stores!(admin_routes_need_an_active_admin_key);

/// Every change is recorded as made by the key's name, whatever `actor` the body claims.
fn actor_is_the_key_name_never_the_body(store: Store) {
    let gateway = Gateway::start(store);
    let (_, aug) = two_deployments_and_an_alias(&gateway);
    let rotated = gateway.post_ok(
        "/admin/v1/aliases/v1/rotate",
        json!({"to": aug, "kind": "upgrade", "reason": "newer", "actor": "forged-actor"}),
        200,
    );
    let seq = rotated["seq"].as_u64().expect("seq");
    let (actor_column, entry) = gateway.entry(seq);
    assert_eq!(actor_column, "release-bot");
    assert_eq!(entry["actor"], "release-bot");
    assert_eq!(entry["kind"], "alias.rotated");

    let checkpoint = gateway.post_ok(
        "/admin/v1/checkpoints",
        json!({"provider": "anthropic", "snapshot": "claude-x-20250101", "actor": "forged-actor"}),
        201,
    );
    let (actor_column, _) = gateway.entry(checkpoint["seq"].as_u64().expect("seq"));
    assert_eq!(actor_column, "release-bot");

    for entry in gateway.entries() {
        let expected = if entry["kind"]
            .as_str()
            .is_some_and(|kind| kind.starts_with("key."))
        {
            "test-setup"
        } else {
            "release-bot"
        };
        assert_eq!(entry["actor"], expected, "{entry}");
    }
    let shown = gateway.get("/admin/v1/aliases/v1").body;
    assert_eq!(shown["history"][1]["rotation"]["actor"], "release-bot");
}
on_both_stores!(actor_is_the_key_name_never_the_body);

fn registry_built_over_http(store: Store) {
    let mut gateway = Gateway::start(store);
    let card = upload("card.md", "# gpt-4o\n");
    let evaluation = upload(
        "eval.json",
        r#"{"metrics":{"f1":0.8},"data_digest":"sha256:ab"}"#,
    );
    let lineage = upload(
        "lineage.json",
        r#"{"sources":[{"id":"web","digest":"sha256:cd"}]}"#,
    );
    let registered = gateway.post_ok(
        "/admin/v1/checkpoints",
        json!({
            "provider": "openai", "snapshot": "gpt-4o-2024-05-13", "note": "first",
            "card": card, "evaluation": evaluation, "lineage": lineage,
        }),
        201,
    );
    assert_eq!(registered["checkpoint"], "openai:gpt-4o-2024-05-13");
    // The second checkpoint reuses the card: it is not stored twice.
    gateway.post_ok(
        "/admin/v1/checkpoints",
        json!({"provider": "openai", "snapshot": "gpt-4o-2024-08-06", "card": card}),
        201,
    );
    let stored = gateway
        .entries()
        .into_iter()
        .filter(|entry| entry["kind"] == "document.stored")
        .count();
    assert_eq!(stored, 3);
    let manifest = weight_manifest();
    let weights = gateway.post_ok("/admin/v1/checkpoints", json!({"manifest": manifest}), 201);
    assert_eq!(weights["checkpoint"], manifest["checkpoint"]);

    // Ids hold `:`; they route raw and percent-encoded alike.
    for path in [
        "/admin/v1/checkpoints/openai:gpt-4o-2024-05-13",
        "/admin/v1/checkpoints/openai%3Agpt-4o-2024-05-13",
    ] {
        let shown = gateway.get(path);
        assert_eq!(shown.status, 200, "{path}");
        assert_eq!(shown.body["checkpoint"]["id"], "openai:gpt-4o-2024-05-13");
        assert_eq!(shown.body["checkpoint"]["card"]["name"], "card.md");
        assert_eq!(shown.body["checkpoint"]["registered_by"], "release-bot");
        assert_eq!(shown.body["production"], json!([]));
    }
    let listed = gateway.get("/admin/v1/checkpoints").body;
    assert_eq!(listed["checkpoints"].as_array().map(Vec::len), Some(3));

    for snapshot in ["gpt-4o-2024-05-13", "gpt-4o-2024-08-06"] {
        gateway.post_ok(
            "/admin/v1/deployments",
            json!({
                "name": format!("team/{snapshot}"),
                "checkpoint": format!("openai:{snapshot}"),
                "dialect": "azure-openai",
                "base_url": "https://example.openai.azure.com",
                "upstream_model": snapshot,
                "retention": "full",
            }),
            201,
        );
    }
    let shown = gateway.get("/admin/v1/deployments/team%2Fgpt-4o-2024-05-13");
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.body["deployment"]["dialect"], "azure-openai");
    assert_eq!(shown.body["deployment"]["retention"], "full");
    assert_eq!(
        shown.body["deployment"]["expect_served"],
        "gpt-4o-2024-05-13"
    );
    let listed = gateway.get("/admin/v1/deployments").body;
    assert_eq!(listed["deployments"].as_array().map(Vec::len), Some(2));

    let created = gateway.post_ok(
        "/admin/v1/aliases",
        json!({"name": "risk/prod", "deployment": "team/gpt-4o-2024-05-13",
               "require_evidence": true, "on_mismatch": "reject"}),
        201,
    );
    assert_eq!(created["alias"], "risk/prod");
    let report = upload("report.json", r#"{"metrics":{"f1":0.9},"data_digest":"x"}"#);
    let rotated = gateway.post_ok(
        "/admin/v1/aliases/risk%2Fprod/rotate",
        json!({"to": "team/gpt-4o-2024-08-06", "kind": "upgrade", "reason": "better f1",
               "evidence": {"document": report}}),
        200,
    );
    assert_eq!(rotated["from"]["deployment"], "team/gpt-4o-2024-05-13");
    assert_eq!(rotated["to"]["checkpoint"], "openai:gpt-4o-2024-08-06");
    let rolled_back = gateway.post_ok(
        "/admin/v1/aliases/risk%2Fprod/rollback",
        json!({"reason": "bad answers", "kind": "incident",
               "evidence": {"uri": "https://tickets.example/INC-7"}}),
        200,
    );
    assert_eq!(rolled_back["to"]["deployment"], "team/gpt-4o-2024-05-13");
    assert_eq!(rolled_back["kind"], "incident");

    let shown = gateway.get("/admin/v1/aliases/risk%2Fprod").body;
    assert_eq!(shown["alias"]["deployment"], "team/gpt-4o-2024-05-13");
    assert_eq!(shown["alias"]["on_mismatch"], "reject");
    let kinds: Vec<&Value> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|segment| &segment["rotation"]["kind"])
        .collect();
    assert_eq!(
        kinds,
        [&json!("created"), &json!("upgrade"), &json!("incident")]
    );
    let evidence = &shown["history"][1]["rotation"]["evidence"]["document"];
    assert_eq!(evidence["name"], "report.json");
    let listed = gateway.get("/admin/v1/aliases").body;
    assert_eq!(listed["aliases"][0]["name"], "risk/prod");
    let production = gateway
        .get("/admin/v1/checkpoints/openai:gpt-4o-2024-08-06")
        .body;
    assert_eq!(production["production"][0]["alias"], "risk/prod");

    // Stopping signs a head over the last entries, so the whole ledger verifies.
    let n_entries = gateway.entries().len() as u64;
    let report = gateway.stop_and_verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, n_entries);
    assert_eq!(report.tree_size, n_entries);
}
on_both_stores!(registry_built_over_http);

/// The manifest `ascribe hash --json` prints for one small file.
fn weight_manifest() -> Value {
    let file = ascribe_weights::FileRecord {
        path: "model.gguf".to_owned(),
        size: 3,
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned(),
        format: None,
        tensor_count: None,
        format_error: None,
    };
    let manifest = ascribe_weights::WeightManifest::from_files(vec![file]).expect("manifest");
    serde_json::to_value(manifest).expect("json")
}

/// One failing request and what it must get back.
struct Case {
    method: &'static str,
    path: String,
    body: Option<Value>,
    status: u16,
    message_has: &'static str,
}

fn post(path: &str, body: Value) -> Case {
    Case {
        method: "POST",
        path: format!("/admin/v1/{path}"),
        body: Some(body),
        status: 0,
        message_has: "",
    }
}

fn get(path: &str) -> Case {
    Case {
        method: "GET",
        body: None,
        ..post(path, Value::Null)
    }
}

impl Case {
    /// Expects `status` and a message holding `message_has`.
    fn is(self, status: u16, message_has: &'static str) -> Case {
        Case {
            status,
            message_has,
            ..self
        }
    }

    /// The error `type` that goes with the status.
    fn r#type(&self) -> &'static str {
        match self.status {
            400 => "malformed_request",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            422 => "invalid_request",
            other => panic!("no case expects {other}"),
        }
    }
}

fn deployment(name: &str, checkpoint: &str, upstream_model: &str) -> Value {
    json!({"name": name, "checkpoint": checkpoint, "dialect": "openai",
           "base_url": "https://api.openai.com/v1", "upstream_model": upstream_model})
}

fn refused_changes_get_their_status_and_write_nothing(store: Store) {
    let gateway = Gateway::start(store);
    let (may, aug) = two_deployments_and_an_alias(&gateway);
    let strict = json!({"name": "strict", "deployment": may, "require_evidence": true});
    gateway.post_ok("/admin/v1/aliases", strict, 201);
    let n_entries = gateway.entries().len();

    let mut forged_manifest = weight_manifest();
    forged_manifest["checkpoint"] = json!(format!("sha256:{}", "ab".repeat(32)));
    let d2 = |field: &str, value: Value| {
        let mut body = deployment("d2", "openai:gpt-4o-2024-05-13", may);
        body[field] = value;
        body
    };
    let rotate =
        |to: &str, kind: &str, reason: &str| json!({"to": to, "kind": kind, "reason": reason});
    let hosted = |document: &str, upload: Value| {
        let mut body = json!({"provider": "o", "snapshot": "s"});
        body[document] = upload;
        body
    };
    let cases = [
        // Checkpoints.
        post(
            "checkpoints",
            json!({"provider": "openai", "snapshot": may}),
        )
        .is(409, "already registered"),
        post("checkpoints", json!({"provider": "openai"}))
            .is(422, "both `provider` and `snapshot`"),
        post("checkpoints", json!({"manifest": {"checkpoint": "md5:x"}}))
            .is(422, "not in `ascribe hash --json` form"),
        post("checkpoints", json!({"manifest": forged_manifest})).is(422, "but its files hash to"),
        post(
            "checkpoints",
            hosted("card", json!({"name": "c", "content_base64": "!"})),
        )
        .is(422, "not valid base64"),
        post("checkpoints", hosted("evaluation", upload("e.json", "{}")))
            .is(422, "needs a `metrics` object"),
        post("checkpoints", hosted("lineage", upload("l.json", "[]"))).is(422, "JSON object"),
        get("checkpoints/openai:nope").is(404, "no checkpoint openai:nope"),
        // Deployments.
        post("deployments", deployment("d", "openai:nope", "nope")).is(404, "is not registered"),
        post(
            "deployments",
            deployment(may, "openai:gpt-4o-2024-05-13", may),
        )
        .is(409, "already exists"),
        post("deployments", d2("dialect", json!("smoke"))).is(422, "unknown dialect `smoke`"),
        post("deployments", d2("retention", json!("forever"))).is(422, "unknown retention"),
        post("deployments", d2("upstream_model", json!("gpt-4o")))
            .is(422, "set `allow_moving_name`"),
        post("deployments", d2("base_url", json!("ftp://x"))).is(422, "must start with http"),
        post("deployments", d2("dialect", json!(7))).is(400, "invalid type"),
        get("deployments/nope").is(404, "no deployment `nope`"),
        // Aliases.
        post("aliases", json!({"name": "v1", "deployment": aug})).is(409, "already exists"),
        post("aliases", json!({"name": "v2", "deployment": "ghost"}))
            .is(404, "deployment `ghost` does not exist"),
        post(
            "aliases",
            json!({"name": "v2", "deployment": aug, "on_mismatch": "shrug"}),
        )
        .is(422, "unknown mismatch policy"),
        post("aliases/nope/rotate", rotate(aug, "upgrade", "r"))
            .is(404, "alias `nope` does not exist"),
        post("aliases/v1/rotate", rotate("ghost", "upgrade", "r"))
            .is(404, "deployment `ghost` does not exist"),
        post("aliases/v1/rotate", rotate(may, "upgrade", "r")).is(409, "already points at"),
        post("aliases/v1/rotate", rotate(aug, "sideways", "r")).is(422, "unknown rotation kind"),
        post("aliases/v1/rotate", rotate(aug, "upgrade", " ")).is(422, "needs a reason"),
        post("aliases/v1/rotate", json!({"to": aug, "kind": "upgrade"}))
            .is(400, "missing field `reason`"),
        post("aliases/strict/rotate", rotate(aug, "upgrade", "r")).is(422, "send `evidence`"),
        post("aliases/strict/rotate", {
            let mut body = rotate(aug, "upgrade", "r");
            body["evidence"] = json!({"uri": ""});
            body
        })
        .is(422, "must not be empty"),
        post("aliases/strict/rotate", {
            let mut body = rotate(aug, "upgrade", "r");
            body["evidence"] = json!({"link": "x"});
            body
        })
        .is(400, "unknown variant `link`"),
        post("aliases/v1/rollback", json!({"reason": "r"})).is(409, "no earlier deployment"),
        post(
            "aliases/v1/rollback",
            json!({"reason": "r", "kind": "upgrade"}),
        )
        .is(422, "`rollback` or `incident`"),
        get("aliases/nope").is(404, "no alias `nope`"),
        get("aliases/%FF").is(400, "percent-encoded UTF-8"),
        // Routes.
        get("nowhere").is(404, "no such route"),
        Case {
            method: "DELETE",
            ..get("aliases/v1").is(405, "method not allowed")
        },
    ];
    for case in cases {
        let answer = gateway.call(
            case.method,
            &case.path,
            Some(&gateway.admin),
            case.body.clone(),
        );
        let context = format!("{} {}: {}", case.method, case.path, answer.body);
        assert_eq!(answer.status.as_u16(), case.status, "{context}");
        assert_eq!(answer.body["error"]["type"], case.r#type(), "{context}");
        let message = answer.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(case.message_has), "{context}");
    }
    let n_after = gateway.entries().len();
    assert_eq!(n_after, n_entries, "a refused change wrote an entry");
}
on_both_stores!(refused_changes_get_their_status_and_write_nothing);

fn bodies_that_cannot_be_read_are_refused(store: Store) {
    let gateway = Gateway::start(store);
    let raw = |content_type: &str, body: Body| {
        let request = Request::builder()
            .method("POST")
            .uri("/admin/v1/checkpoints")
            .header("authorization", format!("Bearer {}", gateway.admin))
            .header("content-type", content_type)
            .body(body)
            .expect("request");
        gateway.send(request)
    };
    let broken = raw("application/json", Body::from(r#"{"provider": "#));
    assert_eq!(broken.status, 400);
    assert_eq!(broken.body["error"]["type"], "malformed_request");
    let message = broken.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("request body is not valid JSON"),
        "{message}"
    );

    let form = raw(
        "application/x-www-form-urlencoded",
        Body::from("provider=openai"),
    );
    assert_eq!(form.status, 415);
    assert_eq!(form.body["error"]["type"], "unsupported_media_type");

    let mut huge = br#"{"note": ""#.to_vec();
    huge.resize(ascribe_gateway::MAX_BODY_BYTES + 1, b'a');
    huge.extend_from_slice(br#""}"#);
    let delete = gateway.call("DELETE", "/admin/v1/aliases", Some(&gateway.admin), None);
    assert_eq!(delete.status, 405);
    let allow = delete.headers["allow"].to_str().unwrap_or("");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");

    let too_large = raw("application/json", Body::from(huge));
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.body["error"]["type"], "payload_too_large");
}
on_both_stores!(bodies_that_cannot_be_read_are_refused);

/// A ledger that cannot be written or read is a 503 whose body says nothing of the cause.
fn database_failures_are_503_without_details(store: Store) {
    let gateway = Gateway::start(store);
    let (_, aug) = two_deployments_and_an_alias(&gateway);
    // The rotation's projection writes this table: without it the whole batch rolls back.
    gateway.execute("DROP TABLE registry_alias_segments");
    let answers = [
        gateway.post(
            "/admin/v1/aliases/v1/rotate",
            json!({"to": aug, "kind": "upgrade", "reason": "r"}),
        ),
        gateway.get("/admin/v1/aliases/v1"),
    ];
    for answer in answers {
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert_eq!(answer.body["error"]["type"], "unavailable");
        let text = answer.body.to_string();
        assert!(
            !text.contains("registry_"),
            "database detail leaked: {text}"
        );
        assert!(
            !text.contains("sqlite") && !text.contains("postgres"),
            "{text}"
        );
    }
    let kinds: Vec<Value> = gateway
        .entries()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert!(!kinds.contains(&json!("alias.rotated")), "{kinds:?}");
}
on_both_stores!(database_failures_are_503_without_details);

/// A key revoked while the gateway runs stops working at once: nothing is cached.
fn a_key_revoked_while_serving_stops_working(store: Store) {
    let gateway = Gateway::start(store);
    assert_eq!(gateway.get("/admin/v1/aliases").status, 200);
    gateway.append_as_setup(vec![ascribe_access::revoke_key(
        "release-bot",
        "test-setup",
    )]);
    let answer = gateway.get("/admin/v1/aliases");
    assert_eq!(answer.status, 401, "{}", answer.body);
}
on_both_stores!(a_key_revoked_while_serving_stops_working);
