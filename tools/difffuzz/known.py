"""Differences that are Valkey's own, not Redis 7.2's: findings they explain are counted, not reported.

Each entry is (reason, predicate(args, ferrous_raw, valkey_raw)); args are the last command's strings.
Add one only after reading Redis 7.2.4's source for the command and finding Ferrous's reply there.
"""

import re


def _upper(args):
    return [a.upper() for a in args]


_CG_COUNTERS = re.compile(rb"(entries-read|lag)\r\n(:-?[0-9]+|\$-1|_)\r\n")


def _without_cg_counters(raw):
    """A reply with every consumer group's entries-read and lag values blanked out."""
    return _CG_COUNTERS.sub(rb"\1\r\n?\r\n", raw)


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
    ("Valkey 8 changed the consumer-group read counter: XREADGROUP increments entries-read only when the "
     "group's last ID is at or past the first entry, and tombstones before the first entry count; 7.2.4 "
     "t_stream.c streamReplyWithRange (1703-1712), streamRangeHasTombstones (1427) and "
     "streamEstimateDistanceFromFirstEverEntry are 7.0's (an ENTRIESREAD above entries-added gives a negative lag)",
     lambda a, f, v: _upper(a)[:2] == ["XINFO", "GROUPS"] and f != v
     and _without_cg_counters(f) == _without_cg_counters(v)),
]


def explain(args, ferrous_raw, valkey_raw):
    for reason, pred in KNOWN:
        try:
            if pred(args, ferrous_raw, valkey_raw):
                return reason
        except (IndexError, AttributeError):
            pass
    return None
