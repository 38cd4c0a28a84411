"""Differences that are Valkey's own, not Redis 7.2's: findings they explain are counted, not reported.

Each entry is (reason, predicate(args, ferrous_raw, valkey_raw)); args are the last command's strings.
Add one only after reading Redis 7.2.4's source for the command and finding Ferrous's reply there.
"""


def _upper(args):
    return [a.upper() for a in args]


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
    ("Valkey refuses SORT weights strtod accepts ('', ' 1', '0x10'); 7.2.4 sort.c takes strtod's value "
     "when it consumed the whole C string (an empty string is 0)",
     lambda a, f, v: _upper(a)[0] in ("SORT", "SORT_RO") and "ALPHA" not in _upper(a)
     and f[:1] in (b"*", b":") and v.startswith(b"-ERR One or more scores can't be converted into double")),
]


def explain(args, ferrous_raw, valkey_raw):
    for reason, pred in KNOWN:
        try:
            if pred(args, ferrous_raw, valkey_raw):
                return reason
        except (IndexError, AttributeError):
            pass
    return None
