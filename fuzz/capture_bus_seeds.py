#!/usr/bin/env python3
"""Seeds for the cluster_bus fuzz target: the MEET a real node sends on the cluster bus.

Starts BINARY (ferrous-server or redis-server) as a cluster node on PORT, listens as a fake
node on PORT+1 (bus PORT+10001), has the node CLUSTER MEET it and saves each frame it sends
as OUT-<n>.   Usage: capture_bus_seeds.py BINARY PORT OUT
"""
import os, socket, subprocess, sys, tempfile, time

binary, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fake = port + 1
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", fake + 10000))
ls.listen(4)
ls.settimeout(5)
extra = [] if "redis" in os.path.basename(binary) else ["--cluster-announce-human-nodename", "alpha"]
with tempfile.TemporaryDirectory() as d:
    p = subprocess.Popen([binary, "--port", str(port), "--cluster-enabled", "yes", "--save", "", "--dir", d,
                          "--cluster-announce-hostname", "host-a"] + extra,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        cli = ["redis-cli", "-p", str(port), "cluster"]
        subprocess.run(cli + ["addslotsrange", "0", "100"], check=True)
        subprocess.run(cli + ["meet", "127.0.0.1", str(fake), str(fake + 10000)], check=True)
        c, _ = ls.accept()
        c.settimeout(3)
        data = b""
        try:
            while len(data) < 20000:
                b = c.recv(65536)
                if not b:
                    break
                data += b
        except socket.timeout:
            pass
    finally:
        p.terminate()
        p.wait()
i = n = 0
while i + 8 <= len(data):
    ln = int.from_bytes(data[i + 4:i + 8], "big")
    with open(f"{out}-{n}", "wb") as f:
        f.write(data[i:i + ln])
    n += 1
    i += ln
print(f"{n} frames, {len(data)} bytes")
