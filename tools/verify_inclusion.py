#!/usr/bin/env python3
"""Check an Ascribe inclusion proof against a signed tree head, trusting only the public key.

An independent verifier: it shares no code with Ascribe and follows docs/ledger.md, which in
turn follows C2SP signed-note / tlog-checkpoint and RFC 9162. It needs the Python standard
library and the `cryptography` package (for Ed25519).

    verify_inclusion.py --public-key ledger.pub PROOF.json [--receipt TOKEN]

PROOF.json is the `inclusion_proof` object of `ascribe audit inference ID --json`
(`index`, `tree_size`, `leaf_hash`, `proof`, `tree_head`), or that whole answer, or `-` for
standard input. The public key is the text `<name>+<8 hex>+<base64(0x01 || key)>` of
`ascribe ledger public-key` (the file `ledger.pub`), or that text itself.

With --receipt, the receipt handed out with the answer (`Ascribe-Receipt`) is checked too:
its signature under the same key, its origin, and that its `seq` and `leaf_hash` are the
ones proved included.

Prints one JSON line; exits 0 when everything verified, 1 otherwise.
"""

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_PREFIX = "\u2014 "
ED25519_ALGORITHM = b"\x01"
MAX_SIGNATURE_LINES = 16
RECEIPT_CONTEXT = b"ascribe-receipt/v1\n"


class Invalid(Exception):
    """The input does not verify."""


def b64decode_strict(text, what):
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise Invalid(f"{what} is not standard base64: {error}") from None


def b64url_decode(text, what):
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise Invalid(f"{what} is not base64url: {error}") from None


def key_id(name, public_key):
    """First 4 bytes of SHA-256(name || 0x0A || 0x01 || key)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_ALGORITHM + public_key)
    return digest.digest()[:4]


def parse_public_key(text):
    """`<name>+<8 hex>+<base64(0x01 || 32-byte key)>` -> (name, key id, Ed25519 key)."""
    text = text.strip()
    parts = text.split("+", 2)  # names hold no "+"; base64 may
    if len(parts) != 3:
        raise Invalid("public key is not <name>+<hex id>+<base64 key>")
    name, hex_id, encoded = parts
    if not name or any(c in name for c in " \t\n+") or not name.isprintable():
        raise Invalid(f"public key name {name!r} is not a valid note key name")
    if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
        raise Invalid(f"public key id {hex_id!r} is not 8 lowercase hex digits")
    raw = b64decode_strict(encoded, "public key")
    if len(raw) != 33 or raw[:1] != ED25519_ALGORITHM:
        raise Invalid("public key is not 0x01 followed by a 32-byte Ed25519 key")
    identifier = key_id(name, raw[1:])
    if identifier.hex() != hex_id:
        raise Invalid(
            f"public key id {hex_id} does not match its name and key ({identifier.hex()})"
        )
    return name, identifier, Ed25519PublicKey.from_public_bytes(raw[1:])


def parse_note(note):
    """Splits a signed note into its text and signature lines (C2SP signed-note)."""
    if not note.endswith("\n"):
        raise Invalid("signed note does not end with a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise Invalid("signed note has no empty line before its signatures")
    text = note[: cut + 1]
    lines = note[cut + 2 :].split("\n")[:-1]
    if not lines:
        raise Invalid("signed note has no signature line")
    if len(lines) > MAX_SIGNATURE_LINES:
        raise Invalid(f"signed note has more than {MAX_SIGNATURE_LINES} signature lines")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise Invalid(f"malformed signature line {line!r}")
        fields = line[len(SIGNATURE_PREFIX) :].split(" ")
        if len(fields) != 2 or not fields[0]:
            raise Invalid(f"malformed signature line {line!r}")
        raw = b64decode_strict(fields[1], "signature")
        if len(raw) < 5:
            raise Invalid(f"signature of {fields[0]!r} is too short")
        signatures.append((fields[0], raw[:4], raw[4:]))
    return text, signatures


def check_note_signature(note, name, identifier, public_key):
    """Checks the trusted key's signature on a signed note; returns the note's text."""
    text, signatures = parse_note(note)
    signed = False
    for signer, signer_id, signature in signatures:
        if signer != name or signer_id != identifier:
            continue  # another key's signature: ignored, as C2SP requires
        try:
            public_key.verify(signature, text.encode("utf-8"))
        except InvalidSignature:
            raise Invalid(f"the signature by {name} on the tree head does not verify") from None
        signed = True
    if not signed:
        raise Invalid(f"the tree head carries no signature by the trusted key {name}")
    return text


def verify_note(note, name, identifier, public_key):
    """Checks the trusted key's signature; returns (origin, size, root) of the checkpoint."""
    text = check_note_signature(note, name, identifier, public_key)
    body = text.split("\n")[:-1]
    if len(body) < 3:
        raise Invalid("tree head text is not origin, size and root hash")
    origin, size_text, root_text = body[:3]
    if origin != name:
        raise Invalid(f"tree head origin {origin!r} is not the key name {name!r}")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise Invalid(f"tree size {size_text!r} is not a decimal without leading zeros")
    root = b64decode_strict(root_text, "root hash")
    if len(root) != 32:
        raise Invalid("root hash is not 32 bytes")
    return origin, int(size_text), root


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(index, size, leaf, proof):
    """RFC 9162 section 2.1.3.2: the root the audit path leads to, or Invalid."""
    if index >= size:
        raise Invalid(f"index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Invalid("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("inclusion proof is shorter than the path to the root")
    return r


def verify_receipt(token, name, public_key):
    """Checks a receipt's signature and origin; returns its payload."""
    parts = token.strip().split(".")
    if len(parts) != 2:
        raise Invalid("receipt is not <payload>.<signature>")
    payload = b64url_decode(parts[0], "receipt payload")
    signature = b64url_decode(parts[1], "receipt signature")
    try:
        public_key.verify(signature, RECEIPT_CONTEXT + payload)
    except InvalidSignature:
        raise Invalid("the receipt's signature does not verify under the trusted key") from None
    try:
        claims = json.loads(payload)
    except ValueError as error:
        raise Invalid(f"receipt payload is not JSON: {error}") from None
    if claims.get("v") != 1:
        raise Invalid(f"receipt version {claims.get('v')!r} is not 1")
    if claims.get("origin") != name:
        raise Invalid(f"receipt origin {claims.get('origin')!r} is not the key name {name!r}")
    return claims


def load_proof(path):
    if path == "-":
        text = sys.stdin.read()
    else:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    document = json.loads(text)
    if isinstance(document, dict) and "inclusion_proof" in document:
        document = document["inclusion_proof"]
    if not isinstance(document, dict) or "tree_head" not in document:
        raise Invalid("no inclusion proof with a tree head in the input (is it still pending?)")
    return document


def verify(args):
    key_text = args.public_key
    if os.path.exists(key_text):
        with open(key_text, encoding="utf-8") as file:
            key_text = file.read()
    name, identifier, public_key = parse_public_key(key_text)
    proof = load_proof(args.proof)
    origin, size, root = verify_note(proof["tree_head"], name, identifier, public_key)
    index = proof["index"]
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise Invalid(f"index {index!r} is not a non-negative integer")
    if proof.get("tree_size", size) != size:
        raise Invalid(f"proof is for size {proof['tree_size']}, the signed head for {size}")
    leaf = b64decode_strict(proof["leaf_hash"], "leaf hash")
    path = [b64decode_strict(p, "proof hash") for p in proof["proof"]]
    if len(leaf) != 32 or any(len(p) != 32 for p in path):
        raise Invalid("a hash is not 32 bytes")
    computed = root_from_inclusion_proof(index, size, leaf, path)
    if computed != root:
        raise Invalid("the inclusion proof does not lead to the signed root")
    report = {
        "ok": True,
        "origin": origin,
        "tree_size": size,
        "root": root.hex(),
        "index": index,
        "leaf_hash": leaf.hex(),
    }
    if args.receipt is not None:
        claims = verify_receipt(args.receipt, name, public_key)
        if claims.get("seq") != index or claims.get("leaf_hash") != leaf.hex():
            raise Invalid(
                f"receipt names seq {claims.get('seq')} leaf {claims.get('leaf_hash')}, "
                f"the proof seq {index} leaf {leaf.hex()}"
            )
        report["receipt"] = {
            "inference_id": claims.get("inference_id"),
            "checkpoint": claims.get("checkpoint"),
        }
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--public-key",
        required=True,
        help="ledger.pub, or the key text <name>+<hex>+<base64>",
    )
    parser.add_argument("proof", help="the inclusion proof JSON (a file, or - for stdin)")
    parser.add_argument("--receipt", help="also check this receipt token against the proof")
    args = parser.parse_args()
    try:
        report = verify(args)
    except Invalid as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return 1
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(json.dumps({"ok": False, "error": f"{type(error).__name__}: {error}"}))
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
