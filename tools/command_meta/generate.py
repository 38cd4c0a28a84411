#!/usr/bin/env python3
"""Generate src/commands/meta/commands.json: every command's metadata (arity, flags, ACL
categories, tips, key specs, docs) as the oracles report it through COMMAND INFO and COMMAND DOCS.

The base is Redis 7.0.15 (Debian's redis-server). Ferrous reports 7.2.4, so the fields Redis 7.2
changed are taken from Valkey 9.1 (a fork of 7.2.4) when Valkey's value is still 7.2's; commands
that 7.0.15 lacks (7.2's CLIENT NO-TOUCH/SETINFO, CLUSTER MYSHARDID, WAITAOF; 7.4/8's hash-field expiry) come from
Valkey too. With --check-72 PATH (a Redis 7.2.4 source tree) every field taken from Valkey is
checked against 7.2.4's command JSON files, and a Valkey value that is not 7.2's is dropped
(7.0.15's stays) and reported.

With --docs-72 PATH (a Redis 7.2.4 source tree) every 7.2.4 command's COMMAND DOCS map is
instead rendered from 7.2.4's command JSON files as 7.2.4's server renders them (expect72.py:
7.2's summaries, histories, doc flags, complexities, and every argument's display_text); the
commands beyond 7.2.4 (the hash-field expiry family) keep Valkey's docs. compare72.py checks a
running server's COMMAND DOCS and INFO against that rendering byte for byte.

Usage: generate.py --valkey PATH/valkey-server [--check-72 /tmp/redis-src-7.2]
                   [--docs-72 /tmp/redis-src-7.2] [--out FILE]
"""
import argparse, glob, json, os, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expect72
from resp import Conn, Map, Set, Simple

# Fields of COMMAND INFO / DOCS that Redis 7.2.0-7.2.4 changed, per command (from comparing the
# two versions' command tables). Summaries are not listed. With --docs-72 only the COMMAND INFO
# fields here are used (the docs are all 7.2.4's).
CHANGED_72 = {
    "acl|deluser": ["tips"], "acl|save": ["tips"], "acl|setuser": ["tips"],
    "client|setname": ["tips"], "config|resetstat": ["tips"], "config|rewrite": ["tips"],
    "latency|reset": ["tips"], "msetnx": ["tips"], "randomkey": ["tips"], "scan": ["tips"],
    "blmove": ["flags"], "blpop": ["flags"], "brpop": ["flags"], "brpoplpush": ["flags"],
    "bzpopmax": ["flags"], "bzpopmin": ["flags"], "wait": ["flags", "acl"],
    "cluster|shards": ["flags"], "cluster|slots": ["flags"],
    "command|getkeys": ["arity", "arguments"], "command|getkeysandflags": ["arity", "arguments"],
    "zrank": ["arity", "history", "arguments"], "zrevrank": ["arity", "history", "arguments"],
    "xinfo|consumers": ["history", "arguments"], "xinfo|stream": ["history", "arguments"],
    "acl|log": ["history"], "setex": ["doc_flags", "deprecated_since", "replaced_by"],
    "setnx": ["doc_flags", "deprecated_since", "replaced_by"],
    "psetex": ["doc_flags", "deprecated_since", "replaced_by"],
    "quit": ["doc_flags", "deprecated_since", "replaced_by"],
    "client|pause": ["since"], "cluster|getkeysinslot": ["complexity"],
    "cluster|replicas": ["complexity"], "cluster|slaves": ["complexity"],
    "geodist": ["complexity"], "geohash": ["complexity"], "geopos": ["complexity"],
    "hscan": ["complexity"], "sscan": ["complexity"], "zscan": ["complexity"],
    "zrandmember": ["complexity"], "xread": ["complexity"], "psubscribe": ["complexity"],
    "punsubscribe": ["complexity"], "sunsubscribe": ["complexity"], "unsubscribe": ["complexity"],
}
# Commands 7.0.15 does not have, taken whole from Valkey.
FROM_VALKEY = [
    "client|no-touch", "client|setinfo", "waitaof", "cluster|myshardid",
    "hexpire", "hpexpire", "hexpireat", "hpexpireat", "httl", "hpttl", "hexpiretime",
    "hpexpiretime", "hpersist", "hgetex", "hsetex", "hgetdel",
]
INFO_FIELDS = ["arity", "flags", "acl", "tips", "key_specs"]
# Flags COMMAND INFO hides on purpose but the server acts on (Redis 7.0's command table).
HIDDEN_FLAGS = {
    "eval": ["may_replicate"], "evalsha": ["may_replicate"], "fcall": ["may_replicate"],
    "pfcount": ["may_replicate"], "publish": ["may_replicate"], "spublish": ["may_replicate"],
    "debug": ["protected"], "module|load": ["protected"], "module|loadex": ["protected"],
    "module|unload": ["protected"], "scan": ["touches_arbitrary_keys"],
    "randomkey": ["touches_arbitrary_keys"],
}


def start(binary, port, extra=()):
    d = tempfile.mkdtemp()
    p = subprocess.Popen([binary, "--port", str(port), "--save", "", "--dir", d, *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            c = Conn(port); c.cmd("HELLO", "3"); return p, c
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{binary} did not start")


def tree(v):
    """A reply as JSON keeping its RESP3 types: maps {"%": [[k, v]...]}, sets {"~": [...]},
    simple strings {"+": s}; bulk strings, integers, arrays and nulls as themselves."""
    if isinstance(v, Map):
        return {"%": [[tree(k), tree(x)] for k, x in v]}
    if isinstance(v, Set):
        return {"~": [tree(x) for x in v]}
    if isinstance(v, list):
        return [tree(x) for x in v]
    if isinstance(v, Simple):
        return {"+": str(v)}
    return v


def key_spec(m):
    out = {}
    if m.get("notes") is not None:
        out["notes"] = m.get("notes")
    out["flags"] = [str(f) for f in m.get("flags")]
    bs = m.get("begin_search"); spec = bs.get("spec")
    out["begin_search"] = {"type": bs.get("type"), **{k: v for k, v in spec}}
    fk = m.get("find_keys"); spec = fk.get("spec")
    out["find_keys"] = {"type": fk.get("type"), **{k: v for k, v in spec}}
    return out


def info_entry(e):
    return {
        "name": e[0], "arity": e[1], "flags": [str(f) for f in e[2]],
        "legacy_range": [e[3], e[4], e[5]], "acl": [str(c) for c in e[6]],
        "tips": [str(t) for t in e[7]], "key_specs": [key_spec(k) for k in e[8]],
        "subcommands": {s[0]: info_entry(s) for s in e[9]},
    }


def docs_entry(d):
    out = Map(); subs = {}
    for k, v in d:
        if k == "subcommands":
            subs = {n: docs_entry(x) for n, x in v}
        else:
            out.append((k, v))
    return {"docs": out, "subdocs": subs}


def grab(conn):
    info = {e[0]: info_entry(e) for e in conn.cmd("COMMAND", "INFO")}
    docs = {n: docs_entry(d) for n, d in conn.cmd("COMMAND", "DOCS")}
    flat = {}
    for n, e in info.items():
        subs = e.pop("subcommands")
        d = docs[n]
        flat[n] = {**e, "docs": d["docs"], "container": bool(subs)}
        for sn, se in subs.items():
            se.pop("subcommands")
            flat[sn] = {**se, "docs": d["subdocs"][sn]["docs"], "container": False}
    return flat


def arg_shape(args):
    """Arguments reduced to what must agree between COMMAND DOCS and a command JSON file."""
    out = []
    for a in args or []:
        if isinstance(a, Map):
            a = {k: v for k, v in a}
            flags = sorted(str(f) for f in a.get("flags") or [])
            out.append((a.get("name"), a.get("type"), a.get("token"), tuple(flags),
                        a.get("since"), tuple(arg_shape(a.get("arguments")))))
        else:
            flags = sorted(k for k in ("optional", "multiple", "multiple_token") if a.get(k))
            out.append((a.get("name"), a.get("type"), a.get("token"), tuple(flags),
                        a.get("since"), tuple(arg_shape(a.get("arguments")))))
    return out


def load_72(path):
    out = {}
    for f in glob.glob(path + "/src/commands/*.json"):
        for name, v in json.load(open(f)).items():
            c = v.get("container")
            out[(c.lower() + "|" + name.lower()) if c else name.lower()] = v
    return out


def agrees_with_72(src, name, field, value):
    """Whether Valkey's `value` of `field` is Redis 7.2.4's (None when unknown)."""
    if src is None or name not in src:
        return None
    j = src[name]
    if field == "arity":
        return j.get("arity") == value
    if field == "flags":
        return sorted(value_72(src, name, "flags")) == sorted(
            f for f in value if f != "movablekeys")
    if field == "tips":
        return sorted(t.lower() for t in j.get("command_tips", [])) == sorted(t.lower() for t in value)
    if field == "acl":
        return sorted(set(value)) == value_72(src, name, "acl")
    if field == "arguments":
        return arg_shape(j.get("arguments")) == arg_shape(value)
    if field == "history":
        return [list(h) for h in j.get("history") or []] == [list(h) for h in value or []]
    if field == "doc_flags":
        return sorted(f.lower() for f in j.get("doc_flags") or []) == sorted(str(f) for f in value or [])
    return j.get(field) == value


def value_72(src, name, field):
    """Redis 7.2.4's COMMAND INFO `flags` or `acl` for `name`, built from its command JSON as
    redis-server builds it (setImplicitACLCategories); None for other fields."""
    j = src[name]
    # COMMAND INFO hides SENTINEL and ONLY_SENTINEL (addReplyCommandFlags).
    flags = [f.lower() for f in j.get("command_flags", []) if f not in ("SENTINEL", "ONLY_SENTINEL")]
    if field == "flags":
        return flags
    if field == "acl":
        acl = ["@" + c.lower() for c in j.get("acl_categories", [])]
        implicit = {"write": "@write", "readonly": "@read", "admin": "@admin", "pubsub": "@pubsub",
                    "fast": "@fast", "blocking": "@blocking"}
        acl += [c for f, c in implicit.items() if f in flags]
        if "admin" in flags:
            acl.append("@dangerous")
        if "fast" not in flags:
            acl.append("@slow")
        return sorted(set(acl))
    return None


def docs_get(docs, k):
    return docs.get(k)


def docs_set(docs, k, v, order):
    for i, (a, _) in enumerate(docs):
        if a == k:
            if v is None:
                del docs[i]
            else:
                docs[i] = (k, v)
            return
    if v is None:
        return
    # Insert in Redis's field order.
    pos = len(docs)
    for i, (a, _) in enumerate(docs):
        if a in order and order.index(a) > order.index(k):
            pos = i
            break
    docs.insert(pos, (k, v))


def without_display_text(args):
    """Arguments as Redis 7.0 renders them: 7.2's display_text removed, at every depth."""
    out = []
    for a in args or []:
        m = Map((k, without_display_text(v) if k == "arguments" else v)
                for k, v in a if k != "display_text")
        out.append(m)
    return out


def changed_docs_fields(old, new):
    """The fields of two COMMAND DOCS maps that differ (present in one only, or another value;
    arguments compared as 7.0 renders them), in 7.2's field order."""
    o, n = dict(old), dict(new)
    if "arguments" in n:
        n["arguments"] = without_display_text(n["arguments"])
    return [k for k in DOC_ORDER if tree(o.get(k)) != tree(n.get(k))]


DOC_ORDER = ["summary", "since", "group", "complexity", "module", "doc_flags", "deprecated_since",
             "replaced_by", "history", "arguments"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--valkey", required=True)
    ap.add_argument("--check-72")
    ap.add_argument("--docs-72")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../src/commands/meta/commands.json"))
    ap.add_argument("--port", type=int, default=25901)
    a = ap.parse_args()
    rp, rc = start(a.redis, a.port)
    vp, vc = start(a.valkey, a.port + 1)
    try:
        ver = rc.cmd("INFO", "server")
        assert "redis_version:7.0.15" in ver, "the base must be Redis 7.0.15"
        redis, valkey = grab(rc), grab(vc)
    finally:
        rp.terminate(); vp.terminate()
    src72 = load_72(a.check_72) if a.check_72 else None
    report = []
    out = dict(redis)
    for name, fields in CHANGED_72.items():
        if name not in out or name not in valkey:
            continue
        for f in fields:
            if a.docs_72 and f not in INFO_FIELDS:
                continue
            if f in INFO_FIELDS:
                v = valkey[name][f]
            else:
                v = docs_get(valkey[name]["docs"], f)
            ok = agrees_with_72(src72, name, f, v)
            if ok is False and f in ("flags", "acl"):
                out[name][f] = value_72(src72, name, f)
                report.append(f"{name} {f}: 7.2 (Valkey's is not 7.2.4's; built from 7.2.4's JSON)")
                continue
            if ok is False:
                report.append(f"{name} {f}: Valkey's value is not 7.2.4's; 7.0.15's kept")
                continue
            if f in INFO_FIELDS:
                out[name][f] = v
            else:
                docs_set(out[name]["docs"], f, v, DOC_ORDER)
            report.append(f"{name} {f}: 7.2 (from Valkey{', checked' if ok else ''})")
    for name in FROM_VALKEY:
        if name in valkey:
            out[name] = valkey[name]
            report.append(f"{name}: whole entry from Valkey 9.1")
            for f in ("flags", "acl"):
                if agrees_with_72(src72, name, f, out[name][f]) is False:
                    out[name][f] = value_72(src72, name, f)
                    report.append(f"{name} {f}: 7.2 (Valkey's is not 7.2.4's; built from 7.2.4's JSON)")
    docs_changed = {}
    if a.docs_72:
        src = expect72.load(a.docs_72)
        n = 0
        for name in out:
            if name in src and expect72.exists(src[name]):
                new = expect72.docs(src, name)
                if name in redis:
                    docs_changed[name] = changed_docs_fields(redis[name]["docs"], new)
                out[name]["docs"] = new
                n += 1
        report.append(f"docs: {n} commands' COMMAND DOCS rendered from 7.2.4's JSON; "
                      f"{len(out) - n} (beyond 7.2.4) keep Valkey's")
    for name, flags in HIDDEN_FLAGS.items():
        if name in out:
            out[name]["hidden_flags"] = flags
    commands = []
    for name in sorted(out):
        e = dict(out[name]); e["docs"] = tree(e["docs"])
        commands.append(e)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        # One command per line, so a regeneration's diff shows which commands changed.
        base = ("Redis 7.0.15 COMMAND INFO; 7.2 fields from Valkey 9.1 (see report); COMMAND DOCS "
                "rendered from Redis 7.2.4's command JSON" if a.docs_72 else
                "Redis 7.0.15 COMMAND INFO/DOCS; 7.2 fields from Valkey 9.1 (see report)")
        head = {"generated_by": "tools/command_meta/generate.py", "base": base,
                "report": report}
        if a.docs_72:
            # Per command, the COMMAND DOCS fields whose 7.2.4 value is not 7.0.15's (arguments
            # compared without display_text), for tests that compare the rest with Redis 7.0.15.
            head["docs_changed_72"] = {n: f for n, f in sorted(docs_changed.items()) if f}
        f.write(json.dumps(head, separators=(",", ":"))[:-1] + ',"commands":[\n')
        f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in commands))
        f.write("\n]}\n")
    print("\n".join(report))
    print(f"{len(commands)} commands and subcommands written to {a.out}")


if __name__ == "__main__":
    main()
