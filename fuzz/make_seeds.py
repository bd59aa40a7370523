#!/usr/bin/env python3
"""Regenerates the seed corpora in fuzz/corpus/ from the repository's example
policies and conformance vectors. Run from anywhere: python3 fuzz/make_seeds.py

Seeds are small on purpose; libFuzzer grows its own working corpus (the smoke
script keeps that outside this folder).
"""
import base64
import glob
import hashlib
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def vectors():
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "vectors", "*.json"))):
        with open(path) as f:
            yield os.path.basename(path)[:-5], json.load(f)


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# policy_json: the example policies, plus the first policy of each vector.
for path in sorted(glob.glob(os.path.join(ROOT, "examples", "policies", "*.json"))):
    with open(path, "rb") as f:
        put("policy_json", os.path.basename(path), f.read())
for name, v in vectors():
    for step in v["steps"]:
        if "load_policy" in step:
            put("policy_json", f"vector_{name}.json", json.dumps(step["load_policy"], indent=1))
            break

# condition: every condition in the examples and vectors, plus grammar corners.
conditions = set()
for path in glob.glob(os.path.join(ROOT, "examples", "policies", "*.json")):
    with open(path) as f:
        for c in json.load(f).get("constraints", []):
            conditions.add(c["condition"])
for _, v in vectors():
    for step in v["steps"]:
        for c in step.get("load_policy", {}).get("constraints", []):
            conditions.add(c["condition"])
conditions |= {
    "'pii' in data_classes",
    "tool in ['web_search', 'read_file'] and not risk_level > 3",
    "context.purpose == \"support\" or not context.user_approved",
    "actor != 'model' and (time.weekday < 5 or time.minute >= 30)",
    "'a' not in context.tags",
    "context.n <= -2.5 or context.missing == null",
    "user_intent == 'x\\'y' and proposed_action > \"A\\n\"",
    "[1, [2, 'x'], true] == [1, [2, 'x'], True]",
    "not not (False or None != null)",
}
for i, c in enumerate(sorted(conditions)):
    put("condition", f"seed_{i:02}", c)

# decision_request: the vectors' requests (first few of each).
n = 0
for name, v in vectors():
    reqs = []
    for step in v["steps"]:
        if "decide" in step:
            reqs.append(step["decide"])
        reqs.extend(step.get("decide_batch", []))
    for i, r in enumerate(reqs[:3]):
        put("decision_request", f"{name}_{i}.json", json.dumps(r, indent=1))
put(
    "decision_request",
    "full.json",
    json.dumps(
        {
            "request_id": "req_1",
            "actor": "actor:model",
            "proposed_action": "Execute web_search",
            "tool": "web_search",
            "user_intent": "Research",
            "risk_level": 3,
            "data_classes": ["pii", "data:financial"],
            "context": {"user_approved": True, "purpose": "support", "n": 1.5, "deep": [[{"a": None}]]},
            "policy_mode": "strict",
            "token_ttl": 600,
        }
    ),
)

# capability_token: mode byte 0 + compact tokens; mode byte 1 + claims bytes.
tokens = []
for _, v in vectors():
    def walk(x):
        if isinstance(x, str) and x.startswith("lxc2."):
            tokens.append(x)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)
        elif isinstance(x, list):
            for y in x:
                walk(y)
    walk(v["expected"])
for i, t in enumerate(sorted(set(tokens))[:4]):
    put("capability_token", f"token_{i}", b"\x00" + t.encode())
    put("capability_token", f"claims_{i}", b"\x01" + b64url_decode(t.split(".")[1]))

# ledger_entry: mode byte 0 + a stored ledger (one entry a line);
# mode byte 1 + the body of entry 0 (the target hashes it).
for name, v in vectors():
    ledger = v["expected"]["ledger"]
    if name in ("business_hours", "policy_lifecycle"):
        put("ledger_entry", f"chain_{name}", b"\x00" + "\n".join(ledger[:3]).encode())
    if name in ("business_hours", "rate_limit"):
        first = ledger[0].encode()
        put("ledger_entry", f"body_{name}", b"\x01" + first[81:])
# A small body by hand, and check the hashing rule on it.
body = (
    b'"index":0,"kind":"decision","payload":{"i":0},"prev_hash":"'
    + hashlib.sha256(b"lexecon-ledger-genesis-v1").hexdigest().encode()
    + b'","timestamp":"2026-11-24T13:08:01.123Z"}'
)
put("ledger_entry", "body_small", b"\x01" + body)

# ledger_chain: structured (arbitrary) input; any bytes decode, so give a few.
for i, seed in enumerate([b"\x00" * 64, bytes(range(256)), b"\x03ab\x01xyz\x02" * 20]):
    put("ledger_chain", f"seed_{i}", seed)
