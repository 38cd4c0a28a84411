"""Scenarios with several connections per server, for the `blocking`, `pubsub` and `tracking` families.

A scenario is one step of a round (mode "clients" or "pubsub"): a list of operations on the main
connection and on extra connections named c1, c2, c3, opened for the scenario on every server and
closed after it. Everything each connection receives is written, in order, into one transcript per
server; the transcripts are compared byte for byte.

`clients` (blocking commands): ("main", args) runs a command on the main connection;
("block", i, args) sends a blocking command on ci and waits until the server shows ci blocked
(CLIENT LIST ID ... flags=b, polled on a control connection) or ci has a reply; ("wait", i, args)
sends a command on ci and reads its reply (a non-blocking command, or a tiny timeout that no write
can race with); ("finish", how) unblocks, in order, every connection whose blocking command has not
been read yet (CLIENT UNBLOCK <id> [how] on main: 0 when the client was served meanwhile) and reads
its reply, so a client that lost an element or was served in the wrong order shows.
The argument `$id:cN` stands for ci's CLIENT ID on each server, as in tests/diff case files.

`pubsub`: ("main", args) and ("sub", i, args) run a command on main or on ci; after each
operation every open ci is synchronized: `PING <marker>` is sent and every frame up to its reply
is recorded (the replies to ci's own command, the messages published meanwhile, push frames).
"""

import select
import time

from resp import order_free

NAMES = ["c1", "c2", "c3"]
SYNC = "difffuzz-sync"
# How long a connection may take to block or answer before the step counts as a hang.
BLOCK_WAIT = 5.0
# Commands whose reply lists a hash table's content, with the form they are compared in (see
# resp.order_free): their order is each server's hash order (a small hash or set is one only
# under --vary-config's thresholds).
ORDER_FREE = {("PUBSUB", "CHANNELS"): "unordered", ("PUBSUB", "SHARDCHANNELS"): "unordered",
              ("HGETALL",): "pairs", ("HKEYS",): "unordered", ("HVALS",): "unordered",
              ("SMEMBERS",): "unordered"}


class Scenario:
    """A step's operations; `trace` keeps what the last run saw on the oracle (for rendering)."""

    def __init__(self, kind, ops):
        self.kind = kind
        self.ops = ops
        self.trace = {}

    def without(self, i):
        return Scenario(self.kind, self.ops[:i] + self.ops[i + 1:])

    def __repr__(self):
        return "Scenario(%r, %r)" % (self.kind, self.ops)


MODES = ("clients", "pubsub", "tracking")


def readable(conn):
    if conn.pos < len(conn.buf):
        return True
    r, _, _ = select.select([conn.sock], [], [], 0)
    return bool(r)


def show_reply(raw, tree=None, args=None):
    """A reply as recorded in a transcript; `args`: the command it answers (a push is not)."""
    if args and tree and tree[0] != b">":
        names = tuple(a.upper() for a in args[:2])
        mode = ORDER_FREE.get(names[:1]) or ORDER_FREE.get(names)
        form = order_free(mode, tree) if mode else None
        raw = form if form is not None else raw
    return raw.replace(b"\r\n", b"\\r\\n")


class Runner:
    """One scenario on one server."""

    def __init__(self, session, main, index):
        self.session = session
        self.main = main
        self.index = index
        self.port = main.server.port
        self.conns = {}
        self.ids = {}
        self.pending = []  # blocker names whose reply is still to be read
        self.out = []
        self.ctl = None

    def open(self, name):
        from resp import Conn
        if name not in self.conns:
            c = Conn(self.port, BLOCK_WAIT)
            if self.session.resp == 3:
                c.call(["HELLO", "3"])
            self.ids[name] = c.call(["CLIENT", "ID"])[1][1].decode()
            self.conns[name] = c
        return self.conns[name]

    def control(self):
        from resp import Conn
        if self.ctl is None:
            self.ctl = Conn(self.port, BLOCK_WAIT)
        return self.ctl

    def subst(self, args):
        return [self.ids.get(a[4:], "0") if a.startswith("$id:") else a for a in args]

    def record(self, who, args, raw, tree=None):
        self.out.append(b"%s %s -> %s\n" % (who.encode(), " ".join(args).encode(), show_reply(raw, tree, args)))

    def close(self):
        for c in list(self.conns.values()) + ([self.ctl] if self.ctl else []):
            c.close()

    def blocked(self, name):
        raw, _ = self.control().call(["CLIENT", "LIST", "ID", self.ids[name]])
        for field in raw.split():
            if field.startswith(b"flags="):
                return b"b" in field[6:]
        return False

    def blocked_count(self):
        raw, _ = self.control().call(["INFO", "clients"])
        for line in raw.split(b"\r\n"):
            if line.startswith(b"blocked_clients:"):
                return int(line.split(b":")[1])
        return -1

    # --- clients ---------------------------------------------------------------------------
    def run_clients(self, sc):
        trace = []
        for op in sc.ops:
            kind = op[0]
            if kind == "main":
                args = self.subst(op[1])
                raw, tree = self.main.call(args)
                self.record("main", op[1], raw, tree)
                trace.append(None)
            elif kind == "wait":
                name = NAMES[op[1]]
                c = self.open(name)
                raw, tree = c.call(op[2])
                self.record(name, op[2], raw, tree)
                trace.append(None)
            elif kind == "block":
                name = NAMES[op[1]]
                c = self.open(name)
                if name in self.pending:
                    raise ValueError("%s already has a blocking command pending" % name)
                c.send(op[2])
                deadline = time.time() + BLOCK_WAIT
                while True:
                    if readable(c):
                        raw, tree = c.read()
                        self.record(name, op[2], raw, tree)
                        trace.append("replied")
                        break
                    if self.blocked(name):
                        self.out.append(b"%s %s -> blocked\n" % (name.encode(), " ".join(op[2]).encode()))
                        self.pending.append(name)
                        trace.append(self.blocked_count())
                        break
                    if time.time() > deadline:
                        raise ValueError("%s neither blocked nor answered" % name)
                    time.sleep(0.001)
            elif kind == "finish":
                pending = list(self.pending)
                trace.append(pending)
                for name in pending:
                    args = ["CLIENT", "UNBLOCK", self.ids[name]] + ([op[1]] if op[1] else [])
                    raw, tree = self.main.call(args)
                    self.record("main", ["CLIENT", "UNBLOCK", "$id:" + name] + args[3:], raw, tree)
                    raw, tree = self.conns[name].read()
                    self.record(name, ["(reply)"], raw, tree)
                self.pending = []
            else:
                raise ValueError("unknown op %r" % (op,))
        return trace

    # --- pubsub ----------------------------------------------------------------------------
    def sync(self, n):
        for name in NAMES:
            c = self.conns.get(name)
            if c is None:
                continue
            marker = "%s-%d" % (SYNC, n)
            c.send(["PING", marker])
            frames = []
            while True:
                raw, tree = c.read()
                if marker.encode() in raw:
                    break
                frames.append((raw, tree))
            for raw in unsubscribe_order(pattern_order(frames)):
                self.out.append(b"%s <- %s\n" % (name.encode(), show_reply(raw)))
            self.out.append(b"%s sync -> %s\n" % (name.encode(), show_reply(raw.replace(marker.encode(), b"M"))))

    def run_pubsub(self, sc):
        for n, op in enumerate(sc.ops):
            if op[0] == "main":
                raw, tree = self.main.call(op[1])
                self.record("main", op[1], raw, tree)
            else:
                name = NAMES[op[1]]
                self.open(name).send(op[2])
                self.out.append(b"%s %s\n" % (name.encode(), " ".join(op[2]).encode()))
            self.sync(n)
        return []


def pattern_order(frames):
    """The frames' bytes, with each run of pmessages of one message (several of a client's
    patterns matched its channel) sorted: Redis delivers them in its pattern dict's order, which
    depends on a hash seed drawn at start-up."""
    out = []
    run, run_key = [], None
    for raw, tree in frames:
        items = tree[1] if isinstance(tree[1], list) else []
        key = None
        if len(items) == 4 and items[0][1] == b"pmessage":
            key = (items[2][1], items[3][1])
        if key is None or key != run_key:
            out += sorted(run)
            run = []
        run_key = key
        if key is None:
            out.append(raw)
        else:
            run.append(raw)
    return out + sorted(run)


UNSUBSCRIBES = (b"unsubscribe", b"punsubscribe", b"sunsubscribe")


def unsubscribe_order(raws):
    """Each run of (P|S)UNSUBSCRIBE confirmations with its channel names sorted (the counts stay in
    place): an UNSUBSCRIBE without arguments goes through the client's channel dict, in an order
    that depends on a hash seed drawn at start-up."""
    out, run = [], []

    def flush():
        names = sorted(frame[1] for frame in run)
        out.extend(frame[0] + name + frame[2] for frame, name in zip(run, names))
        run.clear()

    for raw in raws:
        parts = raw.split(b"\r\n")
        # >3 / *3, $len, kind, $len, name, :count, ''
        if len(parts) == 7 and parts[2] in UNSUBSCRIBES and parts[3].startswith(b"$"):
            if run and run[0][0].split(b"\r\n")[2] != parts[2]:
                flush()
            head = b"\r\n".join(parts[:3]) + b"\r\n"
            run.append((head, parts[3] + b"\r\n" + parts[4], b"\r\n" + b"\r\n".join(parts[5:])))
        else:
            flush()
            out.append(raw)
    flush()
    return out


def run_scenario(session, conn, index, sc):
    """The transcript of `sc` on `conn`'s server, as (raw, tree)."""
    r = (TrackRunner if sc.kind == "tracking" else Runner)(session, conn, index)
    try:
        if sc.kind == "tracking":
            trace = r.run_tracking(sc)
        else:
            trace = r.run_clients(sc) if sc.kind == "clients" else r.run_pubsub(sc)
    except (OSError, ValueError) as e:
        last = r.out[-1].decode("latin-1").strip() if r.out else "(nothing)"
        raise ValueError("%s, after %d transcript lines, the last: %s" % (e, len(r.out), last[:200]))
    finally:
        r.close()
    if index == 1:
        sc.trace = trace
    raw = b"".join(r.out)
    return raw, (b"$", raw)


def shrink_ops(differs, session, seq):
    """Drops operations of the scenarios of `seq` while the last step still differs."""
    seq = list(seq)
    for at in range(len(seq)):
        mode, sc = seq[at]
        if mode not in MODES:
            continue
        i = 0
        while i < len(sc.ops):
            if sc.ops[i][0] == "finish":
                i += 1
                continue
            cand = sc.without(i)
            try_seq = seq[:at] + [(mode, cand)] + seq[at + 1:]
            try:
                ok = differs(session, try_seq)
            except (ValueError, OSError):
                ok = False
            if ok:
                seq, sc = try_seq, cand
            else:
                i += 1
    return seq


def render(sc, render_args):
    """A scenario in the tests/diff case-file syntax (`!blocked N` waits for N blocked clients)."""
    if sc.kind == "tracking":
        return render_tracking(sc, render_args)
    lines = []
    conn = "main"
    trace = sc.trace if len(sc.trace) == len(sc.ops) else [None] * len(sc.ops)

    def use(name):
        nonlocal conn
        if name != conn:
            lines.append("@conn " + name)
            conn = name

    for op, seen in zip(sc.ops, trace):
        if op[0] == "main":
            use("main")
            lines.append(render_args(op[1]))
        elif op[0] in ("wait", "sub"):
            use(NAMES[op[1]])
            lines.append(render_args(op[2]) if op[0] == "wait" else "?noreply " + render_args(op[2]))
            if op[0] == "sub":
                lines.append("!read    # (as many as it answers)")
        elif op[0] == "block":
            use(NAMES[op[1]])
            if seen == "replied":
                lines.append(render_args(op[2]))
            else:
                lines.append("?noreply " + render_args(op[2]))
                lines.append("!blocked %s" % (seen if isinstance(seen, int) else "?"))
        elif op[0] == "finish":
            for name in seen or []:
                use("main")
                lines.append(render_args(["CLIENT", "UNBLOCK", "$id:" + name] + ([op[1]] if op[1] else [])))
                use(name)
                lines.append("!read")
    if conn != "main":
        lines.append("@conn main")
    return lines


def group(sc):
    """The commands a finding is filed under: the blocking ones (or subscriber commands) first."""
    names = []
    for op in sc.ops:
        args = op[2] if op[0] in ("block", "wait", "sub", "cmd") else op[1] if op[0] == "main" else None
        if args and op[0] != "main":
            if isinstance(args[0], list):
                args = args[0]
            n = " ".join(a.upper() for a in args[:2]) if args[0].upper() == "CLIENT" else args[0].upper()
            if n not in names:
                names.append(n)
    return "%s(%s)" % (sc.kind.upper(), ",".join(names[:4]))


def first_difference(a, b):
    """The first transcript line that differs, and the same line of the other server."""
    la, lb = a.split(b"\n"), b.split(b"\n")
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else b"<end>"
        y = lb[i] if i < len(lb) else b"<end>"
        if x != y:
            return i, x, y
    return None


# Differences in scenarios that are Valkey's own, not Redis 7.2.4's: (reason, predicate(scenario,
# ferrous_transcript, valkey_transcript)). known.py's entries are about single commands' replies.
KNOWN = []


def explain(sc, ferrous_raw, valkey_raw, redis70_raw=None):
    for reason, pred in KNOWN:
        if pred(sc, ferrous_raw, valkey_raw):
            return reason
    return None


def show_diff(names, raws):
    """Report lines for a scenario: the first line where a server's transcript differs from the
    oracle's (the second server's), with the oracle's line."""
    lines = []
    for name, raw in zip(names, raws):
        if name == names[1]:
            continue
        d = first_difference(raw, raws[1])
        if d is None:
            lines.append("      %-8s same as %s" % (name, names[1]))
            continue
        i, mine, theirs = d
        lines.append("      %-8s line %d: %s" % (name, i + 1, mine.decode("latin-1")[:400]))
        oracle = "      %-8s line %d: %s" % (names[1], i + 1, theirs.decode("latin-1")[:400])
        if oracle not in lines:
            lines.append(oracle)
    return lines


# --- tracking (client-side caching) -------------------------------------------------------------
# A `tracking` scenario: c1..c3 each speak the protocol `protos` gives (RESP3: invalidations are
# pushes on the connection itself; RESP2: they go, redirected, to a connection subscribed to
# __redis__:invalidate). Operations: ("main", args) on the main connection (never tracking);
# ("cmd", i, args) sent on ci; ("sleep", ms, args) sleeps, then runs args on main; ("close", i) closes ci and
# waits until the server has let it go. After each operation every open ci is synchronized with a
# `PING <marker>` and every frame up to its reply is recorded, as in `pubsub`. Redis 7.2 sends the
# invalidations of one key in the order its keys were modified (BCAST: one array per prefix,
# prefixes and keys in rax, i.e. byte, order), so frames are compared exactly, except when the
# scenario sets tracking-table-max-keys: the keys evicted are drawn at random (raxRandomWalk), so
# there an invalidation is compared by its number of keys only.

class TrackScenario(Scenario):
    def __init__(self, ops, protos):
        Scenario.__init__(self, "tracking", ops)
        self.protos = protos

    def without(self, i):
        return TrackScenario(self.ops[:i] + self.ops[i + 1:], self.protos)

    def evicts(self):
        return any(op[0] == "main" and not isinstance(op[1][0], list) and op[1][:3] == ["CONFIG", "SET", "tracking-table-max-keys"] and op[1][3] != "0"
                   for op in self.ops)


INFO_TRACKING = (b"tracking_clients:", b"tracking_total_keys:", b"tracking_total_items:", b"tracking_total_prefixes:")


def is_push(tree):
    """Whether a frame is an out-of-band message rather than a command's reply: a RESP3 push, or
    on a RESP2 connection subscribed to __redis__:invalidate, a published message."""
    t, items = tree
    if t == b">":
        return True
    return t == b"*" and isinstance(items, list) and len(items) == 3 and items[0][1] == b"message"


# Commands whose replies are pushes (RESP3), as many as channels, known only to the server for an
# UNSUBSCRIBE without arguments: after these the PING follows at once, as before.
SUBSCRIBING = {"SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE", "RESET"}


def invalidation_count(tree):
    """An invalidation frame with its keys replaced by their number (None: not an invalidation)."""
    t, items = tree
    if not isinstance(items, list) or len(items) not in (2, 3):
        return None
    if items[0][1] == b"invalidate" and len(items) == 2:
        head = b"push invalidate"
    elif items[0][1] == b"message" and len(items) == 3 and items[1][1] == b"__redis__:invalidate":
        head = b"message __redis__:invalidate"
    else:
        return None
    keys = items[-1][1]
    return head + (b" <null>" if keys is None else b" <%d keys>" % len(keys))


class TrackRunner(Runner):
    def open_as(self, name, proto):
        from resp import Conn
        c = Conn(self.port, BLOCK_WAIT)
        if proto == 3:
            c.call(["HELLO", "3"])
        self.ids[name] = c.call(["CLIENT", "ID"])[1][1].decode()
        self.conns[name] = c
        self.out.append(b"%s resp%d\n" % (name.encode(), proto))

    def settle(self, cond):
        deadline = time.time() + BLOCK_WAIT
        while not cond():
            if time.time() > deadline:
                raise ValueError("the server did not let closed connections go")
            time.sleep(0.002)

    def connected(self):
        raw, _ = self.main.call(["INFO", "clients"])
        for line in raw.split(b"\r\n"):
            if line.startswith(b"connected_clients:"):
                return int(line.split(b":")[1])
        return -1

    def sync_tracking(self, n, evicts):
        for name in NAMES:
            c = self.conns.get(name)
            if c is None:
                continue
            marker = "%s-%d" % (SYNC, n)
            raw = self.read_to_marker(name, c, marker, evicts)
            self.out.append(b"%s sync -> %s\n" % (name.encode(), show_reply(raw.replace(marker.encode(), b"M"))))

    def read_to_marker(self, name, c, marker, evicts, args=None):
        """Sends PING `marker` on `c` and records every frame before its reply (`args`: the
        command sent before, whose reply may be among them); returns the reply."""
        c.send(["PING", marker])
        while True:
            raw, tree = c.read()
            if marker.encode() in raw:
                return raw
            self.record_frame(name, raw, tree, evicts, args)

    def record_frame(self, name, raw, tree, evicts, args):
        """Records a frame ci read: a reply, or a push (by its number of keys when `evicts`)."""
        shown = invalidation_count(tree) if evicts else None
        self.out.append(b"%s <- %s\n" % (name.encode(), shown or show_reply(raw, tree, args)))

    def settle_own(self, name, c, n, evicts, args, sent):
        """Reads what ci's own `sent` commands (the last one `args`) caused: their replies, then
        up to a PING's reply (not recorded). BCAST invalidations go out when the event loop is
        about to sleep, after every pipelined command read with them: a PING sent with the
        commands was now and then read with them, and their invalidations then came after its
        reply, recorded in the next sync instead (a transcript differing by timing alone). So the
        PING goes only once the commands' replies are in, and their invalidations are ahead of
        its reply."""
        replies = 0
        while replies < sent:
            raw, tree = c.read()
            if not is_push(tree):
                replies += 1
            self.record_frame(name, raw, tree, evicts, args)
        self.read_to_marker(name, c, "%s-own-%d" % (SYNC, n), evicts, args)

    def run_tracking(self, sc):
        # Start from an empty tracking table, no connection of earlier scenarios left, active expiry on.
        # (The session's own connections to this server stay: main, and with --notify its subscriber.)
        own = 1 + sum(1 for k in self.session.others if (k[1] if isinstance(k, tuple) else k) is self.main)
        self.settle(lambda: self.connected() == own)
        for args in (["FLUSHALL"], ["CONFIG", "SET", "tracking-table-max-keys", "0"]):
            self.main.call(args)
        for i in sorted(sc.protos):
            self.open_as(NAMES[i], sc.protos[i])
        evicts = sc.evicts()
        for n, op in enumerate(sc.ops):
            if op[0] == "sleep":
                # Then main reads the key: it has expired by now, actively or on this access.
                time.sleep(op[1] / 1000.0)
                op = ("main", op[2])
            if op[0] == "main":
                for args in (op[1] if isinstance(op[1][0], list) else [op[1]]):
                    raw, tree = self.main.call(self.subst(args))
                    if args[0] == "INFO":
                        raw = b"".join(line + b"\n" for line in raw.split(b"\r\n") if line.startswith(INFO_TRACKING))
                    self.record("main", args, raw, tree)
            elif op[0] == "close":
                name = NAMES[op[1]]
                c = self.conns.pop(name, None)
                if c is not None:
                    c.close()
                    self.settle(lambda: self.main.call(["CLIENT", "LIST", "ID", self.ids[name]])[1][1] in (b"", b"txt:", None))
                self.out.append(b"%s closed\n" % name.encode())
            else:
                name = NAMES[op[1]]
                c = self.conns.get(name)
                if c is None:
                    self.out.append(b"%s (closed) %s\n" % (name.encode(), " ".join(op[2]).encode()))
                else:
                    # A list of commands (MULTI ... EXEC) is pipelined: a PING in between would be queued.
                    batch = op[2] if isinstance(op[2][0], list) else [op[2]]
                    for args in batch:
                        c.send(self.subst(args))
                        self.out.append(b"%s %s\n" % (name.encode(), " ".join(args).encode()))
                    sent = 0 if any(a[0].upper() in SUBSCRIBING for a in batch) else len(batch)
                    self.settle_own(name, c, n, evicts, args, sent)
            self.sync_tracking(n, evicts)
        # Client ids differ between servers: they are shown by name.
        for name, cid in self.ids.items():
            self.out = [line.replace(b":%s\\r\\n" % cid.encode(), b":$id:%s\\r\\n" % name.encode()) for line in self.out]
        return []


def render_tracking(sc, render_args):
    """A tracking scenario in the case-file syntax (each ci's replies and pushes read with !read)."""
    lines = ["# clients: " + ", ".join("c%d RESP%d" % (i + 1, p) for i, p in sorted(sc.protos.items()))]
    conn = "main"
    for op in sc.ops:
        if op[0] == "sleep":
            lines.append("!sleep %d" % op[1])
            op = ("main", op[2])
        name = "main" if op[0] == "main" else NAMES[op[1]]
        if name != conn:
            lines.append("@conn " + name)
            conn = name
        if op[0] == "main":
            lines += [render_args(a) for a in (op[1] if isinstance(op[1][0], list) else [op[1]])]
        elif op[0] == "close":
            lines.append("!close")
        else:
            lines += [render_args(a) for a in (op[2] if isinstance(op[2][0], list) else [op[2]])]
            lines.append("# ... then !read each push it gets")
    if conn != "main":
        lines.append("@conn main")
    return lines
