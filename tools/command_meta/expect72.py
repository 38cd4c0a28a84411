"""Redis 7.2.4's COMMAND DOCS and COMMAND INFO entries, rendered from its command JSON files.

Redis 7.2.4 builds its command table from src/commands/*.json (utils/generate-command-code.py
writes commands.def) and renders it in server.c (addReplyCommandDocs, addReplyCommandArgList,
addReplyCommandInfo) and acl.c (addReplyCommandCategories). This module reads the same JSON as
data and reproduces those rules, giving reply trees typed as resp.py's client reads them (Map,
Set, Simple), so a tree can be stored in commands.json or encoded and compared byte for byte.

The rules, as 7.2.4 applies them:
- optional strings (summary, since, complexity, replaced_by, deprecated_since, an argument's
  token/summary/since/deprecated_since) are absent when missing or empty; tokens upper-cased;
- COMMAND DOCS: summary, since, group (always; sorted_set is "sorted-set", a subcommand takes its
  container's group), complexity, doc_flags (a set: deprecated, syscmd), deprecated_since,
  replaced_by, history (a set of [since, changes]; absent when empty), arguments (absent when
  none), subcommands;
- an argument: name (lower-cased), type, display_text (unless oneof/block: its `display`
  lower-cased, else its name), key_spec_index, token, summary, since, deprecated_since, flags (a
  set: optional, multiple, multiple_token), arguments (oneof/block only);
- COMMAND INFO: the flags 7.2.4 shows (MAY_REPLICATE, SENTINEL, ONLY_SENTINEL, PROTECTED and
  TOUCHES_ARBITRARY_KEYS hidden; movablekeys computed from the key specs as
  populateCommandLegacyRangeSpec does), the legacy key range, the ACL categories with the implicit
  ones (setImplicitACLCategories) in acl.c's order, tips lower-cased, key specs;
- commands flagged ONLY_SENTINEL do not exist outside Sentinel.
Containers' subcommands are given in name order (Redis's order is its dict's, which varies).
"""
import glob, json, os
from resp import Map, Set, Simple

GROUP_STR = {"sorted_set": "sorted-set"}
FLAG_ORDER = ["write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking",
              "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth",
              "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys", "allow_busy"]
ACL_ORDER = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
             "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
             "dangerous", "connection", "transaction", "scripting"]
KEY_FLAG_ORDER = ["RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key",
                  "incomplete", "variable_flags"]


def load(src):
    """7.2.4's commands by full name (`get`, `client|list`), the JSON entries as they are."""
    out = {}
    for f in sorted(glob.glob(os.path.join(src, "src/commands/*.json"))):
        with open(f) as fh:
            for name, v in json.load(fh).items():
                c = v.get("container")
                out[(c.lower() + "|" + name.lower()) if c else name.lower()] = v
    return out


def exists(j):
    """Whether the command is in a non-Sentinel server's table."""
    return "ONLY_SENTINEL" not in j.get("command_flags", [])


def _c(v):
    """A JSON string as the C literal the table generator writes it in ("%s", unescaped) reads:
    quotes inside end and restart adjacent literals, so MIGRATE's token `""` is empty."""
    assert v.count('"') % 2 == 0 and "\\" not in v, v
    return v.replace('"', "")


def _opt(d, k):
    """An optional string field: None when missing or empty (the generator's NULL)."""
    v = d.get(k)
    return _c(v) if v else None


def _arg(a, display_text=True):
    m = Map()
    m.append(("name", a["name"].lower()))
    m.append(("type", a["type"]))
    nested = a["type"] in ("oneof", "block")
    if not nested and display_text:
        m.append(("display_text", a["display"].lower() if "display" in a else a["name"].lower()))
    if a.get("key_spec_index") is not None:
        m.append(("key_spec_index", a["key_spec_index"]))
    if _opt(a, "token") is not None:
        m.append(("token", _opt(a, "token").upper()))
    for k in ("summary", "since", "deprecated_since"):
        if _opt(a, k) is not None:
            m.append((k, _opt(a, k)))
    flags = [f for f in ("optional", "multiple", "multiple_token") if a.get(f)]
    if flags:
        m.append(("flags", Set(Simple(f) for f in flags)))
    if nested:
        m.append(("arguments", [_arg(s, display_text) for s in a["arguments"]]))
    return m


def docs(cmds, name, display_text=True):
    """COMMAND DOCS' map for `name`, without `subcommands` (`display_text` false: as Redis 7.0
    renders it, which is how the renderer is checked against a real 7.0.15 server)."""
    j = cmds[name]
    group = j["group"]
    if "|" in name:
        group = cmds[name.split("|")[0]]["group"]
    m = Map()
    for k in ("summary", "since"):
        if _opt(j, k) is not None:
            m.append((k, _opt(j, k)))
    m.append(("group", GROUP_STR.get(group, group)))
    if _opt(j, "complexity") is not None:
        m.append(("complexity", _opt(j, "complexity")))
    doc_flags = [f for f in ("deprecated", "syscmd") if f.upper() in j.get("doc_flags", [])]
    if doc_flags:
        m.append(("doc_flags", Set(Simple(f) for f in doc_flags)))
    for k in ("deprecated_since", "replaced_by"):
        if _opt(j, k) is not None:
            m.append((k, _opt(j, k)))
    if j.get("history"):
        m.append(("history", Set([h[0], h[1]] for h in j["history"])))
    if j.get("arguments"):
        m.append(("arguments", [_arg(a, display_text) for a in j["arguments"]]))
    return m


def subcommands(cmds, name):
    """The existing subcommands of container `name`, in name order."""
    return sorted(n for n, j in cmds.items() if n.startswith(name + "|") and exists(j))


def docs_reply(cmds, name, display_text=True):
    """COMMAND DOCS' whole entry for `name` (a container's with its subcommands)."""
    m = docs(cmds, name, display_text)
    subs = subcommands(cmds, name)
    if subs:
        m.append(("subcommands", Map((s, docs_reply(cmds, s, display_text)) for s in subs)))
    return m


def _key_spec(k):
    m = Map()
    if _opt(k, "notes") is not None:
        m.append(("notes", k["notes"]))
    m.append(("flags", Set(Simple(f) for f in KEY_FLAG_ORDER if f.upper() in
                           [x.upper() for x in k.get("flags", [])])))
    bs = k["begin_search"]
    if bs.get("index"):
        b = Map([("type", "index"), ("spec", Map([("index", bs["index"]["pos"])]))])
    elif bs.get("keyword"):
        kw = bs["keyword"]
        b = Map([("type", "keyword"),
                 ("spec", Map([("keyword", kw["keyword"]), ("startfrom", kw["startfrom"])]))])
    else:
        b = Map([("type", "unknown"), ("spec", Map())])
    fk = k["find_keys"]
    if fk.get("range"):
        r = fk["range"]
        f = Map([("type", "range"), ("spec", Map([("lastkey", r["lastkey"]), ("keystep", r["step"]),
                                                  ("limit", r["limit"])]))])
    elif fk.get("keynum"):
        r = fk["keynum"]
        f = Map([("type", "keynum"), ("spec", Map([("keynumidx", r["keynumidx"]),
                                                   ("firstkey", r["firstkey"]), ("keystep", r["step"])]))])
    else:
        f = Map([("type", "unknown"), ("spec", Map())])
    m.append(("begin_search", b))
    m.append(("find_keys", f))
    return m


def _is_index_range(k):
    return bool(k["begin_search"].get("index")) and bool(k["find_keys"].get("range"))


def legacy_range(j):
    """(first, last, step, movablekeys) as populateCommandLegacyRangeSpec derives them."""
    specs = j.get("key_specs", [])
    if not specs:
        return 0, 0, 0, False
    incomplete = lambda k: "INCOMPLETE" in [f.upper() for f in k.get("flags", [])]
    if len(specs) == 1 and _is_index_range(specs[0]):
        k = specs[0]; first = k["begin_search"]["index"]["pos"]; r = k["find_keys"]["range"]
        last = r["lastkey"] + first if r["lastkey"] >= 0 else r["lastkey"]
        return first, last, r["step"], incomplete(k)
    movable = False
    first, last, prev = None, 0, 0
    u = lambda x: x & 0xFFFFFFFF
    for k in specs:
        if not _is_index_range(k):
            movable = True; continue
        pos = k["begin_search"]["index"]["pos"]; r = k["find_keys"]["range"]
        if r["step"] != 1 or (prev and prev != pos - 1):
            movable = True; continue
        if incomplete(k):
            movable = True
        first = pos if first is None else min(first, pos)
        abs_last = r["lastkey"] + pos if r["lastkey"] >= 0 else r["lastkey"]
        last = abs_last if u(abs_last) > u(last) else last
        prev = last
    if first is None:
        return 0, 0, 0, True
    rel = last if last < 0 else last - first
    return first, (rel + first if rel >= 0 else rel), 1, movable


def acl(j):
    flags = j.get("command_flags", [])
    cats = {c.lower() for c in j.get("acl_categories", [])}
    if "WRITE" in flags:
        cats.add("write")
    if "READONLY" in flags and "scripting" not in cats:
        cats.add("read")
    if "ADMIN" in flags:
        cats |= {"admin", "dangerous"}
    if "PUBSUB" in flags:
        cats.add("pubsub")
    if "FAST" in flags:
        cats.add("fast")
    if "BLOCKING" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    return [c for c in ACL_ORDER if c in cats]


def info_reply(cmds, name):
    """COMMAND INFO's entry for `name`."""
    j = cmds[name]
    first, last, step, movable = legacy_range(j)
    flags = {f.lower() for f in j.get("command_flags", [])}
    if movable:
        flags.add("movablekeys")
    return [
        name, j["arity"], Set(Simple(f) for f in FLAG_ORDER if f in flags), first, last, step,
        Set(Simple("@" + c) for c in acl(j)), Set(t.lower() for t in j.get("command_tips", [])),
        Set(_key_spec(k) for k in j.get("key_specs", [])),
        # A command without subcommands has an empty set there (addReplyCommandSubCommands).
        [info_reply(cmds, s) for s in subcommands(cmds, name)] or Set(),
    ]


def encode(v, resp3):
    """A reply tree as the bytes a server writes (`resp3` false: RESP2's flattening)."""
    if isinstance(v, Map):
        head = b"%%%d\r\n" % len(v) if resp3 else b"*%d\r\n" % (2 * len(v))
        return head + b"".join(encode(k, resp3) + encode(x, resp3) for k, x in v)
    if isinstance(v, Set):
        return (b"~%d\r\n" if resp3 else b"*%d\r\n") % len(v) + b"".join(encode(x, resp3) for x in v)
    if isinstance(v, list):
        return b"*%d\r\n" % len(v) + b"".join(encode(x, resp3) for x in v)
    if isinstance(v, Simple):
        return b"+" + str(v).encode() + b"\r\n"
    if isinstance(v, bool) or v is None:
        raise ValueError(v)
    if isinstance(v, int):
        return b":%d\r\n" % v
    b = v.encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)
