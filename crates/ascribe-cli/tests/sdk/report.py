"""What both SDK scripts share: the gateway's address, the caller key, and the report.

Each call prints one JSON line on stdout; the Rust test reads them and checks the ledger.
"""

import json
import os
import sys

GATEWAY = os.environ["ASCRIBE_SDK_GATEWAY"]
KEY = os.environ["ASCRIBE_SDK_KEY"]

ASCRIBE_HEADERS = ("ascribe-inference-id", "ascribe-checkpoint", "ascribe-receipt")


def ascribe_headers(headers):
    """The gateway's own headers of an answer, by lowercase name."""
    return {name: headers.get(name) for name in ASCRIBE_HEADERS if headers.get(name)}


def report(call, requested, returned=None, decision=None, headers=None, error=None):
    """Prints one call's line: what was asked, what the SDK handed back, the headers."""
    headers = headers or {}
    line = {
        "call": call,
        "requested_model": requested,
        "returned_model": returned,
        "decision": decision,
        "inference_id": headers.get("ascribe-inference-id"),
        "headers": headers,
        "error": error,
    }
    print(json.dumps(line), flush=True)


def check(condition, message):
    """An assertion that survives `python -O` and names what was wrong."""
    if not condition:
        print(f"assertion failed: {message}", file=sys.stderr, flush=True)
        sys.exit(1)
