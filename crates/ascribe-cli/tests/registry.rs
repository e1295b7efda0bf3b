//! The registry commands run as an administrator would, on SQLite and on PostgreSQL: after
//! an upgrade, an incident rollback and a re-upgrade, `audit alias --at` answers right before,
//! inside and after every segment, and the ledger verifies.

use ascribe_ledger::Timestamp;
use serde_json::Value;

mod common;

use common::Ascribe;

fn micros(time: &str) -> i64 {
    Timestamp::parse(time)
        .expect("canonical time")
        .unix_micros()
}

fn text(micros: i64) -> String {
    Timestamp::from_unix_micros(micros).to_string()
}

fn scripted_history(db: String) {
    let home = tempfile::tempdir().expect("tempdir");
    let ascribe = Ascribe {
        home: home.path(),
        db,
    };
    std::fs::write(home.path().join("card.md"), "# card\n").expect("writes");
    std::fs::write(
        home.path().join("eval.json"),
        r#"{"metrics":{"f1":0.8},"data_digest":"x"}"#,
    )
    .expect("writes");
    ascribe.ok(&["init", "--json"]);
    for snapshot in ["gpt-4o-2024-05-13", "gpt-4o-2024-08-06"] {
        ascribe.ok(&[
            "checkpoint",
            "register",
            "--provider",
            "openai",
            "--snapshot",
            snapshot,
            "--card",
            "card.md",
            "--json",
        ]);
        ascribe.ok(&[
            "deployment",
            "register",
            snapshot,
            "--checkpoint",
            &format!("openai:{snapshot}"),
            "--dialect",
            "openai",
            "--base-url",
            "https://api.openai.com/v1",
            "--upstream-model",
            snapshot,
            "--json",
        ]);
    }
    let (may, aug) = ("gpt-4o-2024-05-13", "gpt-4o-2024-08-06");
    ascribe.ok(&[
        "alias",
        "create",
        "v1",
        "--to",
        may,
        "--require-evidence",
        "--json",
    ]);
    let refused = ascribe
        .command(&[
            "alias", "rotate", "v1", "--to", aug, "--kind", "upgrade", "--reason", "newer",
        ])
        .output()
        .expect("ascribe runs");
    assert_eq!(
        refused.status.code(),
        Some(2),
        "rotation without evidence must be refused"
    );
    ascribe.ok(&[
        "alias",
        "rotate",
        "v1",
        "--to",
        aug,
        "--kind",
        "upgrade",
        "--reason",
        "newer",
        "--evidence",
        "eval.json",
        "--json",
    ]);
    let wrong_kind = ascribe
        .command(&[
            "alias", "rollback", "v1", "--kind", "upgrade", "--reason", "x",
        ])
        .output()
        .expect("ascribe runs");
    assert_eq!(
        wrong_kind.status.code(),
        Some(2),
        "a rollback is rollback or incident"
    );
    ascribe.ok(&[
        "alias",
        "rollback",
        "v1",
        "--kind",
        "incident",
        "--reason",
        "bad answers",
        "--evidence",
        "https://tickets.example/INC-7",
        "--json",
    ]);
    ascribe.ok(&[
        "alias",
        "rotate",
        "v1",
        "--to",
        aug,
        "--kind",
        "upgrade",
        "--reason",
        "fixed",
        "--evidence",
        "eval.json",
        "--json",
    ]);

    let shown = ascribe.ok(&["alias", "show", "v1", "--json"]);
    let history = shown["history"].as_array().expect("history");
    let expected = [
        (may, "created"),
        (aug, "upgrade"),
        (may, "incident"),
        (aug, "upgrade"),
    ];
    assert_eq!(history.len(), expected.len());
    for (segment, (deployment, kind)) in history.iter().zip(expected) {
        assert_eq!(segment["deployment"], deployment);
        assert_eq!(segment["rotation"]["kind"], kind);
    }

    let at = |instant: String| ascribe.ok(&["audit", "alias", "v1", "--at", &instant, "--json"]);
    let first_start = micros(history[0]["from"].as_str().expect("from"));
    assert_eq!(
        at(text(first_start - 1))["segment"],
        Value::Null,
        "before the alias existed"
    );
    for (index, segment) in history.iter().enumerate() {
        let start = micros(segment["from"].as_str().expect("from"));
        let end = segment["to"].as_str().map(micros);
        let mut instants = vec![
            start,
            start + (end.unwrap_or(start + 2_000_000) - start) / 2,
        ];
        if let Some(end) = end {
            instants.push(end - 1);
            let next = at(text(end));
            assert_eq!(
                next["segment"]["deployment"],
                history[index + 1]["deployment"]
            );
        }
        for instant in instants {
            let answer = at(text(instant));
            assert_eq!(
                answer["segment"]["deployment"], segment["deployment"],
                "at {instant}"
            );
            assert_eq!(
                answer["segment"]["rotation"]["kind"],
                segment["rotation"]["kind"]
            );
            assert_eq!(answer["segment"]["moving_name"], false);
        }
    }
    let incident = &history[2]["rotation"];
    assert_eq!(incident["reason"], "bad answers");
    assert_eq!(incident["evidence"]["uri"], "https://tickets.example/INC-7");
    assert_eq!(
        history[1]["rotation"]["evidence"]["document"]["name"],
        "eval.json"
    );

    let window = ascribe.ok(&[
        "audit",
        "alias",
        "v1",
        "--from",
        history[1]["from"].as_str().expect("from"),
        "--to",
        history[2]["to"].as_str().expect("to"),
        "--json",
    ]);
    assert_eq!(window["segments"].as_array().map(Vec::len), Some(2));

    let report = ascribe.ok(&["verify", "--json"]);
    assert_eq!(report["ok"], true, "{report}");
    // Two checkpoints, two deployments, one alias, three rotations, and two stored documents:
    // the card once (the second checkpoint reuses it) and the evaluation once.
    assert_eq!(report["entries"], 10);
}

#[test]
fn registry_history_resolves_right_on_sqlite() {
    scripted_history("sqlite://ledger.db".to_owned());
}

#[test]
fn registry_history_resolves_right_on_postgres() {
    scripted_history(ascribe_store::testing::fresh_postgres_schema());
}
