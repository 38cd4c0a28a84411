#!/usr/bin/env python3
"""Soak-test load driver for bench/soak.sh (Ferrous or Redis, same load).

Runs for --duration seconds against a server that is already up:
  * data workers (processes): pipelines of mixed reads/writes on every type, many keys with
    EX/PX expiries, values of 8 B .. 4 KB, over a key space larger than maxmemory holds (so
    eviction keeps running);
  * a churn worker: connections opened, used for a few commands and closed, all the time;
  * a pub/sub worker: subscribers (channels and patterns) that come and go, and a publisher;
    published vs received messages are counted;
  * the main process: BGSAVE and BGREWRITEAOF every few seconds; every --sample seconds the
    server's VmRSS (/proc/PID/status) and INFO (used_memory, keys, evictions, ops...), and a
    PING round trip (the server keeps answering).
At the end: the load stops, running saves end, the data is SAVEd; persistent keys and a sample
of key digests (DEBUG DIGEST-VALUE) are written to --state for the restart checks; a JSON
summary goes to --out and a human-readable report to stdout.
Usage: see bench/soak.sh (`soak_driver.py run ...` and `soak_driver.py verify ...`).
"""
import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import sys
import time

import redis

TYPES = ("string", "hash", "list", "set", "zset", "stream", "hll", "bitmap", "geo", "counter")


def conn(args, **kw):
    return redis.Redis(host=args.host, port=args.port, socket_timeout=30, **kw)


def value(rng):
    n = rng.choice((8, 16, 32, 64, 128, 256, 512, 1024, 4096))
    return os.urandom(n // 2).hex()


def add_ops(p, rng, keyspace):
    """Queue one random operation on `p` (a pipeline)."""
    t = rng.choice(TYPES)
    k = f"{t}:{rng.randrange(keyspace)}"
    r = rng.random()
    ttl = rng.random() < 0.5  # half the writes carry an expiry
    if t == "string":
        if r < 0.45:
            if ttl and rng.random() < 0.5:
                p.set(k, value(rng), px=rng.randint(200, 60000))
            elif ttl:
                p.set(k, value(rng), ex=rng.randint(1, 120))
            else:
                p.set(k, value(rng))
        elif r < 0.8:
            p.get(k)
        elif r < 0.9:
            p.append(k, value(rng))
        else:
            p.getrange(k, 0, 100)
    elif t == "counter":
        # Integers and floats on different keys: INCRBY on a float would be an error.
        p.incrby(k, rng.randint(-5, 5)) if r < 0.7 else p.incrbyfloat(k + ".f", 0.5)
        if ttl:
            p.expire(k, rng.randint(1, 120))
    elif t == "hash":
        if r < 0.5:
            p.hset(k, mapping={f"f{rng.randrange(50)}": value(rng) for _ in range(rng.randint(1, 5))})
        elif r < 0.8:
            p.hgetall(k)
        elif r < 0.9:
            p.hincrby(k, "n", 1)
        else:
            p.hdel(k, f"f{rng.randrange(50)}")
        if ttl:
            p.pexpire(k, rng.randint(500, 90000))
    elif t == "list":
        if r < 0.4:
            p.rpush(k, *[value(rng) for _ in range(rng.randint(1, 8))])
        elif r < 0.6:
            p.lpop(k)
        elif r < 0.85:
            p.lrange(k, 0, 20)
        else:
            p.ltrim(k, 0, 200)
        if ttl:
            p.expire(k, rng.randint(1, 120))
    elif t == "set":
        if r < 0.5:
            p.sadd(k, *[f"m{rng.randrange(500)}" for _ in range(rng.randint(1, 10))])
        elif r < 0.7:
            p.srem(k, f"m{rng.randrange(500)}")
        elif r < 0.9:
            p.scard(k)
        else:
            p.sinterstore(f"set:{rng.randrange(keyspace)}", [k, f"set:{rng.randrange(keyspace)}"])
        if ttl:
            p.expire(k, rng.randint(1, 120))
    elif t == "zset":
        if r < 0.5:
            p.zadd(k, {f"m{rng.randrange(1000)}": rng.random() * 100 for _ in range(rng.randint(1, 10))})
        elif r < 0.65:
            p.zincrby(k, 1.5, f"m{rng.randrange(1000)}")
        elif r < 0.9:
            p.zrange(k, 0, 10, withscores=True)
        else:
            p.zremrangebyrank(k, 0, 5)
        if ttl:
            p.pexpire(k, rng.randint(500, 90000))
    elif t == "stream":
        if r < 0.6:
            p.xadd(k, {"v": value(rng)}, maxlen=100, approximate=True)
        elif r < 0.9:
            p.xrange(k, count=10)
        else:
            p.xtrim(k, maxlen=10)
        if ttl:
            p.expire(k, rng.randint(1, 120))
    elif t == "hll":
        if r < 0.7:
            p.pfadd(k, *[f"e{rng.randrange(100000)}" for _ in range(5)])
        else:
            p.pfcount(k)
    elif t == "bitmap":
        if r < 0.6:
            p.setbit(k, rng.randrange(100000), 1)
        else:
            p.bitcount(k)
        if ttl:
            p.expire(k, rng.randint(1, 120))
    elif t == "geo":
        if r < 0.6:
            p.geoadd(k, (rng.uniform(-170, 170), rng.uniform(-80, 80), f"p{rng.randrange(200)}"))
        else:
            p.geosearch(k, longitude=0, latitude=0, radius=5000, unit="km", count=5)
    if rng.random() < 0.02:
        p.delete(k)


def data_worker(args, wid, stats, stop):
    rng = random.Random(wid)
    ops = errs = 0
    err_kinds = {}
    c = None
    while not stop.is_set():
        try:
            if c is None:
                c = conn(args)
            p = c.pipeline(transaction=rng.random() < 0.1)
            for _ in range(args.pipeline):
                add_ops(p, rng, args.keyspace)
            for res in p.execute(raise_on_error=False):
                ops += 1
                if isinstance(res, Exception):
                    errs += 1
                    kind = " ".join(str(res).split(" ")[:4])
                    err_kinds[kind] = err_kinds.get(kind, 0) + 1
        except Exception as e:  # connection-level error: counted, reconnect
            errs += 1
            kind = "conn:" + type(e).__name__
            err_kinds[kind] = err_kinds.get(kind, 0) + 1
            c = None
            time.sleep(0.1)
        stats[f"data{wid}"] = {"ops": ops, "errors": errs, "kinds": err_kinds}


def churn_worker(args, stats, stop):
    rng = random.Random(99)
    opened = errs = 0
    while not stop.is_set():
        try:
            c = conn(args)
            c.client_setname(f"churn{opened}")
            c.set(f"string:{rng.randrange(args.keyspace)}", value(rng), ex=30)
            c.get(f"string:{rng.randrange(args.keyspace)}")
            c.close()
            opened += 1
        except Exception:
            errs += 1
            time.sleep(0.1)
        stats["churn"] = {"connections": opened, "errors": errs}
        time.sleep(0.002)


def pubsub_worker(args, stats, stop):
    rng = random.Random(7)
    published = received = delivered = errs = rounds = 0
    pub = conn(args)
    while not stop.is_set():
        try:
            subs = []
            for i in range(5):
                s = conn(args).pubsub()
                s.subscribe(f"chan:{i}")
                s.psubscribe(f"pat:{i}:*")
                subs.append(s)
            for s in subs:  # the (p)subscribe confirmations
                for _ in range(2):
                    s.get_message(timeout=5)
            for _ in range(200):
                i = rng.randrange(5)
                delivered += pub.publish(f"chan:{i}", value(rng))
                delivered += pub.publish(f"pat:{i}:{rng.randrange(10)}", value(rng))
                published += 2
            for s in subs:
                while True:
                    m = s.get_message(timeout=0.2)
                    if m is None:
                        break
                    if m["type"] in ("message", "pmessage"):
                        received += 1
                s.close()
            rounds += 1
        except Exception:
            errs += 1
            time.sleep(0.1)
            pub = conn(args)
        stats["pubsub"] = {"published": published, "delivered": delivered, "received": received,
                           "errors": errs, "rounds": rounds}


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slope_mb_per_hour(points):
    """Least-squares slope of (t seconds, bytes) points, in MB per hour."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    num = sum((t - mt) * (v - mv) for t, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return (num / den) * 3600 / 1e6 if den else 0.0


def wait_persistence(c, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        info = c.info("persistence")
        if not info.get("rdb_bgsave_in_progress") and not info.get("aof_rewrite_in_progress") \
                and not info.get("aof_rewrite_scheduled"):
            return True
        time.sleep(0.2)
    return False


def run(args):
    mgr = mp.Manager()
    stats = mgr.dict()
    stop = mp.Event()
    procs = [mp.Process(target=data_worker, args=(args, i, stats, stop)) for i in range(args.workers)]
    procs.append(mp.Process(target=churn_worker, args=(args, stats, stop)))
    procs.append(mp.Process(target=pubsub_worker, args=(args, stats, stop)))
    for p in procs:
        p.start()
    c = conn(args)
    start = time.time()
    samples = []
    admin = {"bgsave": 0, "bgsave_refused": 0, "bgrewriteaof": 0, "bgrewriteaof_refused": 0,
             "admin_errors": 0}
    next_save = start + args.bgsave_every
    next_rewrite = start + args.rewrite_every / 2
    next_sample = start
    max_ping = 0.0
    try:
        while time.time() - start < args.duration:
            now = time.time()
            if now >= next_save:
                next_save = now + args.bgsave_every
                try:
                    c.bgsave()
                    admin["bgsave"] += 1
                except redis.ResponseError:
                    admin["bgsave_refused"] += 1  # one already running
            if now >= next_rewrite:
                next_rewrite = now + args.rewrite_every
                try:
                    c.bgrewriteaof()
                    admin["bgrewriteaof"] += 1
                except redis.ResponseError:
                    admin["bgrewriteaof_refused"] += 1
            if now >= next_sample:
                next_sample = now + args.sample
                try:
                    t0 = time.time()
                    c.ping()
                    ping = time.time() - t0
                    max_ping = max(max_ping, ping)
                    info = c.info()
                    db0 = info.get("db0", {})
                    samples.append({
                        "t": round(now - start, 1), "rss": rss_kb(args.pid) * 1024,
                        "used_memory": info["used_memory"], "keys": db0.get("keys", 0),
                        "expires": db0.get("expires", 0), "evicted": info.get("evicted_keys", 0),
                        "expired": info.get("expired_keys", 0),
                        "clients": info.get("connected_clients", 0),
                        "cmds": info.get("total_commands_processed", 0),
                        "conns": info.get("total_connections_received", 0),
                        "ping_ms": round(ping * 1000, 2),
                    })
                    s = samples[-1]
                    print(f"[soak] t={s['t']:7.1f}s rss={s['rss']/1e6:7.1f}MB "
                          f"used={s['used_memory']/1e6:7.1f}MB keys={s['keys']} "
                          f"evicted={s['evicted']} expired={s['expired']} clients={s['clients']} "
                          f"ping={s['ping_ms']}ms", file=sys.stderr, flush=True)
                except Exception as e:
                    admin["admin_errors"] += 1
                    print(f"[soak] sample failed: {e}", file=sys.stderr, flush=True)
                    c = conn(args)
            time.sleep(0.05)
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    load_s = time.time() - start
    worker_stats = dict(stats)
    # Quiesce: running saves end, then a foreground SAVE so dump.rdb has the final data; the
    # AOF has it too (appendfsync everysec: flushed within a second; SAVE waits longer).
    persisted = wait_persistence(c)
    # Nothing may change after the SAVE: with used_memory over maxmemory even reads evict keys
    # (as in Redis), which the RDB would not show.
    c.config_set("maxmemory", 0)
    c.save()
    final = c.info()
    state = capture_state(c, args.digest_sample)
    with open(args.state, "w") as f:
        json.dump(state, f)
    ops = sum(v.get("ops", 0) for k, v in worker_stats.items() if k.startswith("data"))
    errs = {k: v.get("errors", 0) for k, v in worker_stats.items()}
    kinds = {}
    for k, v in worker_stats.items():
        for kind, n in v.get("kinds", {}).items():
            kinds[kind] = kinds.get(kind, 0) + n
    warm = [s for s in samples if s["t"] >= args.warmup]
    summary = {
        "duration_s": round(load_s, 1), "data_ops": ops, "data_ops_per_s": round(ops / load_s),
        "worker_stats": worker_stats, "error_kinds": kinds, "errors": errs, "admin": admin,
        "max_ping_ms": round(max_ping * 1000, 1), "persistence_settled": persisted,
        "samples": samples, "warmup_s": args.warmup,
        "final": {k: final.get(k) for k in ("used_memory", "used_memory_rss", "evicted_keys",
                                              "expired_keys", "total_commands_processed",
                                              "total_connections_received", "rejected_connections",
                                              "rdb_last_bgsave_status", "aof_last_bgrewrite_status",
                                              "aof_last_write_status", "rdb_saves",
                                              "aof_rewrites")},
    }
    for field in ("rss", "used_memory"):
        vals = [s[field] for s in samples]
        if not vals:
            continue
        summary[field] = {
            "start": vals[0], "after_warmup": warm[0][field] if warm else None, "end": vals[-1],
            "max": max(vals), "max_after_warmup": max(s[field] for s in warm) if warm else None,
            "slope_mb_per_h_after_warmup": round(slope_mb_per_hour([(s["t"], s[field]) for s in warm]), 2),
        }
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)
    report(summary, state)


def capture_state(c, n):
    """What the restarted server must have: the number of keys without a TTL, and digests of a
    sample of them (keys with a TTL may expire before a slow restart has loaded the files)."""
    info = c.info("keyspace").get("db0", {})
    persistent = info.get("keys", 0) - info.get("expires", 0)
    digests = {}
    tries = 0
    while len(digests) < n and tries < n * 10 and info.get("keys", 0):
        tries += 1
        k = c.randomkey()
        if k is None:
            break
        if c.pttl(k) != -1:
            continue
        d = c.execute_command("DEBUG", "DIGEST-VALUE", k)
        digests[k.decode("latin-1")] = [x.decode() if isinstance(x, bytes) else x for x in d][0]
    return {"persistent_keys": persistent, "digests": digests, "keys": info.get("keys", 0)}


def verify(args):
    """Compare a restarted server with the state captured before the restart."""
    with open(args.state) as f:
        state = json.load(f)
    c = conn(args)
    info = c.info("keyspace").get("db0", {})
    persistent = info.get("keys", 0) - info.get("expires", 0)
    mismatched = missing = 0
    for k, d in state["digests"].items():
        got = c.execute_command("DEBUG", "DIGEST-VALUE", k.encode("latin-1"))[0]
        got = got.decode() if isinstance(got, bytes) else got
        if not c.exists(k.encode("latin-1")):
            missing += 1
        elif got != d:
            mismatched += 1
    ok = persistent == state["persistent_keys"] and not mismatched and not missing
    res = {"label": args.label, "ok": ok, "persistent_keys_before": state["persistent_keys"],
           "persistent_keys_after": persistent, "keys_before": state["keys"],
           "keys_after": info.get("keys", 0), "digests_checked": len(state["digests"]),
           "digest_mismatches": mismatched, "missing": missing}
    print(json.dumps(res))
    return 0 if ok else 1


def mb(v):
    return "-" if v is None else f"{v / 1e6:.1f} MB"


def report(s, state):
    print(f"load: {s['duration_s']} s, {s['data_ops']} data ops ({s['data_ops_per_s']}/s), "
          f"max PING {s['max_ping_ms']} ms")
    for field in ("rss", "used_memory"):
        if field in s:
            d = s[field]
            print(f"{field}: start {mb(d['start'])}, after warm-up ({s['warmup_s']} s) "
                  f"{mb(d['after_warmup'])}, end {mb(d['end'])}, max {mb(d['max'])} "
                  f"(after warm-up {mb(d['max_after_warmup'])}), slope after warm-up "
                  f"{d['slope_mb_per_h_after_warmup']} MB/h")
    print(f"workers: {json.dumps(s['worker_stats'])}")
    print(f"error kinds: {json.dumps(s['error_kinds'])}")
    print(f"admin: {json.dumps(s['admin'])}; final: {json.dumps(s['final'])}")
    print(f"state for the restart: {state['keys']} keys, {state['persistent_keys']} without TTL, "
          f"{len(state['digests'])} digests")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("run", "verify"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--duration", type=float, default=1800)
    ap.add_argument("--warmup", type=float, default=300)
    ap.add_argument("--sample", type=float, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pipeline", type=int, default=50)
    ap.add_argument("--keyspace", type=int, default=100000)
    ap.add_argument("--bgsave-every", type=float, default=60)
    ap.add_argument("--rewrite-every", type=float, default=90)
    ap.add_argument("--digest-sample", type=int, default=1000)
    ap.add_argument("--state", default="soak-state.json")
    ap.add_argument("--out", default="soak.json")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.mode == "run":
        run(args)
    else:
        sys.exit(verify(args))


if __name__ == "__main__":
    main()
