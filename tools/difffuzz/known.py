"""Differences that are Valkey's own, not Redis 7.2's: findings they explain are counted, not reported.

Each entry is (reason, predicate(args, ferrous_raw, valkey_raw)); args are the last command's strings.
Add one only after reading Redis 7.2.4's source for the command and finding Ferrous's reply there.
"""

import re


def _exec_reply(raw):
    """EXEC's reply at the end of a WATCH step's replies."""
    return raw.rsplit(b"+QUEUED\r\n", 1)[-1].split(b"events:")[0]


def _upper(args):
    return [a.upper() for a in args]


def _neg_limit_offset(args):
    up = _upper(args)
    if "LIMIT" not in up:
        return False
    off = args[up.index("LIMIT") + 1]
    return off.lstrip("-").isdigit() and off.startswith("-") and int(off) < 0


_CG_COUNTERS = re.compile(rb"(entries-read|lag)\r\n(:-?[0-9]+|\$-1|_)\r\n")


def _without_cg_counters(raw):
    """A reply with every consumer group's entries-read and lag values blanked out."""
    return _CG_COUNTERS.sub(rb"\1\r\n?\r\n", raw)


KNOWN = [
    ("Valkey parses hex floats (0x10); Redis 7.0 and 7.2 read them with strtod and accept them",
     lambda a, f, v: any(x.lower().startswith(("0x", "-0x", "+0x")) for x in a) and b"float" in v),
    ("Valkey 8 says 'member X does not exist' for a missing FROMMEMBER; 7.2.4 geo.c says 'could not decode requested zset member'",
     lambda a, f, v: _upper(a)[0] in ("GEOSEARCH", "GEOSEARCHSTORE", "GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO")
     and b"ERR member " in v),
    ("XREAD's '+' id (last entry) is Redis 7.4 / Valkey 8; 7.2.4 refuses it",
     lambda a, f, v: _upper(a)[0] == "XREAD" and "+" in a and b"Invalid stream ID" in f),
    ("Valkey parses BITCOUNT/BITPOS arguments before looking the key up; 7.2.4 answers 0 for a missing key first",
     lambda a, f, v: _upper(a)[0] in ("BITCOUNT", "BITPOS") and b"ERR" not in f and b"ERR" in v),
    ("Valkey 8 keeps strings up to 64 bytes embstr; 7.2.4 object.c's limit is 44",
     lambda a, f, v: _upper(a)[:2] == ["OBJECT", "ENCODING"] and b"$3\r\nraw\r\n" in f and b"$6\r\nembstr\r\n" in v),
    ("Valkey 8 validates GETEX's expire time before looking the key up; 7.2.4 t_string.c answers nil for a"
     " missing key first",
     lambda a, f, v: _upper(a)[0] == "GETEX" and f.startswith((b"$-1\r\n", b"_\r\n")) and v.startswith(b"-ERR")),
    ("The same GETEX, run by a script that returns the error it caught as text",
     lambda a, f, v: "GETEX" in _upper(a) and f.startswith((b"$-1\r\n", b"_\r\n"))
     and b"E:ERR invalid expire time in 'getex'" in v),
    ("Valkey 8 does not touch a watched list that LTRIM leaves whole; 7.2.4 t_list.c ltrimCommand signals the key"
     " (signalModifiedKey) whatever it trimmed, so the EXEC fails",
     lambda a, f, v: _upper(a)[0] == "LTRIM" and _exec_reply(f).startswith((b"*-1", b"_"))
     and _exec_reply(v).startswith(b"*")),
    ("PFDEBUG DECODE of a sparse HLL whose last opcode is an XZERO cut short (a SETRANGE or APPEND into it):"
     " 7.2.4 hyperloglog.c reads the opcode's second byte past the string's end (whatever the allocation holds"
     " there); Ferrous reads it as 0, so only that last run's length differs",
     lambda a, f, v: _upper(a)[:2] == ["PFDEBUG", "DECODE"] and b"Z:" in f and b"Z:" in v
     and f.rsplit(b"Z:", 1)[0] == v.rsplit(b"Z:", 1)[0]),
    ("BITCOUNT key start (no end) is Valkey 8's; 7.2.4 bitops.c answers a syntax error",
     lambda a, f, v: _upper(a)[0] == "BITCOUNT" and len(a) == 3 and b"syntax error" in f),
    ("Valkey stores an integer set from a script as embstr; 7.2.4's SET encodes it as int (tryObjectEncoding)",
     lambda a, f, v: _upper(a)[:2] == ["OBJECT", "ENCODING"] and b"$3\r\nint\r\n" in f and b"$6\r\nembstr\r\n" in v),
    ("Valkey names an unknown subcommand called from a script; 7.2.4 script.c says 'Unknown Redis command called"
     " from script' for it",
     lambda a, f, v: (b"Unknown Redis command called from script" in f or b"Unknown command called from script" in f)
     and b"unknown subcommand" in v),
    ("A map returned through Lua comes out in the Lua table's order, which Valkey's engine changed (Ferrous"
     " gives Redis 7.0's bytes exactly, e.g. LCS IDX or XINFO STREAM under redis.setresp(3))",
     lambda a, f, v, r=None: sorted(f) == sorted(v) and r is not None and known_same(f, r)),
    ("SORT ... BY <pattern> ALPHA of a sorted set renamed or copied into a list's key: 7.2.4 sort.c reads the"
     " set's elements from its dict (in its random hash seed's order) and equal weights keep that order, so"
     " every server answers its own permutation (the generator leaves ALPHA out for other keys)",
     lambda a, f, v: _upper(a)[0] in ("SORT", "SORT_RO") and "BY" in _upper(a) and "ALPHA" in _upper(a)
     and "*" in a[_upper(a).index("BY") + 1] and sorted(f.split(b"\r\n")) == sorted(v.split(b"\r\n"))),
    ("Valkey refuses an empty string as a SORT score; 7.2.4 sort.c reads it with strtod, as 0 (Redis 7.0 agrees)",
     lambda a, f, v, r=None: _upper(a)[0] in ("SORT", "SORT_RO") and b"can't be converted into double" in v
     and r is not None and known_same(f, r)),
    ("Valkey 8 does not store a SET whose EXAT/PXAT is already past, so a WATCH on the key survives;"
     " 7.2.4 t_string.c stores it (setKey touches watched keys) and then lets it expire",
     lambda a, f, v: _upper(a)[0] == "SET" and ("EXAT" in _upper(a) or "PXAT" in _upper(a))
     and ((_exec_reply(f) in (b"_\r\n", b"*-1\r\n") and _exec_reply(v).startswith(b"*")
           and _exec_reply(v) != b"*-1\r\n")
          or f.count(b" set\n") > v.count(b" set\n"))),
    ("Valkey 8 notifies nothing when EXPIREAT/PEXPIREAT/EXPIRE deletes a key with a past time (or counts it"
     " as expired); 7.2.4 expire.c notifies 'del'",
     lambda a, f, v: _upper(a)[0] in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "GETEX")
     and b" del\n" in f and b" del\n" not in v),
    ("Valkey jumps to a negative LIMIT offset in a skiplist zset; 7.2.4 t_zset.c's generic range loops "
     "step `while (ln && offset--)` off the end, so a negative offset selects nothing",
     lambda a, f, v: _upper(a)[0] in ("ZRANGE", "ZRANGESTORE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE",
                                      "ZRANGEBYLEX", "ZREVRANGEBYLEX")
     and _neg_limit_offset(a) and f in (b"*0\r\n", b":0\r\n")),
    ("Valkey refuses a score bound with leading whitespace; 7.2.4 t_zset.c's zslParseRange reads it with "
     "strtod, which skips the whitespace",
     lambda a, f, v: v == b"-ERR min or max is not a float\r\n"
     and any(x.lstrip("(")[:1].isspace() for x in a[1:]) and not f.startswith(b"-")),
    ("Valkey 8 changed the consumer-group read counter: XREADGROUP increments entries-read only when the "
     "group's last ID is at or past the first entry, and tombstones before the first entry count; 7.2.4 "
     "t_stream.c streamReplyWithRange (1703-1712), streamRangeHasTombstones (1427) and "
     "streamEstimateDistanceFromFirstEverEntry are 7.0's (an ENTRIESREAD above entries-added gives a negative lag)",
     lambda a, f, v: _upper(a)[:2] == ["XINFO", "GROUPS"] and f != v
     and _without_cg_counters(f) == _without_cg_counters(v)),
    ("Valkey 8 no longer shares small integer values; 7.2.4 object.c tryObjectEncoding uses shared integers (refcount INT_MAX)",
     lambda a, f, v: _upper(a)[:2] == ["OBJECT", "REFCOUNT"] and f == b":2147483647\r\n" and v == b":1\r\n"),
    ("Valkey converts a listpack sorted set to a skiplist for a long member ZADD XX does not add; 7.2.4 t_zset.c"
     " zsetAdd converts only when it inserts (`else if (!xx)`), and zaddGenericCommand by element count only"
     " (Redis 7.0 agrees)",
     lambda a, f, v, r=None: _upper(a)[:2] == ["OBJECT", "ENCODING"] and f == b"$8\r\nlistpack\r\n"
     and v == b"$8\r\nskiplist\r\n" and r == f),
    ("Valkey refuses an unknown SCAN TYPE; 7.2.4 db.c scanGenericCommand leaves that error commented out"
     " ('TODO: uncomment in redis 8.0') and matches no key",
     lambda a, f, v: _upper(a)[0] == "SCAN" and "TYPE" in _upper(a) and b"unknown type name" in v
     and not f.startswith(b"-")),
    ("Valkey's ZADD XX made the sorted set a skiplist (see above), whose ZSCAN shows scores as 7.2.4's ld2string"
     " %.17Lg text; 7.2.4 keeps the listpack, whose ZSCAN shows the score text the listpack holds (d2string's"
     " shortest form)",
     lambda a, f, v: _upper(a)[0] == "ZSCAN" and f != v and _scores_as_doubles(f) == _scores_as_doubles(v)),
    ("Valkey says 'Command arguments must be strings or integers' for a bad redis.call argument; 7.2.4"
     " script_lua.c says 'Lua redis lib command arguments must be strings or integers'",
     lambda a, f, v: b"Lua redis lib command arguments must be strings or integers" in f
     and f.replace(b"Lua redis lib command", b"Command") != f and b"Command arguments must be strings" in v),
    ("Valkey's SORT ... STORE builds its list with list-max-listpack-size's node size; 7.2.4 sort.c uses"
     " createQuicklistObject() (quicklistCreate: fill -2, kept for later pushes), so a DUMP of it has fewer"
     " quicklist nodes (Redis 7.0 agrees)",
     lambda a, f, v, r=None: r is not None and f == r and f != v
     and _quicklist_nodes(v) > _quicklist_nodes(f) > 0),
]


def _quicklist_nodes(raw):
    """The node count of a quicklist DUMP body in a bulk reply (RDB type 18, count < 64), or 0."""
    body = raw.split(b"\r\n", 1)[-1]
    return body[1] if len(body) > 2 and body[0] == 0x12 and body[1] < 64 else 0


_BULK = re.compile(rb"\$([0-9]+)\r\n([^\r]*)\r\n")


def _scores_as_doubles(raw):
    """A reply with every bulk string that reads as a number replaced by that number's shortest text."""
    def one(m):
        try:
            return b"$?\r\n" + repr(float(m.group(2))).encode() + b"\r\n"
        except ValueError:
            return m.group(0)
    return _BULK.sub(one, raw)


_SCRIPT_SHA = re.compile(rb"script: [0-9a-f]{40}, on @user_script")


def normalize(raw):
    """Valkey leaves the script's sha out of the `script: <sha>, on @user_script:N.` suffix that 7.2
    appends to errors raised by redis.call, and says "command" where 7.2 says "Redis command" (e.g.
    "Wrong number of args calling Redis command from script"); replies are compared without both."""
    if raw.startswith(b"$") and b"Redis command" in raw:
        body = raw[raw.index(b"\r\n") + 2:-2].replace(b"Redis command", b"command")
        return b"$%d\r\n%s\r\n" % (len(body), body)
    return _SCRIPT_SHA.sub(b"script: on @user_script", raw).replace(b"Redis command", b"command")


def known_same(a, b):
    return normalize(a) == normalize(b)


def explain(args, ferrous_raw, valkey_raw, redis70_raw=None):
    """The reason a difference from Valkey is Valkey's own, or None. Predicates that take a fourth
    argument also see Redis 7.0's reply (None when Redis 7.0 is not running)."""
    if args[0].upper() == "EVAL" and len(args) > 3:
        args = args[3:]
    forms = [(ferrous_raw, valkey_raw, redis70_raw)]
    # The command's own reply, without MULTI/EXEC's framing or the notifications after it.
    core = [_core(x) if x is not None else None for x in forms[0]]
    if core != list(forms[0]):
        forms.append(tuple(core))
    for reason, pred in KNOWN:
        for f, v, r in forms:
            try:
                if pred.__code__.co_argcount == 4:
                    if pred(args, f, v, r):
                        return reason
                elif pred(args, f, v):
                    return reason
            except (IndexError, AttributeError):
                pass
    return None


def _core(raw):
    """A wrapped command's own reply: EXEC's single element, without the notifications after it."""
    raw = raw.split(b"events:")[0]
    if b"+QUEUED\r\n*1\r\n" in raw:
        raw = raw.rsplit(b"+QUEUED\r\n*1\r\n", 1)[1]
    return raw
