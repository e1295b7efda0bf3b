#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/ from the repository's own fixtures.

Run from anywhere: `python3 fuzz/make_seeds.py`. Each seed starts with the selector bytes its
target reads first (see the top of each file in fuzz_targets/). The provider answers come
from crates/ascribe-dialects/tests/fixtures; the requests, proofs and notes are written
here. Signing the note seeds needs the `cryptography` package; without it they are skipped.
"""

import base64
import hashlib
import json
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
FIXTURES = FUZZ.parent / "crates" / "ascribe-dialects" / "tests" / "fixtures"
SEEDS = FUZZ / "seeds"

APIS = {"chat": 0, "responses": 1, "embeddings": 2, "messages": 3}
UPSTREAMS = {"openai": 0, "azure": 1, "anthropic": 2, "compatible": 3}


def write(target, name, data):
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def requests():
    chat = [{"role": "user", "content": "hi"}]
    bodies = {
        "chat": {"model": "v1", "messages": chat},
        "chat-stream": {
            "model": "v1",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": chat,
            "metadata": {"ascribe_decision": "case-2026-0412", "team": "risk"},
        },
        "responses": {"model": "v1", "input": "hi", "metadata": {"ascribe_decision": "c-1"}},
        "embeddings": {"model": "embed", "input": ["a", "b"]},
        "messages": {
            "model": "claude",
            "max_tokens": 8,
            "stream": False,
            "messages": chat,
            "metadata": {"user_id": "u-1"},
        },
        "tools": {
            "model": "v1",
            "messages": chat,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {
                "type": "object", "properties": {"a": {"type": "array", "items": {}}}}}}],
        },
    }
    for name, body in bodies.items():
        api = APIS.get(name.split("-")[0], 0)
        write("request", name, bytes([api]) + json.dumps(body).encode())
    odd = {
        "escaped-key": b'{"mod\\u0065l":"v1","metadata":{"ascribe_decision":"x"}}',
        "duplicate-model": b'{"model":"a","model":"b"}',
        "not-object": b'[{"model":"v1"}]',
        "nested": b'{"model":"v1","x":' + b"[" * 99 + b"]" * 99 + b"}",
        "unicode": "{\"model\":\"v1-\u00e9\U0001f600\",\"metadata\":{}}".encode(),
    }
    for name, body in odd.items():
        write("request", name, bytes([APIS["chat"]]) + body)


def identities():
    headers = {
        "openai": FIXTURES / "openai-headers.json",
        "azure": FIXTURES / "azure-openai-headers.json",
        "anthropic": FIXTURES / "anthropic-headers.json",
        "compatible": FIXTURES / "tgi-headers.json",
    }
    for path in sorted(FIXTURES.glob("*.json")):
        if path.name.endswith("-headers.json"):
            continue
        upstream = next((u for u in UPSTREAMS if path.name.startswith(u)), "compatible")
        head = b""
        if upstream in headers:
            pairs = json.loads(headers[upstream].read_text())
            head = "".join(
                f"{name}: {value}\n" for name, value in pairs.items() if not name.startswith("_")
            ).encode()
        body = head + b"\n" + path.read_bytes()
        write("identity", path.stem, bytes([UPSTREAMS[upstream]]) + body)
    # Found by this target: invalid UTF-8 in a key once let the answer-model rewrite edit it.
    write("identity", "regression-invalid-utf8-key", b'\x00\n{"model":"gpt-4o","x\x93":1}')
    # JSON that serde_json's `Value` refuses (a number beyond f64) is still JSON to rewrite.
    write("identity", "regression-huge-number", b'\x00\n{"model":"gpt-4o","created":1e999}')


def streams():
    for path in sorted(FIXTURES.glob("*.sse")):
        if path.name.startswith("anthropic"):
            api = APIS["messages"]
        elif "responses" in path.name:
            api = APIS["responses"]
        else:
            api = APIS["chat"]
        write("stream", path.stem, bytes([api, len(path.name)]) + path.read_bytes())


def proofs():
    for mode, size, index, old, consistency, change in [
        (1, 7, 3, 4, 0, 0),
        (1, 7, 3, 4, 1, 1),
        (1, 299, 150, 128, 1, 4),
        (1, 64, 63, 32, 0, 5),
        (1, 1, 0, 1, 1, 3),
    ]:
        data = bytes([mode]) + struct.pack("<HHH", size, index, old)
        data += bytes([consistency, change]) + bytes(range(8))
        write("proofs", f"forgery-{size}-{index}-{old}-{consistency}-{change}", data)
    raw = bytes([0]) + struct.pack("<QQQ", 5, 8, 3) + bytes([1, 2, 3]) + bytes(96)
    write("proofs", "raw-three-hashes", raw)
    huge = bytes([0]) + struct.pack("<QQQ", 2**64 - 2, 2**64 - 1, 2**63) + bytes(3 + 64 * 32)
    write("proofs", "raw-huge-sizes", huge)


def notes():
    write("note", "forgery-size-42", bytes([1]) + struct.pack("<HBH", 42, 7, 30) + b"9")
    write("note", "forgery-signature", bytes([1]) + struct.pack("<HBH", 1, 0, 70) + b"\xe2\x80")
    public = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    private = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    write("note", "public-key", b"\x00" + public.encode())
    write("note", "private-key", b"\x00" + private.encode())
    write("note", "body", b"\x00ascribe.fuzz/ledger\n3\n" + base64.b64encode(bytes(32)) + b"\n")
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:
        return
    origin = "ascribe.fuzz/ledger"
    key = Ed25519PrivateKey.from_private_bytes(bytes([9] * 32))
    public_key = key.public_key().public_bytes_raw()
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + public_key).digest()[:4]
    body = f"{origin}\n42\n{base64.b64encode(bytes([7] * 32)).decode()}\n"
    signature = base64.b64encode(key_id + key.sign(body.encode())).decode()
    note = f"{body}\n\u2014 {origin} {signature}\n"
    write("note", "signed-note", b"\x00" + note.encode())


if __name__ == "__main__":
    requests()
    identities()
    streams()
    proofs()
    notes()
