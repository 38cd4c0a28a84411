#!/usr/bin/env python3
"""Compare a running server's COMMAND DOCS and COMMAND INFO with Redis 7.2.4's, byte for byte.

The expectation is rendered from 7.2.4's command JSON files (expect72.py). Every command and
subcommand a non-Sentinel 7.2.4 server has is asked for on its own (`COMMAND DOCS name`,
`COMMAND INFO name`), in RESP2 and RESP3; a container's subcommands are expected in name order
(Ferrous's; Redis's is its dict's). Commands the server has beyond 7.2.4 are listed, unchecked.

With --oracle70 the renderer itself is checked instead: against a real Redis 7.0.15 on --port,
with 7.0.15's JSON (--src /tmp/redis-src-7.0), rendering without display_text (the one rendering
difference between the two versions), the expectation's subcommands put in the oracle's order.

Usage: compare72.py --port PORT [--src /tmp/redis-src-7.2] [--oracle70] [--show N]
Exit status 0 when everything matched.
"""
import argparse, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expect72 as E
from resp import Conn, Map


def follow(want, got, resp3):
    """`want` with its subcommands put in the order of the parsed reply `got` (for a Redis
    oracle, whose order is its dict's). Works on a DOCS entry map or an INFO entry array."""
    if isinstance(want, Map):
        if resp3:
            order = [k for k, _ in got.get("subcommands") or []]
            sub = dict(got.get("subcommands") or [])
        else:
            flat = dict(zip(got[::2], got[1::2])).get("subcommands") or []
            order, sub = flat[::2], dict(zip(flat[::2], flat[1::2]))
        out = Map()
        for k, v in want:
            if k == "subcommands":
                w = dict(v)
                v = Map((n, follow(w[n], sub[n], resp3)) for n in order if n in w)
            out.append((k, v))
        return out
    if not want[9]:
        return want
    order = [s[0] for s in got[9]]
    w = {s[0]: s for s in want[9]}
    return want[:9] + [[follow(w[n], g, resp3) for n, g in zip(order, got[9]) if n in w]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--src", default="/tmp/redis-src-7.2")
    ap.add_argument("--oracle70", action="store_true")
    ap.add_argument("--show", type=int, default=5, help="mismatches to print per kind")
    a = ap.parse_args()
    cmds = E.load(a.src)
    names = sorted(n for n, j in cmds.items() if E.exists(j))
    display = not a.oracle70
    failed = 0
    for proto in (2, 3):
        c = Conn(a.port)
        c.cmd("HELLO", str(proto))
        resp3 = proto == 3
        have = set(c.cmd("COMMAND", "LIST"))
        for kind in ("DOCS", "INFO"):
            ok, bad, missing = 0, [], []
            for n in names:
                if n.split("|")[0] not in have:
                    missing.append(n); continue
                if kind == "DOCS":
                    want = Map([(n, E.docs_reply(cmds, n, display))])
                else:
                    want = [E.info_reply(cmds, n)]
                got, parsed = c.raw("COMMAND", kind, n)
                if a.oracle70 and kind == "DOCS":
                    entry = parsed[0][1] if resp3 else parsed[1]
                    want = Map([(n, follow(want[0][1], entry, resp3))])
                elif a.oracle70:
                    want = [follow(want[0], parsed[0], resp3)]
                if got == E.encode(want, resp3):
                    ok += 1
                else:
                    bad.append((n, got, E.encode(want, resp3)))
            print(f"RESP{proto} COMMAND {kind}: {ok}/{len(names)} byte-identical, "
                  f"{len(bad)} differ, {len(missing)} not implemented")
            if missing:
                print("  not implemented:", " ".join(missing))
            for n, got, want in bad[:a.show]:
                print(f"  {n}:\n    got  {got[:600]!r}\n    want {want[:600]!r}")
            if len(bad) > a.show:
                print("  also differ:", " ".join(n for n, _, _ in bad[a.show:]))
            failed += len(bad)
        extra = sorted(n for n in have if n not in cmds)
        if proto == 3 and extra:
            print("beyond 7.2.4 (not checked):", " ".join(extra))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
