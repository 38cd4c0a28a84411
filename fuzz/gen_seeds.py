#!/usr/bin/env python3
"""Seed corpora for the aof_load and pipeline fuzz targets (see fuzz/README.md).

  python3 fuzz/gen_seeds.py --port P [--server BIN] [--out fuzz/seeds]

Starts BIN (default: target/release/ferrous-server; redis-server works too) on port P in a
scratch directory with appendonly yes, runs a set of commands on every type (expiries, MULTI,
SELECT, deletions...) and keeps the AOF files it writes: the incr file, the base file of a
BGREWRITEAOF without an RDB preamble and one with it, and base + incr concatenated. For the
pipeline target it encodes short command programs in that target's input format (a byte for
the command, a byte for the argument count, then each argument from its pool), with the
command list the server reports (COMMAND, minus the ones the target leaves out).
Files go to OUT/aof_load and OUT/pipeline; copy them into fuzz/corpus/<target>/ to use them.
"""
import argparse
import os
import shutil
import subprocess
import tempfile
import time

import redis

# Must match fuzz_targets/pipeline.rs (its deny list and its WORDS pool).
DENY = {"shutdown", "debug", "monitor", "sync", "psync", "replicaof", "slaveof", "save", "bgsave",
        "bgrewriteaof", "config", "failover", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall",
        "fcall_ro", "function", "script", "client", "wait", "waitaof", "migrate", "acl"}
WORDS = ["0", "1", "-1", "2", "10", "100", "-100", "1.5", "-inf", "+inf", "(1", "[a", "(b", "-",
         "+", "nan", "inf", "NX", "XX", "GT", "LT", "CH", "INCR", "EX", "PX", "EXAT", "KEEPTTL",
         "GET", "WITHSCORES", "LIMIT", "COUNT", "MATCH", "TYPE", "BYSCORE", "BYLEX", "REV", "LEFT",
         "RIGHT", "BEFORE", "AFTER", "RANK", "MAXLEN", "IDLE", "WITHVALUES", "AGGREGATE", "SUM",
         "MIN", "MAX", "WEIGHTS", "STORE", "ALPHA", "DESC", "BY", "FIELDS", "FNX", "REPLACE", "DB",
         "ABSTTL", "FREQ", "IDLETIME", "ENCODING", "OVERFLOW", "WRAP", "SAT", "FAIL", "u8", "i16",
         "#1", "BIT", "BYTE", "AND", "OR", "XOR", "NOT", "m", "km", "FROMLONLAT", "BYRADIUS",
         "BYBOX", "ASC", "WITHCOORD", "WITHDIST", "WITHHASH", "ANY", "*", "a*", "?", "\x00", "\xff"]

# Command programs for the pipeline target: (resp3, command line) steps. Arguments must be one
# of: k0..k5, m0..m7, an integer -128..127, a word of WORDS, or raw bytes shorter than 24.
PROGRAMS = {
    "strings": [(0, "SET k0 m1 EX 10"), (0, "GET k0"), (1, "INCR k1"), (0, "APPEND k0 m2"),
                (1, "GETRANGE k0 0 -1"), (0, "MSET k2 1 k3 2"), (1, "GETEX k2 PX 100"),
                (0, "SETRANGE k3 10 m4"), (1, "STRLEN k3"), (0, "GETDEL k2")],
    "hashes": [(0, "HSET k0 m0 1 m1 2"), (1, "HGETALL k0"), (0, "HINCRBY k0 m0 10"),
               (1, "HRANDFIELD k0 -10 WITHVALUES"), (0, "HSCAN k0 0 MATCH *"), (1, "HDEL k0 m0")],
    "lists": [(0, "RPUSH k1 m0 m1 m2 m3"), (1, "LRANGE k1 0 -1"), (0, "LPOS k1 m2 RANK -1"),
              (1, "LMOVE k1 k2 LEFT RIGHT"), (0, "LINSERT k1 BEFORE m2 m7"), (1, "LPOP k1 2"),
              (0, "BLPOP k3 1"), (1, "LTRIM k1 0 1")],
    "sets": [(0, "SADD k2 m0 m1 m2"), (0, "SADD k3 m1 m5"), (1, "SINTER k2 k3"),
             (0, "SUNIONSTORE k4 k2 k3"), (1, "SRANDMEMBER k4 -5"), (0, "SPOP k4 2"),
             (1, "SMISMEMBER k2 m0 m7")],
    "zsets": [(0, "ZADD k3 1 m0 2 m1"), (1, "ZRANGE k3 0 -1 WITHSCORES"),
              (0, "ZRANGE k3 (1 +inf BYSCORE"), (1, "ZINCRBY k3 10 m0"),
              (0, "ZUNIONSTORE k4 2 k3 k3 AGGREGATE MAX"), (1, "ZPOPMIN k4 2"),
              (0, "ZRANGEBYLEX k3 - +"), (1, "ZRANDMEMBER k3 -3 WITHSCORES")],
    "streams": [(0, "XADD k5 * m0 1"), (1, "XADD k5 MAXLEN 10 * m1 2"), (0, "XLEN k5"),
                (1, "XRANGE k5 - +"), (0, "XGROUP CREATE k5 m0 0"),
                (1, "XREADGROUP GROUP m0 m1 STREAMS k5 >"), (0, "XPENDING k5 m0"),
                (1, "XINFO STREAM k5")],
    "tx": [(0, "MULTI"), (0, "SET k0 1"), (0, "INCR k0"), (0, "EXEC"), (1, "WATCH k0"),
           (0, "SET k0 2"), (1, "MULTI"), (1, "GET k0"), (1, "EXEC")],
    "keys": [(0, "SET k0 1"), (0, "EXPIRE k0 100 NX"), (1, "TTL k0"), (0, "RENAME k0 k1"),
             (1, "COPY k1 k2 DB 1 REPLACE"), (0, "OBJECT ENCODING k1"), (1, "SCAN 0 COUNT 10 TYPE m0"),
             (0, "SORT k1 ALPHA DESC"), (1, "DUMP k1"), (0, "UNLINK k1"), (1, "SWAPDB 0 1")],
    "bits_geo_hll": [(0, "SETBIT k0 100 1"), (1, "BITCOUNT k0 0 -1 BIT"),
                     (0, "BITFIELD k0 INCRBY u8 #1 100"), (1, "BITOP XOR k1 k0 k0"),
                     (0, "GEOADD k2 1.5 1.5 m0"), (1, "GEODIST k2 m0 m0 km"),
                     (0, "PFADD k3 m0 m1 m2"), (1, "PFCOUNT k3")],
    "pubsub": [(0, "SUBSCRIBE m0"), (1, "PUBLISH m0 1"), (0, "PSUBSCRIBE a*"), (1, "PUBSUB CHANNELS"),
               (0, "PING"), (0, "UNSUBSCRIBE"), (1, "SSUBSCRIBE k0"), (1, "RESET")],
}

# Commands for the AOF written by the server (all types, expiries, transactions, databases).
AOF_COMMANDS = [
    "SET s1 hello", "SET s2 world EX 1000", "SET s3 x PX 2000000", "INCRBY n1 42", "INCRBYFLOAT f1 1.5",
    "APPEND s1 !", "SETRANGE s4 5 abc", "HSET h1 a 1 b 2 c 3", "HINCRBY h1 a 5", "HDEL h1 b",
    "RPUSH l1 a b c d e", "LPOP l1", "LINSERT l1 BEFORE c x", "LTRIM l1 0 2", "SADD st1 a b c 1 2 3",
    "SREM st1 a", "SADD st2 1 2 3", "SINTERSTORE st3 st1 st2", "ZADD z1 1 a 2 b 3 c", "ZINCRBY z1 2.5 a",
    "ZREMRANGEBYRANK z1 0 0", "XADD x1 1-1 f v", "XADD x1 * f w", "XGROUP CREATE x1 g1 0",
    "XREADGROUP GROUP g1 c1 COUNT 1 STREAMS x1 >", "XTRIM x1 MAXLEN 5", "PFADD p1 a b c",
    "SETBIT b1 77 1", "GEOADD g1 13.36 38.11 palermo 15.08 37.50 catania", "EXPIRE h1 5000",
    "PEXPIREAT l1 99999999999999", "PERSIST s3", "SELECT 3", "SET s1 other-db", "SELECT 0",
    "MULTI", "SET t1 1", "INCR t1", "EXEC", "RENAME s1 s5", "DEL st2", "GETEX s5 EX 100",
    "LMOVE l1 l2 LEFT RIGHT", "ZPOPMIN z1", "SPOP st1", "SET big " + "v" * 300, "UNLINK big",
]


def encode_arg(a):
    if len(a) == 2 and a[0] == "k" and a[1] in "012345":
        b = next(b for b in range(256) if b % 8 <= 2 and b % 6 == int(a[1]))
        return bytes([b])
    if len(a) == 2 and a[0] == "m" and a[1] in "01234567":
        return bytes([3, int(a[1])])
    try:
        n = int(a)
        if -128 <= n <= 127 and str(n) == a:
            return bytes([4, n + 128])
    except ValueError:
        pass
    if a in WORDS:
        return bytes([5, WORDS.index(a)])
    raw = a.encode()
    assert len(raw) < 24, a
    return bytes([7, len(raw)]) + raw


def encode_step(names, resp3, line):
    words = line.split()
    idx = names.index(words[0].lower())
    cands = [w for w in (idx, idx + len(names)) if w < 256]
    which = next((w for w in cands if bool(w & 0x80) == bool(resp3)), cands[0])
    assert len(words) - 1 <= 6, line
    return bytes([which, len(words) - 1]) + b"".join(encode_arg(a) for a in words[1:])


def server_names(c):
    names = []
    for name, info in c.command().items():
        flags = {f.decode() if isinstance(f, bytes) else f for f in info.get("flags", [])}
        if "admin" in flags or name in DENY:
            continue
        names.append(name)
    return sorted(set(names))


def start(binary, port, d, *extra):
    p = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
                          "--appendonly", "yes", "--appendfsync", "always", *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = redis.Redis(port=port)
    for _ in range(100):
        try:
            c.ping()
            return p, c
        except redis.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("server does not answer")


def wait_rewrite(c):
    for _ in range(300):
        info = c.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        time.sleep(0.1)


def aof_files(d):
    a = os.path.join(d, "appendonlydir")
    base = next(f for f in os.listdir(a) if ".base." in f)
    incr = sorted(f for f in os.listdir(a) if ".incr." in f)[-1]
    return os.path.join(a, base), os.path.join(a, incr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--server", default="target/release/ferrous-server")
    ap.add_argument("--out", default="fuzz/seeds")
    ap.add_argument("--tag", default="", help="prefix of the AOF seed names (e.g. redis-)")
    args = ap.parse_args()
    aof_out = os.path.join(args.out, "aof_load")
    pl_out = os.path.join(args.out, "pipeline")
    os.makedirs(aof_out, exist_ok=True)
    os.makedirs(pl_out, exist_ok=True)
    d = tempfile.mkdtemp(prefix="ferrous-seeds-")
    try:
        p, c = start(args.server, args.port, d, "--aof-use-rdb-preamble", "no")
        try:
            for cmd in AOF_COMMANDS:
                c.execute_command(*cmd.split())
            _, incr = aof_files(d)
            shutil.copy(incr, os.path.join(aof_out, f"{args.tag}incr.aof"))
            c.bgrewriteaof()
            wait_rewrite(c)
            base, _ = aof_files(d)
            shutil.copy(base, os.path.join(aof_out, f"{args.tag}base.aof"))
            for cmd in AOF_COMMANDS[:12]:
                c.execute_command(*cmd.split())
            _, incr2 = aof_files(d)
            with open(os.path.join(aof_out, f"{args.tag}base+incr.aof"), "wb") as f:
                f.write(open(base, "rb").read() + open(incr2, "rb").read())
            c.config_set("aof-use-rdb-preamble", "yes")
            c.bgrewriteaof()
            wait_rewrite(c)
            base, _ = aof_files(d)
            c.execute_command("SET", "after", "preamble")
            _, incr3 = aof_files(d)
            with open(os.path.join(aof_out, f"{args.tag}preamble+incr.aof"), "wb") as f:
                f.write(open(base, "rb").read() + open(incr3, "rb").read())
            if not args.tag:
                names = server_names(c)
                for name, steps in PROGRAMS.items():
                    prog = b"".join(encode_step(names, r, line) for r, line in steps)
                    with open(os.path.join(pl_out, name), "wb") as f:
                        f.write(prog)
        finally:
            try:
                c.shutdown(nosave=True)
            except redis.RedisError:
                pass
            p.wait(timeout=30)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    for sub in (aof_out, pl_out):
        print(sub, sorted((f, os.path.getsize(os.path.join(sub, f))) for f in os.listdir(sub)))


if __name__ == "__main__":
    main()
