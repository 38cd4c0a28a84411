#!/usr/bin/env python3
"""Generate src/commands/meta/sentinel.json: the metadata of SENTINEL and its subcommands, which
a server only reports in sentinel mode, from Redis 7.0.15 started with --sentinel (COMMAND INFO
and COMMAND DOCS, in generate.py's format). With --check-72 PATH each subcommand's arity and
flags are checked against Redis 7.2.4's command JSON files (7.2's arity is taken; a flag mismatch
is reported).

Usage: sentinel.py [--redis redis-server] [--check-72 /tmp/redis-src-7.2] [--out FILE]
"""
import argparse, json, os, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Conn
from generate import info_entry, docs_entry, tree, load_72, value_72


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--check-72")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../src/commands/meta/sentinel.json"))
    ap.add_argument("--port", type=int, default=25951)
    a = ap.parse_args()
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "sentinel.conf")
    open(conf, "w").write(f"port {a.port}\ndir {d}\n")
    p = subprocess.Popen([a.redis, conf, "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                c = Conn(a.port); c.cmd("HELLO", "3"); break
            except OSError:
                time.sleep(0.05)
        info = [info_entry(e) for e in c.cmd("COMMAND", "INFO", "sentinel")][0]
        docs = docs_entry(dict(c.cmd("COMMAND", "DOCS", "sentinel"))["sentinel"])
    finally:
        p.terminate()
    src72 = load_72(a.check_72) if a.check_72 else None
    subs = info.pop("subcommands")
    out = [{**info, "docs": tree(docs["docs"]), "container": True}]
    for sn in sorted(subs):
        se = subs[sn]; se.pop("subcommands")
        if src72 is not None:
            j = src72.get(sn)
            if j is None:
                print(f"{sn}: not in 7.2.4")
            else:
                if j.get("arity") != se["arity"]:
                    print(f"{sn}: arity {se['arity']} -> 7.2.4's {j.get('arity')}")
                    se["arity"] = j.get("arity")
                if sorted(value_72(src72, sn, "flags")) != sorted(se["flags"]):
                    print(f"{sn}: flags differ from 7.2.4 ({se['flags']})")
        out.append({**se, "docs": tree(docs["subdocs"][sn]["docs"]), "container": False})
    with open(a.out, "w") as f:
        head = {"generated_by": "tools/command_meta/sentinel.py", "base": "Redis 7.0.15 --sentinel COMMAND INFO/DOCS"}
        f.write(json.dumps(head, separators=(",", ":"))[:-1] + ',"commands":[\n')
        f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in out))
        f.write("\n]}\n")
    print(f"{len(out)} commands and subcommands written to {a.out}")


if __name__ == "__main__":
    main()
