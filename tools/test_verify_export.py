#!/usr/bin/env python3
"""Tests for tools/verify_export.py on synthetic evidence packages built here in Python.

    python3 -m unittest tools/test_verify_export.py      (from the repository root)
    python3 tools/test_verify_export.py

The packages are made without Ascribe: an Ed25519 key from `cryptography`, a log of canonical
entries, the RFC 9162 tree and proofs (the recursive MTH, PATH and SUBPROOF of RFC 9162
sections 2.1.1, 2.1.3.1 and 2.1.4.1) and a C2SP signed note, all as docs/ledger.md and
docs/export.md describe them. The worked example of docs/ledger.md checks these helpers.
"""

import base64
import datetime
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "verify_export.py")
_spec = importlib.util.spec_from_file_location("verify_export", SCRIPT)
verify_export = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verify_export)

ORIGIN = "ascribe/1a2b3c4d"
LOG_LENGTH = 40
EQUAL_TIME_SEQ = 21  # entry 21 has the same time as entry 20


# --- RFC 9162, independently of the verifier --------------------------------------------------


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf(entry_bytes):
    return sha256(b"\x00" + entry_bytes)


def node(left, right):
    return sha256(b"\x01" + left + right)


def split(n):
    """The largest power of two below n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaves):
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = split(n)
    return node(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    """RFC 9162 section 2.1.3.1: PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, complete):
    """RFC 9162 section 2.1.4.1: SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = split(n)
    if m <= k:
        return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def consistency(m, leaves):
    return subproof(m, leaves, True) if 0 < m < len(leaves) else []


def frontier(size, leaves):
    """Roots of the perfect subtrees covering [0, size), largest first."""
    nodes, start = [], 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            nodes.append(mth(leaves[start : start + (1 << bit)]))
            start += 1 << bit
    return nodes


# --- keys and notes (docs/ledger.md, "Signed tree heads") -------------------------------------


def b64(data):
    return base64.b64encode(data).decode("ascii")


class Key:
    def __init__(self, name, seed):
        self.name = name
        self.private = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self.private.public_key().public_bytes_raw()
        self.id = sha256(name.encode("utf-8") + b"\n\x01" + self.public)[:4]
        self.seed = seed

    def public_text(self):
        return f"{self.name}+{self.id.hex()}+" + b64(b"\x01" + self.public)

    def private_text(self):
        return f"PRIVATE+KEY+{self.name}+{self.id.hex()}+" + b64(b"\x01" + self.seed)

    def signature_line(self, text):
        signature = self.private.sign(text.encode("utf-8"))
        return f"\u2014 {self.name} {b64(self.id + signature)}\n"


def tree_head(origin, size, root, *keys):
    text = f"{origin}\n{size}\n{b64(root)}\n"
    return text + "\n" + "".join(key.signature_line(text) for key in keys)


# --- a synthetic log and its packages ---------------------------------------------------------

BASE = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)


def time_text(micros):
    instant = BASE + datetime.timedelta(microseconds=micros)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(value):
    """RFC 8785 for these entries: integers, the floats below, ASCII member names."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


KINDS = [
    "inference.recorded",
    "alias.rotated",
    "inference.recorded",
    "observation.recorded",
    "deployment.registered",
    "checkpoint.registered",
    "inference.recorded",
]


def make_log(length=LOG_LENGTH):
    """Entry texts and times; time never decreases, entries 20 and 21 share one."""
    entries, times = [], []
    micros = 0
    for seq in range(length):
        if seq != EQUAL_TIME_SEQ:
            micros += 60_000_000 + seq * 7
        body = {
            "inference_id": f"inf-{seq:04d}",
            "n": seq,
            "note": "gr\u00fc\u00dfe \u20ac \U0001f600 \"quoted\" \\ tab\t",
            "upstream_ms": {"first_byte": 123.456 + seq, "total": 0.5},
            "usage": {"big": 1e21, "negative": -seq, "list": [1, None, True, False, "x"]},
        }
        value = {
            "seq": seq,
            "time": time_text(micros),
            "kind": KINDS[seq % len(KINDS)],
            "actor": "gateway" if seq % 3 else "cli:root",
            "body": body,
        }
        entries.append(canonical(value))
        times.append(micros)
    return entries, times


def line(obj):
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


class Ledger:
    def __init__(self, key, length=LOG_LENGTH):
        self.key = key
        self.entries, self.times = make_log(length)
        self.leaves = [leaf(entry.encode("utf-8")) for entry in self.entries]

    def window(self, first, end, size):
        """The [from, to) times whose window is exactly seq [first, end) in a tree of size."""
        if first < size:
            start = self.times[first]
        else:
            start = self.times[size - 1] + 1 if size else 0
        if end < size:
            stop = self.times[end]
        else:
            stop = max(start, self.times[size - 1] + 1 if size else 0)
        return time_text(start), time_text(stop)

    def package(self, first, end, size=None, rotation=True, signers=None):
        """The lines of the package for seq [first, end) against the head of `size`."""
        size = LOG_LENGTH if size is None else size
        leaves = self.leaves[:size]
        root = mth(leaves)
        window_from, window_to = self.window(first, end, size)
        header = {
            "type": "header",
            "format": "ascribe-export/1",
            "origin": self.key.name,
            "from": window_from,
            "to": window_to,
            "first_seq": first,
            "end_seq": end,
            "tree_head": tree_head(self.key.name, size, root, *(signers or [self.key])),
            "frontier": [b64(h) for h in frontier(first, leaves)],
            "consistency": [b64(h) for h in consistency(end, leaves)],
        }
        lines = [line(header)]

        def context(role, seq):
            return line({
                "type": "context",
                "role": role,
                "seq": seq,
                "entry": self.entries[seq],
                "inclusion": [b64(h) for h in path(seq, leaves)],
            })

        if rotation:
            rotations = [s for s in range(first) if "alias.rotated" in self.entries[s]]
            if rotations:
                lines.append(context("rotation", rotations[-1]))
        if first > 0:
            lines.append(context("before", first - 1))
        if end < size:
            lines.append(context("after", end))
        contexts = len(lines) - 1
        for seq in range(first, end):
            lines.append(line({"type": "entry", "seq": seq, "entry": self.entries[seq]}))
        lines.append(line({"type": "end", "entries": end - first, "context": contexts}))
        return lines


def replace_header(lines, **changes):
    header = json.loads(lines[0])
    header.update(changes)
    return [line(header)] + lines[1:]


def index_of(lines, kind, role=None):
    for i, raw in enumerate(lines):
        obj = json.loads(raw)
        if obj["type"] == kind and (role is None or obj.get("role") == role):
            return i
    raise AssertionError(f"no {kind} {role} line")


# --- the tests ------------------------------------------------------------------------------


class WorkedExample(unittest.TestCase):
    """The helpers above reproduce the worked example of docs/ledger.md."""

    ENTRY0 = (
        '{"actor":"cli:root","body":{"name":"ops","role":"admin","token_sha256":'
        '"5e884898da28047151d0e56f8dc2b0b2a1e8b8f1a3a3f1f5f0e0a0b0c0d0e0f0"},'
        '"kind":"key.created","seq":0,"time":"2026-12-03T16:31:37.123456Z"}'
    )
    ENTRY1 = (
        '{"actor":"cli:root","body":{"name":"ops"},"kind":"key.revoked","seq":1,'
        '"time":"2026-12-03T16:31:38.000000Z"}'
    )
    HEAD = (
        "example.com/ascribe\n2\nN/aSGp2gU9gNDw0UMVXmteJwiXBkSCwWAdvb0v1rt1Q=\n\n"
        "\u2014 example.com/ascribe PkXynEQy8mTO61GHWzhdSsL1xXECwyAz2Zr4+Pex0LGrD0A0xBpZHttc"
        "wBpouOEW6nCCnHnPyAlAi4y82dZp7pZxYwc=\n"
    )

    def test_hashes_keys_and_head(self):
        leaf0, leaf1 = leaf(self.ENTRY0.encode()), leaf(self.ENTRY1.encode())
        self.assertEqual(
            leaf0.hex(), "b6a1cce2dcf7897a80b2180199fae7b4406b176d80769dd3c05fa96d06add5eb"
        )
        self.assertEqual(
            leaf1.hex(), "7e0ba52a3645a385230b3d8ca43999fce85c5b8c2b8746dc561a27d440840f14"
        )
        root = mth([leaf0, leaf1])
        self.assertEqual(
            root.hex(), "37f6921a9da053d80d0f0d143155e6b5e270897064482c1601dbdbd2fd6bb754"
        )
        key = Key("example.com/ascribe", b"\x42" * 32)
        self.assertEqual(
            key.public_text(),
            "example.com/ascribe+3e45f29c+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS",
        )
        self.assertEqual(
            key.private_text(),
            "PRIVATE+KEY+example.com/ascribe+3e45f29c+AUJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"
            "QkJC",
        )
        self.assertEqual(tree_head("example.com/ascribe", 2, root, key), self.HEAD)

    def test_package_of_the_worked_example(self):
        key = Key("example.com/ascribe", b"\x42" * 32)
        lines = [
            line({
                "type": "header", "format": "ascribe-export/1", "origin": key.name,
                "from": "2026-12-03T00:00:00.000000Z", "to": "2026-12-04T00:00:00.000000Z",
                "first_seq": 0, "end_seq": 2, "tree_head": self.HEAD,
                "frontier": [], "consistency": [],
            }),
            line({"type": "entry", "seq": 0, "entry": self.ENTRY0}),
            line({"type": "entry", "seq": 1, "entry": self.ENTRY1}),
            line({"type": "end", "entries": 2, "context": 0}),
        ]
        trusted = verify_export.parse_public_key(key.public_text())
        report = verify_export.verify_package(iter(lines), trusted)
        self.assertEqual((report["entries"], report["tree_size"]), (2, 2))


class Canonical(unittest.TestCase):
    """RFC 8785 serialisation, including numbers and member order."""

    # RFC 8785 appendix B: IEEE 754 bit patterns and their serialisations.
    NUMBERS = [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ]

    def test_numbers(self):
        import struct

        for bits, expected in self.NUMBERS:
            value = struct.unpack(">d", bytes.fromhex(bits))[0]
            self.assertEqual(verify_export.es_number(value), expected, bits)
        for value, expected in [(1e-7, "1e-7"), (123.456, "123.456"), (100.0, "100"),
                                (1e20, "100000000000000000000"), (0.1, "0.1")]:
            self.assertEqual(verify_export.es_number(value), expected)

    def test_member_order_is_by_utf16_code_units(self):
        # RFC 8785 section 3.2.3.
        value = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6,
                 "\u00f6": 7}
        self.assertEqual(
            verify_export.jcs(value),
            '{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\U0001f600":5,"\ufb33":3}',
        )

    def test_entries(self):
        good = '{"actor":"a","body":{"x":1.5,"y":1e-7},"kind":"a.b","seq":3,' \
               '"time":"2026-01-01T00:00:00.000000Z"}'
        verify_export.check_entry(good, 3, "t")
        bad = [
            good.replace("1.5", "1.50"),                 # not the shortest number
            good.replace("1e-7", "1e-07"),               # exponent layout
            good.replace("1e-7", "0.0000001"),           # ECMAScript uses 1e-7
            good.replace('"x"', ' "x"'),                 # whitespace
            good.replace('"actor":"a",', "") + "",       # missing member
            good.replace('"seq":3', '"seq":3,"zz":1'),  # unknown member
            good.replace('"body":{"x":1.5,"y":1e-7},', '"body":{"y":1e-7,"x":1.5},'),
            good.replace("00.000000Z", "00.000Z"),       # time form
            good.replace('"a.b"', '"A.b"'),              # kind form
            good.replace('"seq":3', '"seq":3.0'),
            good.replace('"x":1.5', '"x":1.5,"x":1.5'),  # duplicate member
            good.replace('"x":1.5', '"x":NaN'),
        ]
        for text in bad:
            with self.assertRaises(verify_export.Invalid, msg=text):
                verify_export.check_entry(text, 3, "t")
        with self.assertRaises(verify_export.Invalid):
            verify_export.check_entry(good, 4, "t")     # states another seq


class Packages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.key = Key(ORIGIN, bytes(range(32)))
        cls.ledger = Ledger(cls.key)
        cls.trusted = verify_export.parse_public_key(cls.key.public_text())
        cls.tmp = tempfile.TemporaryDirectory()
        cls.pub = os.path.join(cls.tmp.name, "ledger.pub")
        with open(cls.pub, "w", encoding="utf-8") as file:
            file.write(cls.key.public_text() + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    # helpers

    def verify(self, lines):
        return verify_export.verify_package(iter(lines), self.trusted)

    def assert_fails(self, lines, at_line=None, says=None):
        with self.assertRaises(verify_export.Invalid) as caught:
            self.verify(lines)
        if at_line is not None:
            self.assertEqual(caught.exception.line, at_line, str(caught.exception))
        if says is not None:
            self.assertIn(says, str(caught.exception))
        return caught.exception

    def run_script(self, lines, pub=None, stdin=False):
        data = b"".join(lines)
        if stdin:
            args, given = ["-"], data
        else:
            target = os.path.join(self.tmp.name, "package.jsonl")
            with open(target, "wb") as file:
                file.write(data)
            args, given = [target], None
        done = subprocess.run(
            [sys.executable, SCRIPT, "--public-key", pub or self.pub] + args,
            input=given, capture_output=True, check=False, timeout=120,
        )
        out = done.stdout.decode().strip().split("\n")
        self.assertEqual(len(out), 1, done.stdout + done.stderr)
        return done.returncode, json.loads(out[0])

    def middle(self):
        return self.ledger.package(10, 30)

    # valid packages

    def test_valid_packages_through_the_script(self):
        cases = [
            (10, 30, None),   # inside: before, after and a rotation as context
            (0, 12, None),    # first_seq = 0: no before, empty frontier
            (27, 40, None),   # end_seq = N: no after, empty consistency proof
            (0, 40, None),    # the whole log
            (15, 15, None),   # empty window in the middle
            (0, 0, None),     # empty window before every entry: empty prefix
            (40, 40, None),   # empty window after every entry
            (5, 33, 33),      # a head smaller than the log
            (16, 32, None),   # powers of two at both ends
        ]
        for first, end, size in cases:
            with self.subTest(first=first, end=end, size=size):
                lines = self.ledger.package(first, end, size)
                code, report = self.run_script(lines)
                self.assertEqual(code, 0, report)
                self.assertTrue(report["ok"])
                self.assertEqual(report["entries"], end - first)
                self.assertEqual(report["context"], len(lines) - 2 - (end - first))
                self.assertEqual(report["tree_size"], size or LOG_LENGTH)
                self.assertEqual(report["origin"], ORIGIN)
                header = json.loads(lines[0])
                self.assertEqual((report["from"], report["to"]), (header["from"], header["to"]))

    def test_every_window_and_head_size(self):
        for size in (1, 2, 3, 7, 8, 9, 20, 21, 22, 33, LOG_LENGTH):
            for first in range(size + 1):
                for end in range(first, size + 1):
                    if EQUAL_TIME_SEQ in (first, end):
                        continue  # 20 and 21 share a time: no window splits them
                    with self.subTest(size=size, first=first, end=end):
                        report = self.verify(self.ledger.package(first, end, size))
                        self.assertEqual(report["entries"], end - first)

    def test_stdin(self):
        code, report = self.run_script(self.middle(), stdin=True)
        self.assertEqual((code, report["entries"], report["context"]), (0, 20, 3))

    def test_other_signers_are_ignored(self):
        other = Key("witness.example/w1", b"\x07" * 32)
        lines = self.ledger.package(10, 30, signers=[other, self.key])
        self.assertEqual(self.verify(lines)["entries"], 20)

    # tampering, through the script

    def test_flipped_byte_in_an_entry(self):
        lines = self.middle()
        i = index_of(lines, "entry") + 5
        lines[i] = lines[i].replace(b"inf-00", b"inf-01", 1)
        code, report = self.run_script(lines)
        self.assertEqual(code, 1)
        self.assertEqual(report["line"], len(lines))  # found when the root is checked at end
        self.assertFalse(report["ok"])

    def test_dropped_entry_line(self):
        lines = self.middle()
        i = index_of(lines, "entry") + 3
        del lines[i]
        code, report = self.run_script(lines)
        self.assertEqual((code, report["line"]), (1, i + 1))
        self.assertIn("expected seq 13", report["error"])

    def test_swapped_entry_lines(self):
        lines = self.middle()
        i = index_of(lines, "entry") + 2
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
        code, report = self.run_script(lines)
        self.assertEqual((code, report["line"]), (1, i + 1))

    def test_dropped_end(self):
        lines = self.middle()[:-1]
        code, report = self.run_script(lines)
        self.assertEqual((code, report["line"]), (1, len(lines) + 1))
        self.assertIn("cut short", report["error"])

    def test_wrong_key(self):
        for name in (ORIGIN, "other/ledger"):
            with self.subTest(name=name):
                other = Key(name, b"\x09" * 32)
                pub = os.path.join(self.tmp.name, "other.pub")
                with open(pub, "w", encoding="utf-8") as file:
                    file.write(other.public_text())
                code, report = self.run_script(self.middle(), pub=pub)
                self.assertEqual((code, report["line"]), (1, 1))
                self.assertIn("no signature by the trusted key", report["error"])

    def test_forged_frontier_hash(self):
        lines = self.middle()
        header = json.loads(lines[0])
        forged = list(header["frontier"])
        forged[-1] = b64(sha256(b"forged"))
        lines = replace_header(lines, frontier=forged)
        code, report = self.run_script(lines)
        self.assertEqual((code, report["line"]), (1, len(lines)))
        self.assertIn("consistency proof does not match", report["error"])

    def test_missing_before(self):
        lines = self.middle()
        del lines[index_of(lines, "context", "before")]
        code, report = self.run_script(lines)
        self.assertEqual((code, report["line"]), (1, index_of(lines, "entry") + 1))
        self.assertIn("no `before` context line", report["error"])

    def test_unusable_key_file(self):
        missing = os.path.join(self.tmp.name, "missing.pub")
        code, report = self.run_script(self.middle(), pub=missing)
        self.assertEqual((code, report["ok"]), (2, False))
        broken = os.path.join(self.tmp.name, "broken.pub")
        with open(broken, "w", encoding="utf-8") as file:
            file.write(self.key.public_text().replace("+", "-", 1))
        code, _ = self.run_script(self.middle(), pub=broken)
        self.assertEqual(code, 2)

    # tampering, in process

    def test_missing_after(self):
        lines = self.middle()
        del lines[index_of(lines, "context", "after")]
        self.assert_fails(lines, says="no `after` context line")

    def test_missing_before_and_after_of_an_empty_window(self):
        lines = self.ledger.package(15, 15)
        self.assert_fails([lines[0]] + lines[-1:], at_line=2, says="no `before`")

    def test_before_and_after_must_bound_the_window(self):
        lines = self.middle()
        header = json.loads(lines[0])
        before = self.ledger.window(11, 30, LOG_LENGTH)[0]  # entry 10 is now outside
        self.assert_fails(replace_header(lines, **{"from": before}), says="outside the window")
        after = self.ledger.window(10, 29, LOG_LENGTH)[1]   # entry 29 is now outside
        self.assert_fails(replace_header(lines, to=after), says="outside the window")
        early = time_text(self.ledger.times[9])              # the before entry is not before
        self.assert_fails(replace_header(lines, **{"from": early}), says="is not before")
        late = time_text(self.ledger.times[30] + 1)          # the after entry is not after
        self.assert_fails(replace_header(lines, to=late), says="is before the window's to")
        self.assertEqual(self.verify(replace_header(lines, to=header["to"]))["entries"], 20)

    def test_context_with_wrong_seq_or_proof(self):
        lines = self.middle()
        i = index_of(lines, "context", "before")
        obj = json.loads(lines[i])
        moved = dict(obj, seq=8, entry=self.ledger.entries[8],
                     inclusion=[b64(h) for h in path(8, self.ledger.leaves)])
        self.assert_fails(lines[:i] + [line(moved)] + lines[i + 1 :], at_line=i + 1,
                          says="seq must be first_seq - 1")
        bad_proof = dict(obj, inclusion=obj["inclusion"][:-1] + [b64(sha256(b"x"))])
        self.assert_fails(lines[:i] + [line(bad_proof)] + lines[i + 1 :], at_line=i + 1,
                          says="inclusion proof")
        flipped = dict(obj, entry=obj["entry"].replace("inf-", "inf_"))
        self.assert_fails(lines[:i] + [line(flipped)] + lines[i + 1 :], at_line=i + 1,
                          says="inclusion proof")
        unknown = dict(obj, role="witness")
        self.assert_fails(lines[:i] + [line(unknown)] + lines[i + 1 :], at_line=i + 1)
        inside = dict(obj, role="rotation", seq=12, entry=self.ledger.entries[12],
                      inclusion=[b64(h) for h in path(12, self.ledger.leaves)])
        self.assert_fails(lines[:i] + [line(inside)] + lines[i:], at_line=i + 1,
                          says="inside the window")
        twice = lines[: i + 1] + [lines[i]] + lines[i + 1 :]
        self.assert_fails(twice, at_line=i + 2, says="a second `before`")

    def test_after_when_the_window_reaches_the_head(self):
        lines = self.ledger.package(27, 40)
        bogus = line({"type": "context", "role": "after", "seq": 39,
                      "entry": self.ledger.entries[39],
                      "inclusion": [b64(h) for h in path(39, self.ledger.leaves)]})
        self.assert_fails(lines[:2] + [bogus] + lines[2:], at_line=3)

    def test_order_of_lines(self):
        lines = self.middle()
        first_entry = index_of(lines, "entry")
        context = lines[1]
        self.assert_fails(lines[: first_entry + 1] + [context] + lines[first_entry + 1 :],
                          at_line=first_entry + 2, says="context line after")
        self.assert_fails(lines + [lines[-1]], at_line=len(lines) + 1, says="after `end`")
        self.assert_fails(lines[:1] + [lines[0]] + lines[1:], at_line=2, says="second header")
        self.assert_fails(lines[1:], at_line=1, says="not a header")
        self.assert_fails(lines[:3] + [line({"type": "note"})] + lines[3:], at_line=4,
                          says="unknown line type")
        self.assert_fails([], at_line=1, says="empty")
        self.assert_fails(lines[:-1] + [lines[-1][:-1]], at_line=len(lines),
                          says="newline")
        self.assert_fails(lines[:3] + [b"\n"] + lines[3:], at_line=4, says="not JSON")
        extra = line({"type": "entry", "seq": 30, "entry": self.ledger.entries[30]})
        self.assert_fails(lines[:-1] + [extra] + lines[-1:], at_line=len(lines),
                          says="end at end_seq")

    def test_end_counts_and_early_end(self):
        lines = self.middle()
        self.assert_fails(lines[:-1] + [line({"type": "end", "entries": 19, "context": 3})],
                          at_line=len(lines), says="end counts")
        self.assert_fails(lines[:-1] + [line({"type": "end", "entries": 20, "context": 2})],
                          at_line=len(lines), says="end counts")
        cut = lines[:-2] + [line({"type": "end", "entries": 19, "context": 3})]
        self.assert_fails(cut, at_line=len(cut), says="stop before seq 29")

    def test_non_canonical_entry_line(self):
        lines = self.middle()
        i = index_of(lines, "entry")
        obj = json.loads(lines[i])
        spaced = dict(obj, entry=obj["entry"].replace('"seq":', '"seq": '))
        self.assert_fails(lines[:i] + [line(spaced)] + lines[i + 1 :], at_line=i + 1,
                          says="canonical")
        longer = dict(obj, entry=obj["entry"].replace('"total":0.5', '"total":0.50'))
        self.assert_fails(lines[:i] + [line(longer)] + lines[i + 1 :], at_line=i + 1,
                          says="canonical")
        other_seq = dict(obj, seq=obj["seq"] + 1)
        self.assert_fails(lines[:i] + [line(other_seq)] + lines[i + 1 :], at_line=i + 1)

    def test_header_checks(self):
        lines = self.middle()
        header = json.loads(lines[0])
        self.assert_fails(replace_header(lines, origin="ascribe/other"), at_line=1,
                          says="header origin")
        self.assert_fails(replace_header(lines, format="ascribe-export/2"), at_line=1)
        self.assert_fails(replace_header(lines, end_seq=41), at_line=1,
                          says="first_seq <= end_seq")
        self.assert_fails(replace_header(lines, first_seq=31), at_line=1)
        extra = header["frontier"] + [header["frontier"][0]]
        self.assert_fails(replace_header(lines, frontier=extra), at_line=1,
                          says="one per set bit")
        proof = list(header["consistency"])
        proof[0] = b64(sha256(b"forged"))
        self.assert_fails(replace_header(lines, consistency=proof), at_line=len(lines))
        self.assert_fails(replace_header(lines, consistency=proof[:-1]), at_line=len(lines))
        self.assert_fails(replace_header(lines, consistency=proof + proof[:1]),
                          at_line=len(lines))
        head = header["tree_head"]
        root_line = head.split("\n")[2]
        forged = head.replace(root_line, b64(sha256(b"root")))
        self.assert_fails(replace_header(lines, tree_head=forged), at_line=1,
                          says="does not verify")

    def test_empty_prefix_and_full_head_need_empty_proofs(self):
        lines = self.ledger.package(0, 0)
        forged = [b64(sha256(b"x"))]
        self.assert_fails(replace_header(lines, consistency=forged), at_line=len(lines),
                          says="from size 0")
        lines = self.ledger.package(27, 40)
        self.assert_fails(replace_header(lines, consistency=forged), at_line=len(lines),
                          says="equal sizes")

    def test_decreasing_time_is_refused(self):
        # A log whose writer let time go backwards, signed as is.
        ledger = Ledger(self.key, 6)
        values = [json.loads(entry) for entry in ledger.entries]
        values[3]["time"], values[4]["time"] = values[4]["time"], values[3]["time"]
        ledger.entries = [canonical(value) for value in values]
        ledger.leaves = [leaf(entry.encode("utf-8")) for entry in ledger.entries]
        lines = ledger.package(0, 6, size=6)
        lines = replace_header(lines, to=time_text(ledger.times[5] + 1))
        self.assert_fails(lines, at_line=6, says="earlier than the previous")


if __name__ == "__main__":
    unittest.main()
