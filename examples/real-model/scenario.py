#!/usr/bin/env python3
"""The client and auditor side of examples/real-model/run.sh.

run.sh builds, starts and stops processes; this script talks to them. Each subcommand
reads and writes JSON files in the run's state directory (--state) and fails (exit 1) with
a message when what it checks does not hold. It runs in the client venv: the official
`openai` SDK for calls through the gateway, plain `urllib` for calls straight to the model
servers (so the independent check shares no client code with the gateway path), and the
`ascribe` binary named by $ASCRIBE_BIN for the auditor's questions.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

# Every call, through the gateway or straight to a server, uses exactly these parameters.
SEED = 42
MAX_TOKENS = 24
TEMPERATURE = 0
UPSTREAM_MODEL = "smollm2"

# Candidates for prompts on which the two checkpoints answer differently; the first ones
# that do (and that each server answers the same way twice) are used.
CANDIDATES = [
    "Write one sentence about the sea.",
    "Describe a cat in one sentence.",
    "Give a name for a pet robot and explain it.",
    "Write a haiku about autumn.",
    "What should I cook for dinner tonight?",
    "Name three colours and a fruit for each.",
    "Why is the sky blue? Answer briefly.",
    "Invent a word and define it.",
    "What is the capital of France?",
]
WANTED_PROMPTS = 3

# One segment of the scenario is this sequence of (prompt position, streamed?) calls.
SEGMENT_PLAN = [(0, False), (1, True), (2, False)]


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def say(message):
    print(message, flush=True)


def load(state, name, default=None):
    path = os.path.join(state, name)
    if not os.path.exists(path):
        if default is not None:
            return default
        fail(f"missing state file {path}")
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def store(state, name, value):
    path = os.path.join(state, name)
    with open(path + ".tmp", "w", encoding="utf-8") as file:
        json.dump(value, file, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def ascribe(*args, check=True):
    """Runs the ascribe binary; returns (exit code, stdout, stderr)."""
    done = subprocess.run(
        [os.environ["ASCRIBE_BIN"], *args], capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        fail(
            f"ascribe {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.returncode, done.stdout, done.stderr


def ascribe_json(*args):
    _, stdout, _ = ascribe(*args, "--json")
    return json.loads(stdout)


def direct(base_url, prompt, timeout=120):
    """The answer a server gives to a prompt, called straight, without the gateway or SDK."""
    body = json.dumps(
        {
            "model": UPSTREAM_MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": TEMPERATURE,
            "seed": SEED,
            "max_tokens": MAX_TOKENS,
        }
    ).encode()
    request = urllib.request.Request(
        f"{base_url}/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
    except urllib.error.URLError as error:
        fail(f"{base_url} did not answer: {error}")
    return answer["choices"][0]["message"]["content"]


# ----------------------------------------------------------------------------- select


def select(args):
    """Finds prompts whose answers differ between the two checkpoints, and are stable."""
    chosen, tried = [], []
    for prompt in CANDIDATES:
        a1, b1 = direct(args.a_url, prompt), direct(args.b_url, prompt)
        a2, b2 = direct(args.a_url, prompt), direct(args.b_url, prompt)
        stable = a1 == a2 and b1 == b2
        tried.append({"prompt": prompt, "a": a1, "b": b1, "stable": stable})
        say(f"    {prompt!r}\n      A: {a1!r}\n      B: {b1!r}" + ("" if stable else " (unstable)"))
        if stable and a1 != b1:
            chosen.append({"prompt": prompt, "a": a1, "b": b1})
            if len(chosen) == WANTED_PROMPTS:
                break
    if not chosen:
        fail(
            "no candidate prompt gives different answers on the two checkpoints at "
            f"temperature 0 and max_tokens {MAX_TOKENS}; the scenario cannot tell them apart"
        )
    if len(chosen) < len(SEGMENT_PLAN):
        say(f"    only {len(chosen)} differing prompt(s); they are reused across positions")
    store(args.state, "prompts.json", {"chosen": chosen, "tried": tried})
    say(f"==> {len(chosen)} prompt(s) where the checkpoints differ (of {len(tried)} tried)")


# ------------------------------------------------------------------------------- send


def send(args):
    """Sends one segment's decisions through the gateway with the official openai SDK."""
    from openai import OpenAI

    prompts = load(args.state, "prompts.json")["chosen"]
    decisions = load(args.state, "decisions.json", [])
    client = OpenAI(base_url=f"{args.gateway}/v1", api_key=args.token, max_retries=0)
    for position, streamed in SEGMENT_PLAN:
        prompt = prompts[position % len(prompts)]["prompt"]
        reference = f"case-{len(decisions) + 1:04d}"
        request = {
            "model": "v1",
            "messages": [{"role": "user", "content": prompt}],
            "temperature": TEMPERATURE,
            "seed": SEED,
            "max_tokens": MAX_TOKENS,
            "extra_headers": {"Ascribe-Decision": reference},
        }
        if streamed:
            raw = client.chat.completions.with_raw_response.create(stream=True, **request)
            answer = "".join(
                chunk.choices[0].delta.content or ""
                for chunk in raw.parse()
                if chunk.choices
            )
            returned_model = None
        else:
            raw = client.chat.completions.with_raw_response.create(**request)
            completion = raw.parse()
            answer = completion.choices[0].message.content
            returned_model = completion.model
        headers = raw.headers
        decision = {
            "reference": reference,
            "segment": args.segment,
            "deployment_expected": args.deployment,
            "prompt": prompt,
            "stream": streamed,
            "answer": answer,
            "returned_model": returned_model,
            "inference_id": headers.get("ascribe-inference-id"),
            "checkpoint_header": headers.get("ascribe-checkpoint"),
            "receipt": headers.get("ascribe-receipt"),
        }
        if not decision["inference_id"] or not decision["receipt"]:
            fail(f"{reference}: the answer carries no Ascribe-Inference-Id/Receipt: {headers}")
        decisions.append(decision)
        say(
            f"    {reference} segment {args.segment} ({args.deployment}) "
            f"{'stream' if streamed else 'plain '} {prompt!r} -> {answer!r}"
        )
    store(args.state, "decisions.json", decisions)


# -------------------------------------------------------------------------- attribute


def attribute(args):
    """Asks the ledger which checkpoint made each decision and checks it independently."""
    decisions = load(args.state, "decisions.json")
    checkpoints = {"A": args.checkpoint_a, "B": args.checkpoint_b}
    # Re-send every prompt straight to each server: what each checkpoint says today.
    fresh = {}
    for prompt in sorted({d["prompt"] for d in decisions}):
        fresh[prompt] = {"A": direct(args.a_url, prompt), "B": direct(args.b_url, prompt)}
        if fresh[prompt]["A"] == fresh[prompt]["B"]:
            fail(f"{prompt!r}: both checkpoints now give the same answer; cannot attribute")
    correct = mismatches = unexplained = 0
    for decision in decisions:
        audit = ascribe_json("audit", "decision", decision["reference"])
        inferences = audit["inferences"]
        if len(inferences) != 1:
            fail(f"{decision['reference']}: {len(inferences)} inferences recorded, want 1")
        record = inferences[0]
        if record["inference_id"] != decision["inference_id"]:
            fail(f"{decision['reference']}: the ledger names {record['inference_id']}")
        recorded = record["checkpoint"]
        answers = fresh[decision["prompt"]]
        matching = [name for name in "AB" if answers[name] == decision["answer"]]
        established = checkpoints[matching[0]] if len(matching) == 1 else None
        decision.update(
            recorded_checkpoint=recorded,
            recorded_deployment=record["deployment"],
            served_model=record["served_model"],
            identity_match=record["identity_match"],
            established_checkpoint=established,
            seq=record["seq"],
        )
        verdict = "ok"
        if established is None:
            unexplained += 1
            verdict = f"UNEXPLAINED (matches {matching or 'neither checkpoint'})"
        elif recorded != established:
            mismatches += 1
            verdict = "MISMATCH"
        else:
            correct += 1
        if decision["checkpoint_header"] != recorded:
            fail(f"{decision['reference']}: header {decision['checkpoint_header']} != {recorded}")
        name = {v: k for k, v in checkpoints.items()}.get(recorded, "?")
        say(
            f"    {decision['reference']}: ledger says {name} ({recorded[:19]}...), "
            f"the answer is {'/'.join(matching) or 'neither'}'s: {verdict}"
        )
    store(args.state, "decisions.json", decisions)
    store(
        args.state,
        "attribution.json",
        {
            "decisions": len(decisions),
            "attributed_correctly": correct,
            "mismatches": mismatches,
            "unexplained": unexplained,
            "fresh": fresh,
        },
    )


# ----------------------------------------------------------------------------- replay


def replay_report(inference_id):
    code, stdout, stderr = ascribe("replay", inference_id, "--timeout", "120", "--json", check=False)
    try:
        report = json.loads(stdout)
    except ValueError:
        fail(f"ascribe replay {inference_id} printed no JSON (exit {code}):\n{stdout}\n{stderr}")
    return code, report


def replay(args):
    """Replays one decision per segment against the deployment that answered it."""
    decisions = load(args.state, "decisions.json")
    segments = sorted({d["segment"] for d in decisions})
    matched, replays = 0, []
    for segment in segments:
        in_segment = [d for d in decisions if d["segment"] == segment]
        # Vary which position is replayed, so plain and streamed answers are both replayed.
        decision = in_segment[(segment - 1) % len(in_segment)]
        code, report = replay_report(decision["inference_id"])
        ok = code == 0 and report.get("verdict") == "reproduced"
        ok = ok and report.get("checkpoint") == decision["recorded_checkpoint"]
        ok = ok and report.get("replay_output") == decision["answer"]
        matched += ok
        replays.append({"reference": decision["reference"], "exit": code, "report": report})
        say(
            f"    replay {decision['reference']} (segment {segment}, "
            f"{'stream' if decision['stream'] else 'plain'}, {report.get('deployment')}): "
            f"{report.get('verdict')} (exit {code})"
        )
        if not ok:
            say(f"      {json.dumps(report)}")
    store(args.state, "replays.json", {"segments": len(segments), "matched": matched, "replays": replays})


def count_requests(log):
    with open(log, encoding="utf-8", errors="replace") as file:
        return file.read().count("POST /v1/chat/completions")


def replay_gone(args):
    """Replays a decision of the stopped deployment: not_deployed, exit 1, nothing called."""
    decisions = load(args.state, "decisions.json")
    gone = next(d for d in decisions if d["recorded_deployment"] == args.deployment)
    before = count_requests(args.other_log)
    code, report = replay_report(gone["inference_id"])
    time.sleep(0.5)
    after = count_requests(args.other_log)
    say(f"    replay {gone['reference']} after stopping {args.deployment}: "
        f"{report.get('verdict')} (exit {code})")
    say(f"      error: {report.get('error')}")
    if code != 1:
        fail(f"replay of a stopped deployment exited {code}, want 1: {report}")
    if report.get("verdict") != "not_deployed" or not report.get("error"):
        fail(f"replay of a stopped deployment: {report}")
    if report.get("replay_output") is not None:
        fail(f"replay of a stopped deployment produced output: {report}")
    if after != before:
        fail(f"the other server got {after - before} request(s) during the replay")
    say(f"      the other deployment's server got no request ({before} before and after)")
    store(args.state, "replay_gone.json", {"reference": gone["reference"], "report": report})


def replay_swapped(args):
    """After the weights behind a deployment changed, its replay no longer reproduces."""
    decisions = load(args.state, "decisions.json")
    first = next(d for d in decisions if d["recorded_deployment"] == args.deployment and not d["stream"])
    code, report = replay_report(first["inference_id"])
    say(
        f"    replay {first['reference']} on {args.deployment} after the swap: "
        f"{report.get('verdict')} (exit {code}); served model then "
        f"{report.get('original_served_model')!r}, now {report.get('replay_served_model')!r}"
    )
    say(f"      recorded: {first['answer']!r}\n      now:      {report.get('replay_output')!r}")
    if code != 1 or report.get("verdict") != "output_differs":
        fail(f"the replay after the swap should find a different output: {report}")
    store(args.state, "replay_swapped.json", {"reference": first["reference"], "report": report})


def swap_decision(args):
    """A decision served by the swapped weights: what the ledger records for it."""
    from openai import OpenAI

    attribution = load(args.state, "attribution.json")
    prompt = sorted(attribution["fresh"])[0]
    answers = attribution["fresh"][prompt]
    client = OpenAI(base_url=f"{args.gateway}/v1", api_key=args.token, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=args.alias,
        messages=[{"role": "user", "content": prompt}],
        temperature=TEMPERATURE,
        seed=SEED,
        max_tokens=MAX_TOKENS,
        extra_headers={"Ascribe-Decision": args.reference},
    )
    answer = raw.parse().choices[0].message.content
    record = ascribe_json("audit", "decision", args.reference)["inferences"][0]
    whose = [name for name in "AB" if answers[name] == answer]
    say(
        f"    {args.reference} via alias {args.alias} -> {record['deployment']}: the ledger records "
        f"checkpoint {record['checkpoint'][:19]}... (A), served model {record['served_model']!r}, "
        f"identity {record['identity_match']!r}, {len(record['observations'])} observation(s) "
        f"on the inference; the answer is {'/'.join(whose) or 'neither'}'s"
    )
    if record["checkpoint"] != args.checkpoint_a or whose != ["B"]:
        fail(f"expected the swapped deployment to answer as B while recorded as A: {record}")
    store(args.state, "swap_decision.json", {"answer": answer, "record": record})


# ----------------------------------------------------------------------------- verify


def verify(args):
    """The ledger verifies; one decision's inclusion proof and receipt verify independently."""
    report = ascribe_json("verify")
    say(f"    ascribe verify: {json.dumps(report)}")
    decisions = load(args.state, "decisions.json")
    decision = decisions[len(decisions) // 2]
    audit = ascribe_json("audit", "inference", decision["inference_id"])
    proof = audit["inclusion_proof"]
    if not isinstance(proof, dict) or "tree_head" not in proof:
        fail(f"no inclusion proof for {decision['inference_id']}: {proof}")
    proof_file = os.path.join(args.state, "inclusion_proof.json")
    with open(proof_file, "w", encoding="utf-8") as file:
        json.dump(proof, file)
    _, public_key, _ = ascribe("ledger", "public-key")
    with open(args.public_key, encoding="utf-8") as file:
        if file.read().strip() != public_key.strip():
            fail("ascribe ledger public-key differs from ledger.pub")
    independent = subprocess.run(
        [
            sys.executable,
            args.verifier,
            "--public-key",
            args.public_key,
            "--receipt",
            decision["receipt"],
            proof_file,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    say(
        f"    tools/verify_inclusion.py ({decision['reference']}, seq {proof['index']}, "
        f"tree size {proof['tree_size']}): exit {independent.returncode} "
        f"{independent.stdout.strip()}{independent.stderr.strip()}"
    )
    code, stdout, stderr = ascribe("receipt", "verify", decision["receipt"], "--json", check=False)
    receipt = json.loads(stdout) if stdout.strip() else {}
    receipt_ok = (
        code == 0
        and receipt.get("ok") is True
        and receipt.get("receipt", {}).get("inference_id") == decision["inference_id"]
        and receipt.get("receipt", {}).get("checkpoint") == decision["recorded_checkpoint"]
    )
    say(
        f"    ascribe receipt verify ({decision['reference']}): exit {code} "
        f"{json.dumps(receipt) if receipt else stderr.strip()}"
    )
    ok = report.get("ok") is True and independent.returncode == 0 and receipt_ok
    store(args.state, "verify.json", {"ok": ok, "verify": report})
    if not ok:
        fail("verification failed")


# ---------------------------------------------------------------------------- export


def export(args):
    """The evidence package of the whole run verifies with Ascribe and without it; the HTML
    report draws one timeline segment per period of alias v1."""
    window = ["--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z"]
    package = os.path.join(args.out, "evidence.jsonl")
    report = os.path.join(args.out, "report.html")
    ascribe("export", *window, "--format", "jsonl", "-o", package)
    ascribe("export", *window, "--format", "html", "-o", report)
    checked = ascribe_json("verify", "--export", package, "--public-key", args.public_key)
    independent = subprocess.run(
        [sys.executable, args.verifier, "--public-key", args.public_key, package],
        capture_output=True,
        text=True,
        check=False,
    )
    with open(report, encoding="utf-8") as file:
        html = file.read()
    v1 = html[html.index('data-alias="v1"'):]
    segments = v1[: v1.index("</svg>")].count('<rect class="segment"')
    say(f"    ascribe verify --export: {json.dumps(checked)}")
    say(f"    tools/verify_export.py: exit {independent.returncode} {independent.stdout.strip()}")
    say(f"    {report}: alias v1 drawn as {segments} segments")
    ok = (
        checked.get("ok") is True
        and independent.returncode == 0
        and segments == args.segments
    )
    store(args.state, "export.json", {"ok": ok})
    if not ok:
        fail("the evidence package or the report is wrong")


# ---------------------------------------------------------------------------- observe


def observations(deployment):
    """Every observation about a deployment, as `ascribe audit observations` lists them."""
    return ascribe_json("audit", "observations", "--deployment", deployment)


def last_observation(args):
    """The seq of the latest observation about a deployment, -1 when there is none."""
    print(max((o["seq"] for o in observations(args.deployment)), default=-1))


def observe(args):
    """Waits, within a bound, for an observation of a kind about a deployment."""
    deadline = time.monotonic() + args.timeout
    while True:
        seen = [o for o in observations(args.deployment) if o["seq"] > args.after_seq]
        for observation in seen:
            if observation["body"].get("kind") == args.kind:
                say(f"    ledger seq {observation['seq']}: {json.dumps(observation['body'])}")
                store(args.state, f"observation-{args.kind}.json", observation)
                return
        if time.monotonic() > deadline:
            fail(
                f"no {args.kind} observation about {args.deployment} within {args.timeout:.0f} s "
                f"after seq {args.after_seq}; observations: {json.dumps(seen)}"
            )
        time.sleep(1)


# ---------------------------------------------------------------------------- summary


def summary(args):
    attribution = load(args.state, "attribution.json")
    replays = load(args.state, "replays.json")
    result = {
        "decisions": attribution["decisions"],
        "rotations": args.rotations,
        "attributed_correctly": attribution["attributed_correctly"],
        "mismatches": attribution["mismatches"],
        "replays_matched": replays["matched"],
        "verify_ok": load(args.state, "verify.json")["ok"],
        "export_ok": load(args.state, "export.json")["ok"],
    }
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", required=True)
    commands = parser.add_subparsers(dest="command", required=True)

    command = commands.add_parser("select")
    command.add_argument("--a-url", required=True)
    command.add_argument("--b-url", required=True)
    command.set_defaults(run=select)

    command = commands.add_parser("send")
    command.add_argument("--gateway", required=True)
    command.add_argument("--token", required=True)
    command.add_argument("--segment", type=int, required=True)
    command.add_argument("--deployment", required=True)
    command.set_defaults(run=send)

    command = commands.add_parser("attribute")
    command.add_argument("--a-url", required=True)
    command.add_argument("--b-url", required=True)
    command.add_argument("--checkpoint-a", required=True)
    command.add_argument("--checkpoint-b", required=True)
    command.set_defaults(run=attribute)

    command = commands.add_parser("replay")
    command.set_defaults(run=replay)

    command = commands.add_parser("replay-gone")
    command.add_argument("--deployment", required=True)
    command.add_argument("--other-log", required=True)
    command.set_defaults(run=replay_gone)

    command = commands.add_parser("replay-swapped")
    command.add_argument("--deployment", required=True)
    command.set_defaults(run=replay_swapped)

    command = commands.add_parser("swap-decision")
    command.add_argument("--gateway", required=True)
    command.add_argument("--token", required=True)
    command.add_argument("--alias", required=True)
    command.add_argument("--reference", required=True)
    command.add_argument("--checkpoint-a", required=True)
    command.set_defaults(run=swap_decision)

    command = commands.add_parser("verify")
    command.add_argument("--public-key", required=True)
    command.add_argument("--verifier", required=True)
    command.set_defaults(run=verify)

    command = commands.add_parser("export")
    command.add_argument("--public-key", required=True)
    command.add_argument("--verifier", required=True)
    command.add_argument("--out", required=True)
    command.add_argument("--segments", type=int, required=True)
    command.set_defaults(run=export)

    command = commands.add_parser("last-observation")
    command.add_argument("--deployment", required=True)
    command.set_defaults(run=last_observation)

    command = commands.add_parser("observe")
    command.add_argument("--deployment", required=True)
    command.add_argument("--kind", required=True)
    command.add_argument("--after-seq", type=int, default=-1)
    command.add_argument("--timeout", type=float, default=90)
    command.set_defaults(run=observe)

    command = commands.add_parser("summary")
    command.add_argument("--rotations", type=int, required=True)
    command.set_defaults(run=summary)

    args = parser.parse_args()
    os.makedirs(args.state, exist_ok=True)
    args.run(args)


if __name__ == "__main__":
    main()
