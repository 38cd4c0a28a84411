"""Differences that are Valkey's own, not Redis 7.2's: findings they explain are counted, not reported.

Each entry is (reason, predicate(args, ferrous_raw, valkey_raw)); args are the last command's strings.
Add one only after reading Redis 7.2.4's source for the command and finding Ferrous's reply there.
"""


def _upper(args):
    return [a.upper() for a in args]


def _neg_limit_offset(args):
    up = _upper(args)
    if "LIMIT" not in up:
        return False
    off = args[up.index("LIMIT") + 1]
    return off.lstrip("-").isdigit() and off.startswith("-") and int(off) < 0


KNOWN = [
    ("Valkey parses hex floats (0x10); Redis 7.0 and 7.2 read them with strtod and accept them",
     lambda a, f, v: any(x.lower().startswith(("0x", "-0x", "+0x")) for x in a) and b"float" in v),
    ("Valkey 8 says 'member X does not exist' for a missing FROMMEMBER; 7.2.4 geo.c says 'could not decode requested zset member'",
     lambda a, f, v: _upper(a)[0] in ("GEOSEARCH", "GEOSEARCHSTORE", "GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO")
     and v.startswith(b"-ERR member ")),
    ("XREAD's '+' id (last entry) is Redis 7.4 / Valkey 8; 7.2.4 refuses it",
     lambda a, f, v: _upper(a)[0] == "XREAD" and "+" in a and b"Invalid stream ID" in f),
    ("Valkey parses BITCOUNT/BITPOS arguments before looking the key up; 7.2.4 answers 0 for a missing key first",
     lambda a, f, v: _upper(a)[0] in ("BITCOUNT", "BITPOS") and f in (b":0\r\n", b":-1\r\n") and v.startswith(b"-ERR")),
    ("Valkey 8 keeps strings up to 64 bytes embstr; 7.2.4 object.c's limit is 44",
     lambda a, f, v: _upper(a)[:2] == ["OBJECT", "ENCODING"] and f == b"$3\r\nraw\r\n" and v == b"$6\r\nembstr\r\n"),
    ("Valkey jumps to a negative LIMIT offset in a skiplist zset; 7.2.4 t_zset.c's generic range loops "
     "step `while (ln && offset--)` off the end, so a negative offset selects nothing",
     lambda a, f, v: _upper(a)[0] in ("ZRANGE", "ZRANGESTORE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE",
                                      "ZRANGEBYLEX", "ZREVRANGEBYLEX")
     and _neg_limit_offset(a) and f in (b"*0\r\n", b":0\r\n")),
    ("Valkey refuses a score bound with leading whitespace; 7.2.4 t_zset.c's zslParseRange reads it with "
     "strtod, which skips the whitespace",
     lambda a, f, v: v == b"-ERR min or max is not a float\r\n"
     and any(x.lstrip("(")[:1].isspace() for x in a[1:]) and not f.startswith(b"-")),
]


def explain(args, ferrous_raw, valkey_raw):
    for reason, pred in KNOWN:
        try:
            if pred(args, ferrous_raw, valkey_raw):
                return reason
        except (IndexError, AttributeError):
            pass
    return None
