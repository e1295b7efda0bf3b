#!/usr/bin/env python3
"""Check an Ascribe evidence package (JSONL, `ascribe-export/1`), trusting only the public key.

An independent verifier: it shares no code with Ascribe's Rust code, only the signed-note and
proof helpers of its sibling verify_inclusion.py, and follows docs/export.md ("Verifying a
package"), docs/ledger.md, C2SP signed-note / tlog-checkpoint, RFC 8785 and RFC 9162. It needs
the Python standard library, the `cryptography` package (for Ed25519) and verify_inclusion.py
beside it.

    verify_export.py --public-key ledger.pub PACKAGE.jsonl

PACKAGE.jsonl is the output of `ascribe export --format jsonl`, or `-` for standard input. The
public key is the text `<name>+<8 hex>+<base64(0x01 || key)>` of `ascribe ledger public-key`
(the file `ledger.pub`), or that text itself; it must come from a trusted place, never from
the package.

The package is read line by line: memory holds one line and O(log N) hashes. Checked: the
signed tree head (trusted key, origin), the frontier of the entries before the window, each
context entry's inclusion proof and the `before`/`after` entries that bound the window, that
the entry lines are every entry of the window in order, canonical and inside the window, and
the consistency proof from the window's end to the signed head.

Prints one JSON line; exits 0 when everything verified, 1 when the package does not verify
(with the 1-based number of the first failing line), 2 when verification could not run (an
unreadable or malformed key, an unreadable package file).
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import re
import sys
import unicodedata

# The sibling verify_inclusion.py must import also when this file is loaded from elsewhere
# (python3 -m unittest tools/test_verify_export.py from the repository root).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import verify_inclusion
from verify_inclusion import (
    check_note_signature,
    node_hash,
    parse_public_key,
    root_from_inclusion_proof,
)

FORMAT = "ascribe-export/1"
MAX_SEQ = (1 << 53) - 1
MAX_ACTOR_BYTES = 256
MAX_KIND_BYTES = 64
ENTRY_MEMBERS = ("actor", "body", "kind", "seq", "time")
ROLES = ("before", "after", "rotation", "deployment", "checkpoint")
EMPTY_ROOT = hashlib.sha256(b"").digest()
TIME_PATTERN = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                          r"\.[0-9]{6}Z")
KIND_WORD = re.compile(r"[a-z][a-z0-9_]*")


class Invalid(verify_inclusion.Invalid):
    """The package does not verify; `line` is the 1-based line it failed at, when known.

    The helpers shared with verify_inclusion.py raise its Invalid, this class's base;
    PackageVerifier.feed turns those into this class, with the line.
    """

    def __init__(self, message, line=None):
        super().__init__(message)
        self.line = line


class Unusable(Exception):
    """Verification cannot run (exit 2): the key or the package cannot be read."""


# --- text forms -------------------------------------------------------------------------------


def b64decode_strict(text, what):
    if not isinstance(text, str):
        raise Invalid(f"{what} is not a base64 string")
    return verify_inclusion.b64decode_strict(text, what)


def decode_hash(text, what):
    raw = b64decode_strict(text, what)
    if len(raw) != 32:
        raise Invalid(f"{what} is not a 32-byte hash")
    return raw


def decode_hashes(value, what):
    if not isinstance(value, list):
        raise Invalid(f"{what} is not a list of hashes")
    return [decode_hash(item, f"{what}[{i}]") for i, item in enumerate(value)]


def verify_note(note, name, identifier, public_key):
    """Checks the trusted key's signature; returns (origin, size, root) of the checkpoint.

    Stricter on the text than verify_inclusion.verify_note: ASCII size digits only, and the
    root hash is checked as the package's other hashes are.
    """
    if not isinstance(note, str):
        raise Invalid("tree_head is not a string")
    try:
        text = check_note_signature(note, name, identifier, public_key)
    except UnicodeEncodeError:
        raise Invalid("the tree head text is not valid Unicode") from None
    body = text.split("\n")[:-1]
    if len(body) < 3:
        raise Invalid("tree head text is not origin, size and root hash")
    origin, size_text, root_text = body[:3]
    if origin != name:
        raise Invalid(f"tree head origin {origin!r} is not the key name {name!r}")
    if not size_text.isascii() or not size_text.isdigit() or (
        size_text != "0" and size_text.startswith("0")
    ):
        raise Invalid(f"tree size {size_text!r} is not a decimal without leading zeros")
    root = decode_hash(root_text, "tree head root hash")
    return origin, int(size_text), root


# --- RFC 9162 ---------------------------------------------------------------------------------


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def verify_consistency(old_size, new_size, old_root, new_root, proof):
    """RFC 9162 section 2.1.4.2, plus its empty-proof cases (old = 0, old = new)."""
    if old_size > new_size:
        raise Invalid(f"consistency from size {old_size} to the smaller size {new_size}")
    if old_size == new_size:
        if proof:
            raise Invalid("consistency proof between equal sizes is not empty")
        if old_root != new_root:
            raise Invalid(
                f"the root over the {old_size} entries is not the signed root "
                "(an entry or the frontier differs from what was signed)"
            )
        return
    if old_size == 0:
        if proof:
            raise Invalid("consistency proof from size 0 is not empty")
        return  # every tree extends the empty one
    if not proof:
        raise Invalid(f"consistency proof from size {old_size} to {new_size} is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Invalid("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("consistency proof is shorter than the path to the root")
    if fr != old_root:
        raise Invalid(
            f"the consistency proof does not match the root over the first {old_size} "
            "entries (an entry or the frontier differs from what was signed)"
        )
    if sr != new_root:
        raise Invalid("the consistency proof does not lead to the signed root")


class Frontier:
    """The roots of the perfect subtrees covering leaves [0, size), largest first."""

    def __init__(self, nodes, size):
        if len(nodes) != bin(size).count("1"):
            raise Invalid(
                f"frontier has {len(nodes)} hashes, first_seq {size} needs "
                f"{bin(size).count('1')} (one per set bit)"
            )
        self.nodes = list(nodes)
        self.size = size

    def push(self, leaf):
        node, n = leaf, self.size
        while n & 1:
            node = node_hash(self.nodes.pop(), node)
            n >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self):
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            r = node_hash(left, r)
        return r


# --- entries (RFC 8785) -----------------------------------------------------------------------


def _reject_constant(name):
    raise Invalid(f"{name} is not a JSON number")


def _unique_members(pairs):
    members = {}
    for name, value in pairs:
        if name in members:
            raise Invalid(f"member {name!r} appears twice")
        members[name] = value
    return members


def parse_json(text, what):
    try:
        return json.loads(text, object_pairs_hook=_unique_members, parse_constant=_reject_constant)
    except ValueError as error:
        raise Invalid(f"{what} is not JSON: {error}") from None
    except RecursionError:
        raise Invalid(f"{what} is nested too deeply") from None


def es_number(value):
    """A finite double as ECMAScript's Number::toString writes it (RFC 8785 section 3.2.2.3)."""
    if not math.isfinite(value):
        raise Invalid(f"number {value!r} has no JSON form")
    if value == 0:
        return "0"  # also -0
    if value < 0:
        return "-" + es_number(-value)
    # repr() is the shortest round-tripping decimal, as ECMAScript requires; only the layout
    # differs.
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    n = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"


def jcs(value):
    """The RFC 8785 serialisation of a parsed JSON value."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        try:
            return es_number(float(value))  # JSON numbers are IEEE doubles in RFC 8785
        except OverflowError:
            raise Invalid(f"number {value} is beyond the range of a double") from None
    if isinstance(value, str):
        # Escapes exactly ", \, and U+0000..U+001F (\b \t \n \f \r short, others \u00xx).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(jcs(item) for item in value) + "]"
    if isinstance(value, dict):
        names = sorted(value, key=lambda name: name.encode("utf-16-be", "surrogatepass"))
        return "{" + ",".join(jcs(name) + ":" + jcs(value[name]) for name in names) + "}"
    raise Invalid(f"unexpected JSON value {value!r}")


def check_time(text, what):
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ`, a real instant; returns the text (it sorts in time order)."""
    match = TIME_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise Invalid(f"{what} {text!r} is not a time of the form YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        datetime.datetime(*(int(group) for group in match.groups()))
    except ValueError as error:
        raise Invalid(f"{what} {text!r} is not a valid time: {error}") from None
    return text


def check_entry(text, seq, what):
    """Checks a canonical, valid entry that states `seq`; returns (its bytes, its time)."""
    if not isinstance(text, str):
        raise Invalid(f"{what}: `entry` is not a string")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{what}: the entry text is not valid Unicode (a lone surrogate)") from None
    value = parse_json(text, f"{what}: the entry")
    if not isinstance(value, dict):
        raise Invalid(f"{what}: the entry is not a JSON object")
    missing = [name for name in ENTRY_MEMBERS if name not in value]
    unknown = sorted(name for name in value if name not in ENTRY_MEMBERS)
    if missing or unknown:
        raise Invalid(
            f"{what}: the entry must have exactly the members seq, time, kind, actor, body "
            f"(missing {missing}, unknown {unknown})"
        )
    stated = value["seq"]
    if not isinstance(stated, int) or isinstance(stated, bool) or not 0 <= stated <= MAX_SEQ:
        raise Invalid(f"{what}: the entry's seq {stated!r} is not an integer in [0, 2^53)")
    if stated != seq:
        raise Invalid(f"{what}: the entry states seq {stated}, the line seq {seq}")
    time = check_time(value["time"], f"{what}: the entry's time")
    kind = value["kind"]
    if (
        not isinstance(kind, str)
        or len(kind.encode("utf-8")) > MAX_KIND_BYTES
        or len(kind.split(".")) < 2
        or not all(KIND_WORD.fullmatch(word) for word in kind.split("."))
    ):
        raise Invalid(f"{what}: the entry's kind {kind!r} is not dotted lowercase words")
    actor = value["actor"]
    if (
        not isinstance(actor, str)
        or not 1 <= len(actor.encode("utf-8")) <= MAX_ACTOR_BYTES
        or any(unicodedata.category(c) == "Cc" for c in actor)
    ):
        raise Invalid(f"{what}: the entry's actor {actor!r} is not 1 to 256 bytes of text")
    if not isinstance(value["body"], dict):
        raise Invalid(f"{what}: the entry's body is not a JSON object")
    if jcs(value) != text:
        raise Invalid(f"{what}: the entry is not in canonical form (RFC 8785)")
    return data, time


# --- the package ------------------------------------------------------------------------------


def member(obj, name, what):
    if name not in obj:
        raise Invalid(f"{what} has no `{name}`")
    return obj[name]


def count(obj, name, what):
    value = member(obj, name, what)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Invalid(f"{what}: `{name}` {value!r} is not a non-negative integer")
    return value


class PackageVerifier:
    """Checks a package one line at a time (docs/export.md, "Verifying a package")."""

    def __init__(self, trusted_key):
        self.name, self.identifier, self.public_key = trusted_key
        self.header = None
        self.phase = "header"  # then "context", "entries", "done"
        self.lines = 0
        self.context_lines = 0
        self.entry_lines = 0
        self.seen_roles = set()
        self.previous_time = None

    def feed(self, raw):
        self.lines += 1
        try:
            self._line(raw)
        except verify_inclusion.Invalid as error:  # this module's Invalid, or the shared one
            raise Invalid(str(error), line=self.lines) from None

    def finish(self):
        if self.lines == 0:
            raise Invalid("the package is empty: no header", line=1)
        if self.phase != "done":
            raise Invalid(
                f"no `end` line: the package was cut short after line {self.lines}",
                line=self.lines + 1,
            )
        return {
            "ok": True,
            "entries": self.entry_lines,
            "context": self.context_lines,
            "tree_size": self.size,
            "origin": self.origin,
            "from": self.window_from,
            "to": self.window_to,
            "first_seq": self.first_seq,
            "end_seq": self.end_seq,
        }

    def _line(self, raw):
        if self.phase == "done":
            raise Invalid("a line after `end`")
        if not raw.endswith(b"\n"):
            raise Invalid("the line does not end with a newline (the package was cut short)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Invalid(f"the line is not UTF-8: {error}") from None
        obj = parse_json(text, "the line")
        if not isinstance(obj, dict):
            raise Invalid("the line is not a JSON object")
        kind = obj.get("type")
        if self.phase == "header":
            if kind != "header":
                raise Invalid(f"the first line is not a header (type {kind!r})")
            self._header(obj)
            self.phase = "context"
        elif kind == "header":
            raise Invalid("a second header")
        elif kind == "context":
            if self.phase != "context":
                raise Invalid("a context line after the first entry line")
            self._context(obj)
        elif kind == "entry":
            if self.phase == "context":
                self._context_complete()
                self.phase = "entries"
            self._entry(obj)
        elif kind == "end":
            if self.phase == "context":
                self._context_complete()
            self._end(obj)
            self.phase = "done"
        else:
            raise Invalid(f"unknown line type {kind!r}")

    def _header(self, obj):
        what = "header"
        package_format = member(obj, "format", what)
        if package_format != FORMAT:
            raise Invalid(f"header format {package_format!r} is not {FORMAT!r}")
        origin = member(obj, "origin", what)
        # 1. The signed tree head, with the trusted key; the origins agree.
        note_origin, self.size, self.root = verify_note(
            member(obj, "tree_head", what), self.name, self.identifier, self.public_key
        )
        if origin != note_origin:
            raise Invalid(f"header origin {origin!r} is not the tree head's {note_origin!r}")
        self.origin = origin
        self.window_from = check_time(member(obj, "from", what), "header `from`")
        self.window_to = check_time(member(obj, "to", what), "header `to`")
        # 2. first_seq <= end_seq <= N; one frontier hash per set bit of first_seq.
        self.first_seq = count(obj, "first_seq", what)
        self.end_seq = count(obj, "end_seq", what)
        if not self.first_seq <= self.end_seq <= self.size:
            raise Invalid(
                f"header needs first_seq <= end_seq <= tree size, has {self.first_seq}, "
                f"{self.end_seq}, {self.size}"
            )
        frontier = decode_hashes(member(obj, "frontier", what), "header `frontier`")
        self.frontier = Frontier(frontier, self.first_seq)
        self.consistency = decode_hashes(
            member(obj, "consistency", what), "header `consistency`"
        )
        self.next_seq = self.first_seq

    def _context(self, obj):
        # 3. Canonical, states its seq, included in the signed tree; before/after bound the
        #    window.
        role = member(obj, "role", "context line")
        if role not in ROLES:
            raise Invalid(f"context role {role!r} is not one of {', '.join(ROLES)}")
        seq = count(obj, "seq", "context line")
        what = f"context ({role}, seq {seq})"
        data, time = check_entry(member(obj, "entry", what), seq, what)
        proof = decode_hashes(member(obj, "inclusion", what), f"{what} `inclusion`")
        if seq >= self.size:
            raise Invalid(f"{what}: seq {seq} is not in the signed tree of size {self.size}")
        if root_from_inclusion_proof(seq, self.size, leaf_hash(data), proof) != self.root:
            raise Invalid(f"{what}: the inclusion proof does not lead to the signed root")
        if self.first_seq <= seq < self.end_seq:
            raise Invalid(f"{what}: seq {seq} lies inside the window [{self.first_seq}, "
                          f"{self.end_seq}); context entries come from outside it")
        if role in ("before", "after"):
            if role in self.seen_roles:
                raise Invalid(f"a second `{role}` context line")
            self.seen_roles.add(role)
        if role == "before":
            if self.first_seq == 0:
                raise Invalid(f"{what}: no entry precedes a window that starts at seq 0")
            if seq != self.first_seq - 1:
                raise Invalid(f"{what}: seq must be first_seq - 1 = {self.first_seq - 1}")
            if not time < self.window_from:
                raise Invalid(f"{what}: time {time} is not before the window's from "
                              f"{self.window_from}")
        elif role == "after":
            if self.end_seq == self.size:
                raise Invalid(f"{what}: the window ends at the tree size {self.size}, "
                              "so no entry follows it in the signed tree")
            if seq != self.end_seq:
                raise Invalid(f"{what}: seq must be end_seq = {self.end_seq}")
            if not time >= self.window_to:
                raise Invalid(f"{what}: time {time} is before the window's to "
                              f"{self.window_to}")
        self.context_lines += 1

    def _context_complete(self):
        if self.first_seq > 0 and "before" not in self.seen_roles:
            raise Invalid(
                f"no `before` context line (required when first_seq {self.first_seq} > 0) "
                "before the first entry or end line"
            )
        if self.end_seq < self.size and "after" not in self.seen_roles:
            raise Invalid(
                f"no `after` context line (required when end_seq {self.end_seq} < tree size "
                f"{self.size}) before the first entry or end line"
            )

    def _entry(self, obj):
        # 4. Every entry of the window in order, canonical, inside the window; onto the frontier.
        seq = count(obj, "seq", "entry line")
        what = f"entry seq {seq}"
        if self.next_seq >= self.end_seq:
            raise Invalid(f"{what}: the window's entries end at end_seq {self.end_seq}; "
                          f"no more entry lines may follow")
        if seq != self.next_seq:
            raise Invalid(f"{what}: expected seq {self.next_seq} (entries must be in order, "
                          "without gaps)")
        data, time = check_entry(member(obj, "entry", what), seq, what)
        if not self.window_from <= time < self.window_to:
            raise Invalid(f"{what}: time {time} is outside the window "
                          f"[{self.window_from}, {self.window_to})")
        if self.previous_time is not None and time < self.previous_time:
            raise Invalid(f"{what}: time {time} is earlier than the previous entry's "
                          f"{self.previous_time}")
        self.previous_time = time
        self.frontier.push(leaf_hash(data))
        self.next_seq += 1
        self.entry_lines += 1

    def _end(self, obj):
        # 5. Counts; the last entry; the root over [0, end_seq) is consistent with the head.
        entries = count(obj, "entries", "end line")
        context = count(obj, "context", "end line")
        if entries != self.entry_lines or context != self.context_lines:
            raise Invalid(
                f"end counts {entries} entry and {context} context lines, the package has "
                f"{self.entry_lines} and {self.context_lines}"
            )
        if self.next_seq != self.end_seq:
            raise Invalid(
                f"the entry lines stop before seq {self.next_seq}, the window ends at "
                f"end_seq {self.end_seq}"
            )
        verify_consistency(
            self.end_seq, self.size, self.frontier.root(), self.root, self.consistency
        )


def verify_package(stream, trusted_key):
    """Reads a package from a binary stream of lines; returns the report or raises Invalid."""
    verifier = PackageVerifier(trusted_key)
    for raw in stream:
        verifier.feed(raw)
    return verifier.finish()


def load_key(argument):
    text = argument
    if os.path.exists(argument):
        try:
            with open(argument, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError) as error:
            raise Unusable(f"cannot read the public key file {argument}: {error}") from None
    elif "+" not in argument:
        raise Unusable(f"cannot read the public key file {argument}: no such file")
    try:
        return parse_public_key(text)
    except verify_inclusion.Invalid as error:
        raise Unusable(f"the public key is unusable: {error}") from None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--public-key",
        required=True,
        help="ledger.pub, or the key text <name>+<hex>+<base64>",
    )
    parser.add_argument("package", help="the JSONL evidence package (a file, or - for stdin)")
    args = parser.parse_args()
    try:
        trusted_key = load_key(args.public_key)
        if args.package == "-":
            report = verify_package(sys.stdin.buffer, trusted_key)
        else:
            try:
                file = open(args.package, "rb")
            except OSError as error:
                raise Unusable(f"cannot read the package {args.package}: {error}") from None
            with file:
                report = verify_package(file, trusted_key)
    except Invalid as error:
        print(json.dumps({"ok": False, "line": error.line, "error": str(error)}))
        return 1
    except Unusable as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return 2
    except OSError as error:
        print(json.dumps({"ok": False, "error": f"reading the package failed: {error}"}))
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
