//! Two `ascribe serve` processes on one PostgreSQL ledger, each with callers of its own in
//! both dialects, whole answers and streams. Afterwards the ledger is one consistent tree:
//! seqs 0..n without gap or repeat, every answer recorded exactly once (and every stream
//! read to its end completed once), the two gateways' entries interleaved, every signed tree
//! head a prefix of the final tree (consistency proofs), and `ascribe verify` passes.
//!
//! The fast version takes about 8 s on two cores (300 calls); `ASCRIBE_LONG_TESTS=1` makes
//! 2400 calls, about 50 s.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ascribe_gateway::testing::StandInUpstream;
use ascribe_ledger::merkle::{root_of, verify_consistency};
use ascribe_ledger::{Hash, TreeHead};
use ascribe_store::{open_backend, query, DatabaseLocation};
use reqwest::blocking::Client;
use serde_json::Value;

mod common;

use common::ledger::{untorn, Schema};
use common::load::{client, MIX};
use common::{long, Ascribe, Scenario, Server, CHAT, CLAUDE, PACED};

/// The variable the Anthropic deployment reads its provider key from, and that key.
const PROVIDER_KEY_VARIABLE: &str = "TWO_GATEWAYS_TEST_ANTHROPIC_API_KEY";
const PROVIDER_KEY: &str = "sk-ant-provider-two-gateways-81c2";

/// Each caller cycles through [`MIX`] over these.
const SCENARIOS: &[Scenario] = &[CHAT, CLAUDE, PACED];

/// Gateways, and caller threads per gateway.
const GATEWAYS: usize = 2;
const CALLERS: usize = 3;

/// What a caller got back from one call.
#[derive(Clone, Debug)]
struct Answer {
    gateway: usize,
    alias: &'static str,
    stream: bool,
    status: u16,
    inference_id: Option<String>,
    /// The body was read to its end (for a 200 stream: up to its terminal event).
    whole: bool,
}

/// One call: Anthropic's Messages API for `claude-*`, else chat completions.
fn infer(
    client: &Client,
    base: &str,
    token: &str,
    gateway: usize,
    (alias, stream): (&'static str, bool),
) -> Answer {
    let reply = common::load::infer(client, base, token, alias, stream, "hi", &[])
        .expect("the gateway answers");
    Answer {
        gateway,
        alias,
        stream,
        status: reply.status,
        inference_id: reply.header("ascribe-inference-id"),
        whole: reply.whole,
    }
}

/// Every entry row, checked not torn: it parses, carries its row's `seq` and `kind`, and its
/// leaf hash is `SHA-256(0x00 || entry)`; seqs run 0..n without gap or repeat.
fn read_entries(db: &str) -> (Vec<Value>, Vec<Hash>) {
    let location = DatabaseLocation::from_str(db).expect("a database URL");
    let mut backend = open_backend(&location, false).expect("the ledger opens");
    let (mut entries, mut leaves) = (Vec::new(), Vec::new());
    loop {
        let from = entries.len() as u64;
        let page = query::entries(backend.as_mut(), from, 1000).expect("entries read");
        if page.is_empty() {
            return (entries, leaves);
        }
        for row in page {
            assert_eq!(row.seq, entries.len() as u64, "no gap, no duplicate index");
            let (entry, leaf) = untorn(&row);
            entries.push(entry);
            leaves.push(leaf);
        }
    }
}

/// Checks every signed tree head against the root over its first leaves, and proves each
/// head consistent with the next one and with the latest; returns the number of heads.
fn assert_heads_consistent(db: &str, leaves: &[Hash]) -> usize {
    let location = DatabaseLocation::from_str(db).expect("a database URL");
    let mut backend = open_backend(&location, false).expect("the ledger opens");
    let heads: Vec<TreeHead> = query::tree_heads(backend.as_mut())
        .expect("tree heads read")
        .iter()
        .map(|record| {
            let note = &record.head.note;
            let body = &note[..note.find("\n\n").expect("a signed note") + 1];
            let head = TreeHead::parse_body(body).expect("a tree head body");
            assert_eq!(head.size, record.head.size);
            let size = usize::try_from(head.size).expect("a size");
            assert!(size <= leaves.len(), "head {size} beyond the ledger");
            assert_eq!(head.root, root_of(&leaves[..size]), "head {size}");
            head
        })
        .collect();
    let latest = heads.last().expect("a signed tree head");
    assert_eq!(
        latest.size,
        leaves.len() as u64,
        "the last head covers every entry"
    );
    for pair in heads.windows(2) {
        for (old, new) in [(&pair[0], &pair[1]), (&pair[0], latest)] {
            let proof = query::consistency_proof(backend.as_mut(), old.size, new.size)
                .expect("consistency proof");
            verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
                .unwrap_or_else(|error| panic!("{} -> {}: {error}", old.size, new.size));
        }
    }
    heads.len()
}

#[test]
fn two_gateways_on_one_postgres_ledger_build_one_tree() {
    let calls_per_caller = if long() { 400 } else { 50 };
    let schema = Schema::new();
    let upstream = StandInUpstream::start().expect("stand-in starts");
    let homes = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let ascribes: Vec<Ascribe<'_>> = homes
        .iter()
        .map(|home| Ascribe {
            home: home.path(),
            db: schema.url.clone(),
        })
        .collect();
    let token =
        ascribes[0].init_with_scenarios(&upstream.base_url(), SCENARIOS, PROVIDER_KEY_VARIABLE);
    // The second gateway is the same deployment on another host: same key files.
    for file in ["ascribe.toml", "ledger.key", "ledger.pub"] {
        std::fs::copy(homes[0].path().join(file), homes[1].path().join(file))
            .unwrap_or_else(|error| panic!("copy {file}: {error}"));
    }
    let mut servers: Vec<Server> = ascribes
        .iter()
        .map(|ascribe| Server::start(ascribe, &[], &[(PROVIDER_KEY_VARIABLE, PROVIDER_KEY)]))
        .collect();

    let started = Instant::now();
    let answers = Arc::new(Mutex::new(Vec::new()));
    let callers: Vec<_> = (0..GATEWAYS * CALLERS)
        .map(|n| {
            let gateway = n % GATEWAYS;
            let (base, token) = (servers[gateway].base.clone(), token.clone());
            let answers = Arc::clone(&answers);
            std::thread::spawn(move || {
                let client = client(Duration::from_secs(20));
                for call in 0..calls_per_caller {
                    let answer =
                        infer(&client, &base, &token, gateway, MIX[(n + call) % MIX.len()]);
                    answers.lock().expect("answers").push(answer);
                }
            })
        })
        .collect();
    for caller in callers {
        caller.join().expect("caller thread");
    }
    for server in &mut servers {
        let status = server.terminate();
        assert!(status.success(), "exit {status}: {}", server.log());
    }
    let elapsed = started.elapsed();

    let answers = std::mem::take(&mut *answers.lock().expect("answers"));
    assert_eq!(answers.len(), GATEWAYS * CALLERS * calls_per_caller);
    let failed: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status != 200 || !a.whole || a.inference_id.is_none())
        .collect();
    assert!(
        failed.is_empty(),
        "calls not answered in full: {:?}",
        failed.first()
    );

    let (entries, leaves) = read_entries(&schema.url);
    // Inference and completion entries by id, each exactly once, with its seq.
    let mut recorded: BTreeMap<&str, (u64, &Value)> = BTreeMap::new();
    let mut completed: BTreeMap<&str, &Value> = BTreeMap::new();
    let mut duplicated = Vec::new();
    for entry in &entries {
        let body = &entry["body"];
        let id = body["inference_id"].as_str().unwrap_or_default();
        let seq = entry["seq"].as_u64().expect("a seq");
        let twice = match entry["kind"].as_str() {
            Some("inference.recorded") => recorded.insert(id, (seq, body)).is_some(),
            Some("inference.completed") => completed.insert(id, body).is_some(),
            _ => false,
        };
        if twice {
            duplicated.push(entry);
        }
    }
    let times: Vec<&str> = entries
        .iter()
        .map(|entry| entry["time"].as_str().expect("a time"))
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] <= pair[1]),
        "times go back"
    );
    let mut answered_by: BTreeMap<u64, usize> = BTreeMap::new();
    let (mut lost, mut uncompleted) = (Vec::new(), Vec::new());
    for answer in &answers {
        let id = answer.inference_id.as_deref().expect("an id");
        let Some((seq, body)) = recorded.get(id) else {
            lost.push(id);
            continue;
        };
        assert_eq!(body["status"], 200, "{body}");
        assert_eq!(body["stream"], answer.stream, "{body}");
        assert_eq!(body["alias"], answer.alias, "{body}");
        answered_by.insert(*seq, answer.gateway);
        if answer.stream
            && completed
                .get(id)
                .is_none_or(|body| body["completed"] != true)
        {
            uncompleted.push(id);
        }
    }
    assert_eq!(
        recorded.len(),
        answers.len(),
        "an inference entry per call, no more"
    );
    let switches = answered_by
        .values()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|pair| pair[0] != pair[1])
        .count();
    let n_heads = assert_heads_consistent(&schema.url, &leaves);

    let output = ascribes[1]
        .command(&["verify", "--json"])
        .output()
        .expect("ascribe verify runs");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    assert_eq!(output.status.code(), Some(0), "verify failed: {report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries"], entries.len(), "{report}");
    assert_eq!(report["heads_checked"], n_heads, "{report}");
    let root = hex::encode(root_of(&leaves));
    assert_eq!(report["root"], root.as_str(), "{report}");

    eprintln!(
        "reliability: test=two_gateways store=postgres gateways={GATEWAYS} callers={} \
         answers={} records_lost={} records_duplicated={} streams_uncompleted={} entries={} \
         seq_gaps=0 heads={n_heads} heads_inconsistent=0 gateway_switches={switches} \
         wall_s={:.1}",
        GATEWAYS * CALLERS,
        answers.len(),
        lost.len(),
        duplicated.len(),
        uncompleted.len(),
        entries.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        lost.is_empty(),
        "answers released without a record: {lost:?}"
    );
    assert!(
        duplicated.is_empty(),
        "entries recorded twice: {duplicated:?}"
    );
    assert!(
        uncompleted.is_empty(),
        "streams without completion: {uncompleted:?}"
    );
    assert!(switches >= 2, "the two gateways' entries never interleaved");
}
