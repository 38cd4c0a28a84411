"""Random command generators for the differential fuzzer, one per command family.

Each generator returns (mode, args): `args` is the command as a list of strings, `mode` says how the
replies are compared: "exact", "unordered" (top-level aggregate as a multiset), "pairs" (a flat
field/value array or a map, as a set of pairs), "ttl" (an integer within one second), "scan" (the
whole iteration's elements, as a set) or "skip" (run, not compared: random or time-dependent replies).
Keys are drawn mostly from the family's own small pool, sometimes from another family's, so type
errors and cross-type moves happen too.
"""

FAMILY_KEYS = {
    "strings": ["s1", "s2", "s3"],
    "bits": ["b1", "b2", "b3"],
    "lists": ["l1", "l2", "l3"],
    "hashes": ["h1", "h2", "h3"],
    "sets": ["t1", "t2", "t3"],
    "zsets": ["z1", "z2", "z3"],
    "streams": ["x1", "x2"],
    "hll": ["p1", "p2", "p3"],
    "geo": ["g1", "g2"],
    "keys": ["s1", "l1", "h1", "t1", "z1", "x1", "p1", "g1", "k1"],
    "lua": ["s1", "h1", "z1", "l1", "t1"],
    "tx": ["s1", "l1", "h1", "k1"],
}

INTS = ["0", "1", "-1", "2", "3", "5", "10", "-5", "100", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "-9223372036854775809", "abc", "1.5", "", " 1", "+1", "01", "-0", "1e2"]
FLOATS = ["0", "1", "-1", "2.5", "-2.25", "0.1", "3", "10", "1e3", "inf", "-inf", "+inf", "nan", "1e308",
          "1e309", "-1e-300", ".5", "5.", "1e", "abc", "", "0x10", " 1", "3.0000000000000004", "17", "1.5"]
# Commands whose reply may be random (run, not compared, once an argument was perturbed) and those
# whose effect may be random (never perturbed: they would make the servers' states differ).
RANDOM_REPLIES = {"SRANDMEMBER", "HRANDFIELD", "ZRANDMEMBER", "RANDOMKEY"}
RANDOM_STATE_CHANGING = {"SPOP"}
# Blocking commands are never perturbed either: a perturbed timeout of 0 would block for ever.
BLOCKING = {"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP"}
SMALL = ["0", "1", "2", "3", "-1", "-2", "5", "10", "-100", "100"]


class Gen:
    def __init__(self, rng, family):
        self.r = rng
        self.family = family

    # --- helpers -------------------------------------------------------------------------------
    def c(self, seq):
        return self.r.choice(seq)

    def p(self, prob):
        return self.r.random() < prob

    def key(self, fam=None):
        fam = fam or self.family
        if self.p(0.08):
            fam = self.c(list(FAMILY_KEYS))
        return self.c(FAMILY_KEYS[fam])

    def keys(self, lo=1, hi=3, fam=None):
        return [self.key(fam) for _ in range(self.r.randint(lo, hi))]

    def member(self):
        roll = self.r.random()
        if roll < 0.05:
            return "m" * self.r.choice([65, 70, 200])
        if roll < 0.4:
            return str(self.r.randint(-3, 20))
        if roll < 0.45:
            return self.c(["", "1.5", "a b", "\u00e9t\u00e9", "-0", "00", "9223372036854775808"])
        return self.c("abcdefghij")

    def members(self, lo=1, hi=4):
        n = self.r.randint(lo, hi)
        if self.p(0.04):
            n = self.r.choice([129, 130, 513, 520])
        return [self.member() for _ in range(n)] if n < 100 else ["e%d" % i for i in range(n)]

    def value(self):
        roll = self.r.random()
        if roll < 0.3:
            return self.c(INTS)
        if roll < 0.35:
            return "v" * self.r.choice([40, 44, 45, 65, 300])
        return self.c(["hello", "world", "a", "", "foobar", "xyz", "12", "-3", "3.5", "\x00\x01"])

    def int(self):
        return self.c(SMALL) if self.p(0.7) else self.c(INTS)

    def float(self):
        return self.c(SMALL) if self.p(0.5) else self.c(FLOATS)

    def expiry_opt(self, allow_keepttl=True):
        opts = [["EX", self.c(["100", "1000", "0", "-1", "abc", "9223372036854775807"])],
                ["PX", self.c(["100000", "0", "-5"])],
                ["EXAT", self.c(["1", "4102444800"])],
                ["PXAT", self.c(["1", "4102444800000"])]]
        if allow_keepttl:
            opts.append(["KEEPTTL"])
        return self.c(opts)

    def mutate(self, args):
        """Now and then drops, duplicates or perturbs an argument to reach the error paths."""
        if len(args) > 1 and self.p(0.05):
            roll = self.r.random()
            i = self.r.randrange(1, len(args))
            if roll < 0.4:
                return args[:i] + args[i + 1:]
            if roll < 0.7:
                return args[:i] + [args[i]] + args[i:]
            return args[:i] + [self.c(["abc", "-1", "0", "COUNT", "LIMIT", "WITHSCORES", ""])] + args[i + 1:]
        return args

    def next(self):
        fn = getattr(self, "gen_" + self.family)
        mode, args = fn()
        if mode in ("watch", "clients", "pubsub", "tracking"):
            return mode, args
        name = args[0].upper()
        if mode in ("exact", "unordered", "pairs") and name not in RANDOM_STATE_CHANGING and name not in BLOCKING:
            perturbed = self.mutate(args)
            if perturbed != args and name in RANDOM_REPLIES:
                mode = "skip"
            args = perturbed
        return mode, args

    # --- strings -------------------------------------------------------------------------------
    def gen_strings(self):
        k = self.key()
        roll = self.r.randrange(25)
        if roll == 0:
            a = ["SET", k, self.value()]
            if self.p(0.3):
                a.append(self.c(["NX", "XX"]))
            if self.p(0.3):
                a.append("GET")
            if self.p(0.4):
                a += self.expiry_opt()
            return "exact", a
        if roll == 1:
            return "exact", ["GET", k]
        if roll == 2:
            return "exact", ["GETSET", k, self.value()]
        if roll == 3:
            return "exact", ["GETDEL", k]
        if roll == 4:
            a = ["GETEX", k]
            if self.p(0.6):
                a += self.c([self.expiry_opt(False), ["PERSIST"]])
            return "exact", a
        if roll == 5:
            return "exact", self.c([["SETNX", k, self.value()], ["SETEX", k, self.c(["100", "0", "-1", "x"]), self.value()],
                                    ["PSETEX", k, self.c(["100000", "0", "-1"]), self.value()]])
        if roll == 6:
            a = [self.c(["MSET", "MSETNX"])]
            for kk in self.keys(1, 3):
                a += [kk, self.value()]
            return "exact", a
        if roll == 7:
            return "exact", ["MGET"] + self.keys(1, 4)
        if roll == 8:
            return "exact", ["APPEND", k, self.value()]
        if roll == 9:
            return "exact", ["STRLEN", k]
        if roll == 10:
            return "exact", ["SETRANGE", k, self.c(["0", "1", "3", "10", "-1", "536870912", "x", "100"]), self.value()]
        if roll == 11:
            return "exact", [self.c(["GETRANGE", "SUBSTR"]), k, self.int(), self.int()]
        if roll == 12:
            return "exact", [self.c(["INCR", "DECR"]), k]
        if roll == 13:
            return "exact", [self.c(["INCRBY", "DECRBY"]), k, self.int()]
        if roll == 14:
            return "exact", ["INCRBYFLOAT", k, self.float()]
        if roll == 15:
            a = ["LCS", self.key(), self.key()]
            if self.p(0.3):
                a.append("LEN")
            if self.p(0.4):
                a.append("IDX")
            if self.p(0.3):
                a += ["MINMATCHLEN", self.c(["0", "1", "2", "-1", "x"])]
            if self.p(0.3):
                a.append("WITHMATCHLEN")
            return "exact", a
        if roll == 16:
            return "exact", ["TYPE", k]
        if roll == 17:
            return "exact", ["OBJECT", "ENCODING", k]
        if roll == 18:
            return "ttl", ["TTL", k]
        if roll == 19:
            # The expiry time of a relative TTL is time-dependent: compared within a tolerance.
            return "ttl", [self.c(["EXPIRETIME", "PEXPIRETIME"]), k]
        if roll == 20:
            return "exact", ["DEL", k]
        if roll == 21:
            if self.p(0.4):
                # Texts over a small alphabet, for LCS to find several matches in.
                return "exact", ["SET", k, "".join(self.c("abc") for _ in range(self.r.randint(0, 30)))]
            return "exact", ["SET", k, self.c(["12345", "-7", "3.25", "1e3", "9223372036854775807", "x" * 20, "  ",
                                               "ohmytext", "mynewtext"])]
        if roll == 22:
            return "exact", ["EXISTS"] + self.keys(1, 3)
        if roll == 23:
            # Options that clash, repeat or come in odd case.
            return "exact", self.c([["SET", k, self.value(), "NX", "XX"], ["SET", k, self.value(), "EX", "10", "PX", "100"],
                                    ["SET", k, self.value(), "KEEPTTL", "EX", "10"], ["SET", k, self.value(), "GET", "GET"],
                                    ["SET", k, self.value(), "ex", "10", "nx", "get"], ["SET", k, self.value(), "EX"],
                                    ["SET", k, self.value(), "PX", "10", "PX", "20"], ["GETEX", k, "EX", "10", "PERSIST"],
                                    ["GETEX", k, "PERSIST", "PERSIST"], ["GETEX", k, "KEEPTTL"], ["GETEX", k, "px"],
                                    ["SET", k, self.value(), "XX", "GET", "KEEPTTL"]])
        return "exact", ["STRLEN", k]

    # --- bitmaps, BITFIELD ---------------------------------------------------------------------
    def gen_bits(self):
        k = self.key()
        roll = self.r.randrange(14)
        off = lambda: self.c(["0", "1", "7", "8", "15", "63", "100", "-1", "4294967296", "x", "#1", "#-1", "1000"])
        if roll == 0:
            return "exact", ["SETBIT", k, self.c(["0", "1", "7", "8", "33", "100", "-1", "4294967296", "x"]), self.c(["0", "1", "2"])]
        if roll == 1:
            return "exact", ["GETBIT", k, self.c(["0", "1", "7", "100", "-1"])]
        if roll == 2:
            a = ["BITCOUNT", k]
            if self.p(0.7):
                a += [self.int(), self.int()]
                if self.p(0.5):
                    a.append(self.c(["BYTE", "BIT", "bit", "WORD"]))
            return "exact", a
        if roll == 3:
            a = ["BITPOS", k, self.c(["0", "1", "2"])]
            for _ in range(self.r.randint(0, 2)):
                a.append(self.int())
            if len(a) == 5 and self.p(0.5):
                a.append(self.c(["BYTE", "BIT"]))
            return "exact", a
        if roll == 4:
            op = self.c(["AND", "OR", "XOR", "NOT", "and", "DIFF"])
            return "exact", ["BITOP", op, self.key()] + self.keys(1, 1 if op == "NOT" and self.p(0.8) else 3)
        if roll in (5, 6):
            a = [self.c(["BITFIELD", "BITFIELD", "BITFIELD_RO"]), k]
            for _ in range(self.r.randint(1, 3)):
                t = self.c(["u8", "i8", "u1", "i64", "u63", "u64", "i5", "u16", "x8", "i0"])
                sub = self.r.randrange(4)
                if sub == 0:
                    a += ["GET", t, off()]
                elif sub == 1:
                    a += ["SET", t, off(), self.int()]
                elif sub == 2:
                    a += ["INCRBY", t, off(), self.int()]
                else:
                    a += ["OVERFLOW", self.c(["WRAP", "SAT", "FAIL", "wrap", "BAD"])]
            return "exact", a
        if roll == 7:
            if self.p(0.3):
                return "exact", ["SET", k, "".join(chr(self.r.randrange(128)) for _ in range(self.r.randint(1, 40)))]
            return "exact", ["SET", k, self.c(["\xff\xf0\x00", "foobar", "", "\x00\x00\x01"])]
        if roll == 8:
            return "exact", ["GET", k]
        if roll == 9:
            return "exact", ["APPEND", k, self.value()]
        if roll == 10:
            return "exact", ["SETRANGE", k, self.c(["0", "2", "10"]), self.value()]
        if roll == 11:
            # Field positions and overflow at the edges of the types.
            t = self.c(["u63", "i64", "i63", "u1", "i1", "u32", "i32", "i9"])
            o = self.c(["0", "1", "63", "64", "#0", "#1", "#2", "#9", "9223372036854775807", "#4611686018427387904",
                        "4000", "17179869184"])
            v = self.c(["9223372036854775807", "-9223372036854775808", "4611686018427387904", "-1", "1", "255",
                        "18446744073709551615", "0x10"])
            a = ["BITFIELD", k]
            if self.p(0.6):
                a += ["OVERFLOW", self.c(["WRAP", "SAT", "FAIL"])]
            a += self.c([["INCRBY", t, o, v], ["SET", t, o, v], ["GET", t, o]])
            if self.p(0.4):
                a += self.c([["INCRBY", t, o, v], ["GET", t, "0"]])
            return "exact", a
        if roll == 12:
            a = ["BITPOS", k, self.c(["0", "1"]), self.c(["0", "-1", "2", "-100", "100"]),
                 self.c(["-1", "0", "7", "100", "-9223372036854775808", "9223372036854775807"]), self.c(["BIT", "BYTE"])]
            return "exact", a
        return "exact", ["STRLEN", k]

    # --- lists ---------------------------------------------------------------------------------
    def gen_lists(self):
        k = self.key()
        roll = self.r.randrange(28)
        if roll in (0, 1):
            return "exact", [self.c(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]), k] + self.members()
        if roll == 2:
            a = [self.c(["LPOP", "RPOP"]), k]
            if self.p(0.5):
                a.append(self.c(["0", "1", "2", "5", "-1", "x", "100"]))
            return "exact", a
        if roll == 3:
            return "exact", ["LLEN", k]
        if roll == 4:
            return "exact", ["LINDEX", k, self.int()]
        if roll == 5:
            return "exact", ["LSET", k, self.c(SMALL), self.member()]
        if roll in (6, 7):
            return "exact", ["LRANGE", k, self.int(), self.int()]
        if roll == 8:
            return "exact", ["LTRIM", k, self.int(), self.int()]
        if roll == 9:
            return "exact", ["LREM", k, self.c(SMALL), self.member()]
        if roll == 10:
            return "exact", ["LINSERT", k, self.c(["BEFORE", "AFTER", "before", "MIDDLE"]), self.member(), self.member()]
        if roll == 11:
            a = ["LPOS", k, self.member()]
            if self.p(0.4):
                a += ["RANK", self.c(["1", "-1", "2", "0", "-2", "-9223372036854775808"])]
            if self.p(0.4):
                a += ["COUNT", self.c(["0", "1", "2", "-1"])]
            if self.p(0.3):
                a += ["MAXLEN", self.c(["0", "1", "3", "-1"])]
            return "exact", a
        if roll == 12:
            return "exact", ["LMOVE", self.key(), self.key(), self.c(["LEFT", "RIGHT"]), self.c(["LEFT", "RIGHT", "UP"])]
        if roll == 13:
            return "exact", ["RPOPLPUSH", self.key(), self.key()]
        if roll == 14:
            ks = self.keys(1, 3)
            a = ["LMPOP", self.c([str(len(ks)), str(len(ks)), "0", str(len(ks) + 1)])] + ks + [self.c(["LEFT", "RIGHT"])]
            if self.p(0.5):
                a += ["COUNT", self.c(["1", "2", "10", "0", "-1"])]
            return "exact", a
        if roll == 15:
            ks = self.keys(1, 2)
            return "exact", [self.c(["BLPOP", "BRPOP"])] + ks + [self.c(["0.01", "-1", "x"])]
        if roll == 16:
            return "exact", ["BLMOVE", self.key(), self.key(), "LEFT", "RIGHT", self.c(["0.01", "-1"])]
        if roll == 17:
            return "exact", ["OBJECT", "ENCODING", k]
        if roll == 18:
            return "exact", ["LPUSH", k] + ["e%d" % i for i in range(self.c([5, 129, 200]))]
        if roll == 19:
            return "exact", ["DEL", k]
        if roll == 20:
            return "exact", ["SORT", k] + self.c([[], ["ALPHA"], ["DESC"], ["LIMIT", "0", "2"], ["ALPHA", "DESC", "LIMIT", "1", "-1"]])
        if roll == 21:
            # Elements near and past the 8 kB node size (list-max-listpack-size -2): quicklist by size.
            # (No LSET: 7.2.4 replaces an element inside its node whatever its size, where Valkey
            # moves one that overflows the node to a node of its own; encodings then differ.)
            big = self.c(["x" * 3000, "y" * 5000, "z" * 9000, "w" * 8180])
            cmd = self.c(["RPUSH", "LPUSH", "LINSERT"])
            rest = {"RPUSH": [big], "LPUSH": [big], "LINSERT": [self.c(["BEFORE", "AFTER"]), self.member(), big]}[cmd]
            return "exact", [cmd, k] + rest
        if roll == 22:
            # Shrinking a quicklist: it turns back into a listpack below half the limits.
            return "exact", self.c([["LTRIM", k, self.c(["0", "1", "-3"]), self.c(["1", "5", "60", "-1", "-70"])],
                                    [self.c(["LPOP", "RPOP"]), k, self.c(["30", "64", "70", "100", "128"])],
                                    ["LREM", k, self.c(["0", "-2", "3"]), self.c(["e1", "e2", "x" * 3000])]])
        if roll == 23:
            a = ["BLMPOP", "0.01", str(self.r.randint(1, 2))]
            a += self.keys(int(a[2]), int(a[2])) + [self.c(["LEFT", "RIGHT"])]
            if self.p(0.5):
                a += ["COUNT", self.c(["1", "3", "100"])]
            return "exact", a
        if roll == 24:
            return "exact", ["BRPOPLPUSH", self.key(), self.key(), "0.01"]
        if roll == 25:
            return "exact", ["LRANGE", k, "0", "-1"]
        if roll == 26:
            return "exact", ["LINDEX", k, self.c(["0", "-1", "64", "127", "128", "-129"])]
        return "exact", ["TYPE", k]

    # --- hashes --------------------------------------------------------------------------------
    def gen_hashes(self):
        k = self.key()
        roll = self.r.randrange(25)
        field = self.member
        if roll in (0, 1):
            a = [self.c(["HSET", "HMSET"]), k]
            n = self.r.randint(1, 3) if not self.p(0.04) else 130
            for i in range(n):
                a += [field() if n < 100 else "f%d" % i, self.value()]
            return "exact", a
        if roll == 2:
            return "exact", ["HSETNX", k, field(), self.value()]
        if roll == 3:
            return "exact", ["HGET", k, field()]
        if roll == 4:
            return "exact", ["HMGET", k] + self.members()
        if roll == 5:
            return "exact", ["HDEL", k] + self.members()
        if roll == 6:
            return "exact", ["HLEN", k]
        if roll == 7:
            return "exact", ["HSTRLEN", k, field()]
        if roll == 8:
            return "exact", ["HEXISTS", k, field()]
        if roll == 9:
            return "exact", ["HINCRBY", k, field(), self.int()]
        if roll == 10:
            return "exact", ["HINCRBYFLOAT", k, field(), self.float()]
        if roll == 11:
            return "unordered", [self.c(["HKEYS", "HVALS"]), k]
        if roll == 12:
            return "pairs", ["HGETALL", k]
        if roll == 13:
            a = ["HSCAN", k, "0"]
            if self.p(0.3):
                a += ["MATCH", self.c(["*", "a*", "1?", "[a-c]*"])]
            if self.p(0.3):
                a += ["COUNT", self.c(["1", "10", "1000"])]
            return "scan", a
        if roll == 14:
            return "exact", ["OBJECT", "ENCODING", k]
        if roll == 15:
            return "skip", ["HRANDFIELD", k] + self.c([[], ["2"], ["-3", "WITHVALUES"]])
        if roll == 16:
            return "exact", ["HRANDFIELD", k, self.c(["0", "x", "-9223372036854775808", "1 "])]
        if roll == 17:
            return "exact", ["DEL", k]
        if roll == 18:
            return "exact", ["HSET", k, "n", self.c(["1", "-1", "9223372036854775807", "1.5", "x", "1e5"])]
        if roll == 20:
            # A value or field past hash-max-listpack-value (64) makes a hashtable; 64 itself does not.
            long = self.c(["v" * 64, "v" * 65, "f" * 64, "f" * 65])
            return "exact", self.c([["HSET", k, long, "1"], ["HSET", k, field(), long], ["HSETNX", k, long, long],
                                    ["HINCRBY", k, long, "1"], ["HINCRBYFLOAT", k, long, "1.5"]])
        if roll == 21:
            return "exact", ["HINCRBYFLOAT", k, "n", self.c(["0.1", "-0.1", "1e308", "5e-324", "1e-310", "-1e400",
                                                           "1.7976931348623157e308", "3.0000000000000004", "10.5"])]
        if roll == 22:
            # The field "n" as a listpack integer, then changed by HINCRBY/HINCRBYFLOAT and read back.
            return "exact", [self.c(["HGET", "HSTRLEN"]), k, "n"]
        if roll == 23:
            return "pairs", ["HGETALL", k]
        if roll == 24:
            return "exact", ["HMGET", k, "n"] + self.members(1, 2)
        return "exact", ["HINCRBY", k, "n", self.c(["1", "9223372036854775807", "-9223372036854775808"])]

    # --- sets ----------------------------------------------------------------------------------
    def gen_sets(self):
        k = self.key()
        roll = self.r.randrange(27)
        if roll in (0, 1, 2):
            return "exact", ["SADD", k] + self.members()
        if roll == 3:
            return "exact", ["SREM", k] + self.members()
        if roll == 4:
            return "exact", ["SCARD", k]
        if roll == 5:
            return "exact", ["SISMEMBER", k, self.member()]
        if roll == 6:
            return "exact", ["SMISMEMBER", k] + self.members()
        if roll == 7:
            return "unordered", ["SMEMBERS", k]
        if roll == 8:
            return "unordered", [self.c(["SINTER", "SUNION", "SDIFF"])] + self.keys(1, 3)
        if roll == 9:
            return "exact", [self.c(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), self.key()] + self.keys(1, 3)
        if roll == 10:
            ks = self.keys(1, 3)
            a = ["SINTERCARD", self.c([str(len(ks)), str(len(ks)), "0", "-1"])] + ks
            if self.p(0.4):
                a += ["LIMIT", self.c(["0", "1", "2", "-1"])]
            return "exact", a
        if roll == 11:
            return "exact", ["SMOVE", self.key(), self.key(), self.member()]
        if roll == 12:
            return "skip", ["SRANDMEMBER", k] + self.c([[], ["2"], ["-2"]])
        if roll == 13:
            return "exact", [self.c(["SPOP", "SRANDMEMBER"]), k, self.c(["0", "x", "-9223372036854775808"])]
        if roll == 14:
            return "exact", ["OBJECT", "ENCODING", k]
        if roll == 15:
            return "exact", ["SADD", k] + [str(i) for i in range(self.c([3, 129, 513, 520]))]
        if roll == 16:
            a = ["SSCAN", k, "0"]
            if self.p(0.3):
                a += ["MATCH", self.c(["*", "a*", "1*"])]
            return "scan", a
        if roll == 17:
            return "exact", ["DEL", k]
        if roll == 18:
            return "exact", ["SORT", k] + self.c([[], ["ALPHA"], ["DESC", "ALPHA"], ["LIMIT", "0", "3", "ALPHA"]])
        if roll == 20:
            # Integers an intset holds in 16, 32 and 64 bits, and strings that look like integers but are not.
            return "exact", ["SADD", k] + [self.c(["40000", "-40000", "3000000000", "-9223372036854775808",
                                                   "9223372036854775807", "007", "+5", "1.0", "-0", "0"])
                                           for _ in range(self.r.randint(1, 4))]
        if roll == 21:
            # A count at least the set's size pops (or returns) the whole set: no randomness.
            return "unordered", ["SPOP", k, self.c(["100000", "2000000"])]
        if roll == 22:
            return "exact", ["SADD", k] + ["p%d" % i for i in range(self.c([100, 127, 128, 129]))]
        if roll == 23:
            return "exact", ["SMOVE", self.key(), self.key(), self.c(["0", "5", "x", "9223372036854775807", "m" * 65])]
        if roll == 24:
            return "exact", [self.c(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), self.key()] + self.keys(1, 3)
        if roll == 25:
            return "exact", ["SREM", k] + [str(i) for i in range(self.c([10, 400, 510]))]
        return "exact", ["SCARD", k]

    # --- sorted sets ---------------------------------------------------------------------------
    def score(self):
        return self.c(SMALL + ["1.5", "-2.5", "inf", "-inf", "0.1", "1e300"]) if self.p(0.9) else self.c(FLOATS)

    def zrange_bound(self):
        return self.c(["-inf", "+inf", "0", "1", "(1", "2", "(2.5", "5", "(0", "-1", "x", "(", "10"])

    def lex_bound(self):
        return self.c(["-", "+", "[a", "(a", "[c", "(d", "[", "a", "[1", "(10", "[\xff"])

    def gen_zsets(self):
        k = self.key()
        roll = self.r.randrange(28)
        if roll in (0, 1, 2):
            a = ["ZADD", k]
            for opt in ("NX", "XX", "GT", "LT", "CH", "INCR"):
                if self.p(0.12):
                    a.append(opt)
            n = self.r.randint(1, 3) if not self.p(0.04) else 130
            for i in range(n):
                a += [self.score() if n < 100 else str(i), self.member() if n < 100 else "e%d" % i]
            return "exact", a
        if roll == 3:
            return "exact", ["ZINCRBY", k, self.score(), self.member()]
        if roll == 4:
            return "exact", ["ZSCORE", k, self.member()]
        if roll == 5:
            return "exact", ["ZMSCORE", k] + self.members()
        if roll == 6:
            return "exact", ["ZCARD", k]
        if roll == 7:
            return "exact", ["ZCOUNT", k, self.zrange_bound(), self.zrange_bound()]
        if roll == 8:
            return "exact", ["ZLEXCOUNT", k, self.lex_bound(), self.lex_bound()]
        if roll in (9, 10):
            by = self.r.randrange(3)
            if by == 0:
                a = ["ZRANGE", k, self.int(), self.int()]
            elif by == 1:
                a = ["ZRANGE", k, self.zrange_bound(), self.zrange_bound(), "BYSCORE"]
            else:
                a = ["ZRANGE", k, self.lex_bound(), self.lex_bound(), "BYLEX"]
            if self.p(0.3):
                a.append("REV")
            if self.p(0.3):
                a += ["LIMIT", self.c(["0", "1", "-1"]), self.c(["1", "2", "-1", "0"])]
            if self.p(0.4):
                a.append("WITHSCORES")
            if self.p(0.05):
                a.append(self.c(["REV", "BYLEX", "BYSCORE"]))
            return "exact", a
        if roll == 11:
            cmd = self.c(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"])
            a = [cmd, k, self.zrange_bound(), self.zrange_bound()]
            if self.p(0.4):
                a.append("WITHSCORES")
            if self.p(0.3):
                a += ["LIMIT", self.c(["0", "1", "-1"]), self.c(["1", "2", "-1"])]
            return "exact", a
        if roll == 12:
            a = [self.c(["ZRANGEBYLEX", "ZREVRANGEBYLEX"]), k, self.lex_bound(), self.lex_bound()]
            if self.p(0.3):
                a += ["LIMIT", self.c(["0", "1"]), self.c(["1", "-1"])]
            return "exact", a
        if roll == 13:
            a = [self.c(["ZRANK", "ZREVRANK"]), k, self.member()]
            if self.p(0.4):
                a.append("WITHSCORE")
            return "exact", a
        if roll == 14:
            return "exact", ["ZREM", k] + self.members()
        if roll == 15:
            return "exact", self.c([["ZREMRANGEBYRANK", k, self.int(), self.int()],
                                    ["ZREMRANGEBYSCORE", k, self.zrange_bound(), self.zrange_bound()],
                                    ["ZREMRANGEBYLEX", k, self.lex_bound(), self.lex_bound()]])
        if roll == 16:
            a = [self.c(["ZPOPMIN", "ZPOPMAX"]), k]
            if self.p(0.5):
                a.append(self.c(["0", "1", "2", "-1", "10"]))
            return "exact", a
        if roll == 17:
            ks = self.keys(1, 3)
            a = ["ZMPOP", self.c([str(len(ks)), str(len(ks)), "0"])] + ks + [self.c(["MIN", "MAX"])]
            if self.p(0.5):
                a += ["COUNT", self.c(["1", "3", "0", "-1"])]
            return "exact", a
        if roll in (18, 19):
            cmd = self.c(["ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"])
            ks = self.keys(1, 3, "zsets" if self.p(0.8) else "sets")
            a = [cmd] + ([self.key()] if cmd.endswith("STORE") else []) + [str(len(ks))] + ks
            if cmd != "ZDIFF" and cmd != "ZDIFFSTORE":
                if self.p(0.3):
                    a += ["WEIGHTS"] + [self.c(["1", "2", "-1", "0", "1.5", "inf", "x"]) for _ in ks]
                if self.p(0.3):
                    a += ["AGGREGATE", self.c(["SUM", "MIN", "MAX", "AVG"])]
            if not cmd.endswith("STORE") and self.p(0.5):
                a.append("WITHSCORES")
            return "exact", a
        if roll == 20:
            ks = self.keys(1, 3)
            a = ["ZINTERCARD", str(len(ks))] + ks
            if self.p(0.4):
                a += ["LIMIT", self.c(["0", "1", "-1"])]
            return "exact", a
        if roll == 21:
            a = ["ZRANGESTORE", self.key(), k]
            by = self.r.randrange(3)
            if by == 0:
                a += [self.zrange_bound(), self.zrange_bound(), "BYSCORE"]
            elif by == 1:
                a += [self.lex_bound(), self.lex_bound(), "BYLEX"]
            else:
                a += [self.int(), self.int()]
            if self.p(0.3):
                a.append("REV")
            if self.p(0.3):
                a += ["LIMIT", "0", self.c(["1", "-1"])]
            return "exact", a
        if roll == 22:
            return "exact", ["OBJECT", "ENCODING", k]
        if roll == 23:
            return "scan", ["ZSCAN", k, "0"]
        if roll == 24:
            return "exact", ["DEL", k]
        if roll == 25:
            return "exact", ["ZRANDMEMBER", k, self.c(["0", "x", "-9223372036854775808"])]
        if roll == 26:
            return "exact", ["ZADD", k] + sum(([self.c(["0", "1"]), self.c("abcdef")] for _ in range(3)), [])
        return "exact", ["SORT", k] + self.c([[], ["ALPHA"], ["DESC"], ["BY", "nosort"], ["BY", "nosort", "DESC"]])

    # --- streams -------------------------------------------------------------------------------
    # Explicit IDs only (never a bare `*`, whose ID is the clock): every reply but idle times, seen
    # and active times and delivery times is then deterministic.
    def sid(self):
        return self.c(["0-0", "0-1", "1-0", "1-1", "2-0", "3-5", "5-0", "10-1", "-", "+", "$", "1", "(1-1",
                       "18446744073709551615-18446744073709551615", "x", "1-*", "(5", "7", "20-0", "(0-0",
                       "(18446744073709551615-18446744073709551615", "18446744073709551615", "-1", "1-"])

    def stream_value(self):
        # Now and then a value big enough to fill a 4096-byte node in a few entries, so that streams
        # span several nodes and approximate trimming has whole nodes to drop.
        return "w" * self.c([1500, 2000]) if self.p(0.08) else self.value()

    def trim_opt(self):
        a = [self.c(["MAXLEN", "MINID", "maxlen"])]
        if self.p(0.6):
            a.append(self.c(["=", "~", "~"]))
        a.append(self.c(["0", "1", "2", "3", "5", "2-0", "3-0", "10-0", "-1", "x"]))
        if self.p(0.25):
            a += ["LIMIT", self.c(["0", "1", "2", "10", "100", "-1"])]
        return a

    def gen_streams(self):
        k = self.key()
        g = self.c(["g1", "g2"])
        cons = self.c(["c1", "c2", "c3"])
        roll = self.r.randrange(40)
        if roll < 6:
            a = ["XADD", k]
            if self.p(0.1):
                a.append("NOMKSTREAM")
            if self.p(0.25):
                a += self.trim_opt()
            ms = self.r.randint(1, 40)
            if self.p(0.03):
                # The top of the ID space: what follows it must fail as exhausted.
                a.append(self.c(["18446744073709551615-18446744073709551615", "18446744073709551615-*",
                                 "18446744073709551615", "18446744073709551616-0", "1-18446744073709551616"]))
            else:
                a.append(self.c(["%d-%d" % (ms, self.r.randint(0, 3)), "%d-*" % ms, "%d" % ms, "0-0", "0-1", "x",
                                 "%d-0" % ms, "%d-*" % ms, "0-*"]))
            for _ in range(self.r.randint(1, 3) if not self.p(0.05) else 0):
                a += [self.c(["f", "g", "h"]), self.stream_value()]
            return "exact", a
        if roll == 6:
            return "exact", [self.c(["XLEN", "TYPE", "EXISTS"]), k]
        if roll in (7, 8):
            a = [self.c(["XRANGE", "XREVRANGE"]), k, self.sid(), self.sid()]
            if self.p(0.4):
                a += ["COUNT", self.c(["0", "1", "2", "-1", "3"])]
            return "exact", a
        if roll == 9:
            return "exact", ["XDEL", k] + [self.sid() for _ in range(self.r.randint(1, 3))]
        if roll == 10:
            return "exact", ["XTRIM", k] + self.trim_opt()
        if roll == 11:
            a = ["XSETID", k, self.sid()]
            if self.p(0.4):
                a += ["ENTRIESADDED", self.c(["0", "1", "5", "100", "-1", "x"])]
            if self.p(0.4):
                a += ["MAXDELETEDID", self.sid()]
            return "exact", a
        if roll == 12:
            a = ["XREAD"]
            if self.p(0.5):
                a += ["COUNT", self.c(["1", "2", "0", "-1"])]
            ks = self.keys(1, 2)
            # '+' (Redis 7.4 / Valkey 8, refused by 7.2) ends a round as a known difference: kept rare.
            a += ["STREAMS"] + ks + [self.c(["0", "0-0", "1-1", "3", "$", "(1", "5-0", "20"]) if self.p(0.95) else "+"
                                     for _ in ks]
            return "exact", a
        if roll in (13, 14, 15):
            sub = self.r.randrange(7)
            if sub == 0:
                a = ["XGROUP", "CREATE", k, g, self.c(["0", "$", "1-1", "5", "0-0", "x", "-", "+"])]
                if self.p(0.4):
                    a.append("MKSTREAM")
                if self.p(0.4):
                    a += ["ENTRIESREAD", self.c(["0", "1", "2", "3", "-1", "-2", "100", "x"])]
            elif sub == 1:
                a = ["XGROUP", "SETID", k, g, self.c(["0", "$", "2-0", "5", "1-1", "100"])]
                if self.p(0.4):
                    a += ["ENTRIESREAD", self.c(["0", "1", "2", "-1", "-2", "50"])]
            elif sub == 2:
                a = ["XGROUP", "DESTROY", k, g]
            elif sub == 3:
                a = ["XGROUP", "CREATECONSUMER", k, g, cons]
            elif sub == 4:
                a = ["XGROUP", "DELCONSUMER", k, g, cons]
            elif sub == 5:
                a = ["XGROUP", self.c(["HELP", "help", "NOPE", "CREATE"])]
            else:
                a = ["XINFO", self.c(["HELP", "NOPE", "STREAM", "GROUPS"])]
            return "exact", a
        if roll in (16, 17, 18):
            a = ["XREADGROUP", "GROUP", g, cons]
            if self.p(0.5):
                a += ["COUNT", self.c(["1", "2", "10", "0"])]
            if self.p(0.2):
                a.append("NOACK")
            ks = [k] if self.p(0.8) else self.keys(2, 2)
            a += ["STREAMS"] + ks + [self.c([">", ">", ">", "0", "1-1", "(1", "$"]) for _ in ks]
            return "exact", a
        if roll == 19:
            return "exact", ["XACK", k, g] + [self.sid() for _ in range(self.r.randint(1, 3))]
        if roll == 20:
            return "exact", ["XPENDING", k, g]
        if roll == 21:
            # The extended form carries idle times: run, not compared.
            a = ["XPENDING", k, g]
            if self.p(0.3):
                a += ["IDLE", self.c(["0", "3600000", "-1"])]
            a += [self.sid(), self.sid(), self.c(["10", "1", "0", "-1"])]
            if self.p(0.3):
                a.append(cons)
            return "skip", a
        if roll in (22, 23, 24):
            a = ["XCLAIM", k, g, cons, self.c(["0", "0", "3600000", "-1", "x"])]
            a += [self.sid() for _ in range(self.r.randint(1, 3))]
            for _ in range(self.r.randint(0, 3)):
                opt = self.c(["IDLE", "TIME", "RETRYCOUNT", "FORCE", "JUSTID", "LASTID"])
                a.append(opt)
                if opt == "IDLE":
                    a.append(self.c(["0", "7200000", "-5", "x"]))
                elif opt == "TIME":
                    # TIME 1 makes the entry idle for decades; a future time is taken as now.
                    a.append(self.c(["1", "0", "-1", "99999999999999"]))
                elif opt == "RETRYCOUNT":
                    a.append(self.c(["0", "5", "-1", "x"]))
                elif opt == "LASTID":
                    a.append(self.sid())
            return "exact", a
        if roll in (25, 26):
            a = ["XAUTOCLAIM", k, g, cons, self.c(["0", "0", "3600000", "-1"]), self.c(["0", "0-0", "2-0", "-", "(1", "x"])]
            if self.p(0.4):
                a += ["COUNT", self.c(["1", "2", "0", "-1", "3", "576460752303423487", "576460752303423488",
                                       "9223372036854775807"])]
            if self.p(0.5):
                a.append("JUSTID")
            return "exact", a
        if roll in (27, 28):
            return "exact", ["XINFO", "GROUPS", k]
        if roll in (29, 30):
            # Without FULL every field is deterministic when no ID came from the clock.
            return "exact", ["XINFO", "STREAM", k]
        if roll == 31:
            a = ["XINFO", "STREAM", k, "FULL"]
            if self.p(0.4):
                a += ["COUNT", self.c(["0", "1", "-1"])]
            return "skip", a
        if roll == 32:
            return "skip", ["XINFO", "CONSUMERS", k, g]
        if roll == 33:
            return "exact", ["DEL", k]
        if roll == 34:
            return "exact", ["OBJECT", "ENCODING", k]
        if roll == 35:
            # A copy has its own groups, consumers and pending lists.
            a = ["COPY", k, self.key()]
            if self.p(0.5):
                a.append("REPLACE")
            return "exact", a
        if roll == 36:
            return "exact", ["RENAME", k, self.key()]
        if roll == 37 and self.p(0.15):
            # Blocking for a millisecond when nothing is there: run for its effects (the consumer it
            # creates), not compared, so that no perturbed timeout of 0 can block for ever. Rare: a
            # server notices the timeout at its next cron tick, up to 100 ms later.
            if self.p(0.5):
                return "skip", ["XREAD", "COUNT", "2", "BLOCK", "1", "STREAMS", k, self.c(["$", "0", "5-0"])]
            return "skip", ["XREADGROUP", "GROUP", g, cons, "BLOCK", "1"] + (["NOACK"] if self.p(0.3) else []) + \
                ["STREAMS", k, self.c([">", "0"])]
        return "exact", ["XRANGE", k, "-", "+"]

    # --- HyperLogLog ---------------------------------------------------------------------------
    def gen_hll(self):
        k = self.key()
        roll = self.r.randrange(12)
        if roll in (0, 1, 2):
            n = self.r.randint(0, 4) if not self.p(0.1) else self.c([300, 2000])
            return "exact", ["PFADD", k] + (["%s%d" % (k, self.r.randint(0, 10 ** 6)) for _ in range(n)])
        if roll == 3:
            return "exact", ["PFCOUNT"] + self.keys(1, 3)
        if roll == 4:
            return "exact", ["PFMERGE", self.key()] + self.keys(0, 3)
        if roll == 5:
            return "exact", ["GET", k]
        if roll == 6:
            return "exact", ["DEL", k]
        if roll == 7:
            # PFDEBUG shows the registers and the encoding; TODENSE converts.
            sub = self.c(["GETREG", "ENCODING", "TODENSE", "DECODE", "encoding", "BAD"])
            return "exact", ["PFDEBUG", sub, k] + (["x"] if self.p(0.05) else [])
        if roll == 8:
            # Damage a sketch: its header (magic, encoding, cached cardinality) or its registers.
            return "exact", self.c([["SETRANGE", k, self.c(["0", "3", "4", "8", "15", "16", "17", "30"]),
                                     self.c(["\x00", "\x01", "\x02", "\xff\xff", "\x7f", "Z", "\x80"])],
                                    ["APPEND", k, self.c(["x", "\x00" * 3])],
                                    ["SET", k, self.c(["HYLL", "HYLL\x01\x00\x00\x00", "HYLL\x00\x00\x00\x00" + "\x00" * 8])]])
        if roll == 9:
            return "exact", ["PFADD", k] + self.c([[], ["a"], ["a", "b", "a"]])
        if roll == 10:
            return "exact", ["OBJECT", "ENCODING", k]
        return "exact", ["SET", k, self.value()]

    # --- GEO -----------------------------------------------------------------------------------
    def gen_geo(self):
        k = self.key()
        roll = self.r.randrange(12)
        lon = lambda: self.c(["13.361389", "15.087269", "-122.4194", "0", "180", "-180", "181", "2.3522", "x", "-0.1278"])
        lat = lambda: self.c(["38.115556", "37.502669", "37.7749", "0", "85.05112878", "85.06", "-85", "48.8566", "51.5074"])
        if roll in (0, 1, 2):
            a = ["GEOADD", k]
            for opt in ("NX", "XX", "CH"):
                if self.p(0.1):
                    a.append(opt)
            for _ in range(self.r.randint(1, 3)):
                a += [lon(), lat(), self.c(["Palermo", "Catania", "SF", "Paris", "London", "a", "b"])]
            return "exact", a
        if roll == 3:
            return "exact", ["GEOPOS", k] + [self.c(["Palermo", "Catania", "SF", "x"]) for _ in range(2)]
        if roll == 4:
            a = ["GEODIST", k, self.c(["Palermo", "SF", "Paris"]), self.c(["Catania", "London", "x"])]
            if self.p(0.5):
                a.append(self.c(["m", "km", "mi", "ft", "KM", "yd"]))
            return "exact", a
        if roll == 5:
            return "exact", ["GEOHASH", k] + [self.c(["Palermo", "Catania", "SF", "x"]) for _ in range(2)]
        if roll in (6, 7, 8):
            store = self.p(0.2)
            a = ["GEOSEARCHSTORE", self.key(), k] if store else ["GEOSEARCH", k]
            if self.p(0.5):
                a += ["FROMMEMBER", self.c(["Palermo", "Paris", "x"])]
            else:
                a += ["FROMLONLAT", lon(), lat()]
            if self.p(0.5):
                a += ["BYRADIUS", self.c(["10", "200", "5000", "0", "-1"]), self.c(["km", "m", "mi"])]
            else:
                a += ["BYBOX", self.c(["400", "10000"]), self.c(["400", "20"]), self.c(["km", "m"])]
            sort = self.p(0.7)
            if sort:
                a.append(self.c(["ASC", "DESC"]))
            if self.p(0.3):
                a += ["COUNT", self.c(["1", "2", "0"])] + (["ANY"] if self.p(0.3) else [])
            if not store:
                for opt in ("WITHCOORD", "WITHDIST", "WITHHASH"):
                    if self.p(0.3):
                        a.append(opt)
            elif self.p(0.3):
                a.append("STOREDIST")
            return ("exact" if sort or store else "unordered"), a
        if roll == 9:
            a = [self.c(["GEORADIUS", "GEORADIUS_RO"]), k, lon(), lat(), self.c(["200", "5000"]), "km", self.c(["ASC", "DESC"])]
            if self.p(0.4):
                a.append("WITHDIST")
            return "exact", a
        if roll == 10:
            return "exact", ["ZRANGE", k, "0", "-1", "WITHSCORES"]
        return "exact", ["DEL", k]

    # --- generic keyspace ----------------------------------------------------------------------
    def gen_keys(self):
        k = self.key()
        roll = self.r.randrange(30)
        if roll >= 20:
            return self.keys_more(k, roll)
        if roll == 0:
            return "exact", [self.c(["RENAME", "RENAMENX"]), k, self.key()]
        if roll == 1:
            a = ["COPY", k, self.key()]
            if self.p(0.3):
                a += ["DB", self.c(["0", "9", "1", "x"])]
            if self.p(0.4):
                a.append("REPLACE")
            return "exact", a
        if roll == 2:
            a = [self.c(["EXPIRE", "PEXPIRE"]), k, self.c(["1000", "100000", "0", "-1", "x", "9223372036854775807"])]
            if self.p(0.4):
                a.append(self.c(["NX", "XX", "GT", "LT", "BAD"]))
            return "exact", a
        if roll == 3:
            a = [self.c(["EXPIREAT", "PEXPIREAT"]), k, self.c(["1", "4102444800", "4102444800000", "0"])]
            if self.p(0.3):
                a.append(self.c(["NX", "XX", "GT", "LT"]))
            return "exact", a
        if roll == 4:
            return "exact", ["PERSIST", k]
        if roll == 5:
            return "ttl", [self.c(["TTL", "PTTL"]), k]
        if roll == 6:
            return "ttl", [self.c(["EXPIRETIME", "PEXPIRETIME"]), k]
        if roll == 7:
            return "exact", ["TYPE", k]
        if roll == 8:
            return "exact", ["OBJECT", "ENCODING", k]
        if roll == 9:
            return "exact", [self.c(["DEL", "UNLINK", "EXISTS", "TOUCH"])] + self.keys(1, 3)
        if roll == 10:
            return "unordered", ["KEYS", self.c(["*", "s*", "?1", "[a-h]1", "*1"])]
        if roll == 11:
            return "exact", ["DBSIZE"]
        if roll in (12, 13):
            a = [self.c(["SORT", "SORT", "SORT_RO"]), k]
            if self.p(0.3):
                a += ["BY", self.c(["nosort", "w_*", "h1->*", "*"])]
            if self.p(0.4):
                a += ["LIMIT", self.c(["0", "1", "-1", "3", "20"]), self.c(["2", "10", "-1", "1", "5"])]
            for _ in range(self.r.randint(0, 2)):
                a += ["GET", self.c(["#", "w_*", "h1->f*", "*"])]
            if self.p(0.3):
                a.append(self.c(["ASC", "DESC"]))
            if self.p(0.4):
                a.append("ALPHA")
            if a[0] == "SORT" and self.p(0.2):
                a += ["STORE", self.key()]
            # 7.2.4 reads a sorted set's elements from its dict (in a random order: the hash
            # seed is random) before sorting, and equal ALPHA weights from a BY pattern keep that
            # order: sort by a pattern alphabetically only the keys that hold lists and small sets
            # here (any other may hold a copied or renamed sorted set); numeric ties go by element.
            # Where this round's sets may be hash tables (varied thresholds, or a large set made
            # here), no key is safe: no ALPHA by a pattern, and no `BY nosort` (a set's own order).
            if (k not in ("l1", "t1") or not self.orders_known()) and "ALPHA" in a and "BY" in a \
                    and "*" in a[a.index("BY") + 1]:
                a.remove("ALPHA")
            if "nosort" in a and not self.orders_known():
                a.remove("BY")
                a.remove("nosort")
            return "exact", a
        if roll == 14:
            # Weights as SORT reads them (strtod: blanks first, "" is 0, up to a NUL), and
            # equal ones, which an ALPHA sort with a LIMIT leaves in its partial quicksort's order.
            w = lambda: self.c(["3", "1", "x", "2", "-1", "5", "", " ", " 2", "\t-3", "2 ", "1\x00x", "1e3", "inf", "-inf",
                                "nan", "+4", ".5", "a", "a\x00b", "a\x00c"])
            return "exact", ["MSET", "w_1", w(), "w_a", self.c(["2", "-1", w()]), "w_b", self.c(["5", w()]), "w_c", w(),
                             "w_2", w()]
        if roll == 15:
            if self.p(0.4):
                return "exact", ["RPUSH", "l1"] + [self.c(["a", "b", "c", "d", "1", "2", "3", "e"])
                                                   for _ in range(self.r.randint(6, 45))]
            return "exact", ["RPUSH", "l1"] + self.c([["3", "1", "2"], ["a", "b", "1"], ["b", "a", "c"]])
        if roll == 16:
            return "exact", ["SADD", "t1"] + self.c([["3", "1", "2"], ["a", "b"]])
        if roll == 17:
            return "exact", ["ZADD", "z1", "1", "a", "2", "b", "0", "c"]
        if roll == 18:
            return "exact", ["HSET", "h1", "fa", "1", "fb", "2"]
        if roll == 19:
            return "exact", self.c([["MOVE", k, self.c(["1", "0", "x", "16"])], ["RENAME", k, k], ["RENAMENX", k, k],
                                    ["OBJECT", "FREQ", k], ["OBJECT", "REFCOUNT", k],
                                    [self.c(["EXPIRE", "PEXPIRE"]), k, "100", self.c(["NX", "GT"]), self.c(["XX", "LT", "NX"])],
                                    ["SORT", "l1", "BY", "h*->fa", "GET", "h*->fb", "GET", "#"],
                                    ["SORT", "t1", "BY", "h*->fa"] + (["ALPHA"] if self.orders_known() else [])
                                    + ["LIMIT", "0", "2"]])
        return "exact", ["SET", "s1", self.value()]

    def orders_known(self):
        """False once this round's small sets and sorted sets may be hash tables (whose order is the
        servers' own hash order): thresholds below the sizes gen_keys makes, or a large one made."""
        cfg = getattr(self, "config", None) or {}
        at_least = {"set-max-listpack-entries": 5, "set-max-listpack-value": 1, "zset-max-listpack-entries": 3,
                    "zset-max-listpack-value": 1}
        return not getattr(self, "hashed", False) and all(int(cfg.get(n, 128)) >= v for n, v in at_least.items())

    def keys_more(self, k, roll):
        """gen_keys' second half: SCAN, databases, DUMP/RESTORE, RANDOMKEY, WAIT, the expire family's
        edges, and keys of every type (small and large, for the encoding thresholds)."""
        if roll == 20:
            a = ["SCAN", "0"]
            if self.p(0.5):
                a += ["MATCH", self.c(["*", "?1", "[shl]1", "w_*", "*1", "x*", "[^s]*", "\\*", ""])]
            if self.p(0.5):
                a += ["COUNT", self.c(["1", "2", "3", "10", "1000", "0", "-1", "x"])]
            if self.p(0.5):
                a += ["TYPE", self.c(["string", "list", "hash", "set", "zset", "stream", "STRING", "none", "nosuch"])]
            return "scan", a
        if roll == 21:
            return "exact", ["SELECT", self.c(["0", "0", "1", "2", "16", "-1", "x"])]
        if roll == 22:
            return "exact", ["SWAPDB", self.c(["0", "1", "2", "x", "16"]), self.c(["0", "1", "2", "-1"])]
        if roll == 23:
            # DUMP's payload without its footer: Ferrous writes RDB version 10 by default, Valkey 80.
            return "exact", ["EVAL", DUMP_BODY, "1", k]
        if roll == 24:
            # No short relative TTL: whether the key is still there a command later is a race.
            ttl = self.c(["0", "0", "100000", "-1", "4102444800000", "1", "x"])
            a = ["EVAL", ROUND_TRIP, "2", k, self.key(), ttl]
            if self.p(0.4):
                a.append("REPLACE")
            if ttl in ("1", "4102444800000") or self.p(0.2):
                a.append("ABSTTL")
            if self.p(0.2):
                a += [self.c(["IDLETIME", "FREQ"]), self.c(["0", "10", "-1", "256", "x"])]
            return "exact", a
        if roll == 25:
            return "exact", ["EVAL", CORRUPT_RESTORE, "2", k, self.key(), self.c(["crc", "trunc"])]
        if roll == 26:
            return "exact", self.c([["EVAL", RANDOMKEY_ALONE, "0"], ["WAIT", "0", "0"], ["WAIT", "0", "x"],
                                    ["OBJECT", "HELP"], ["OBJECT", "ENCODING"], ["OBJECT", "NOSUCH", k],
                                    ["FLUSHDB", self.c(["ASYNC", "SYNC"])], ["TOUCH", k, k, "nokey"]])
        if roll == 27:
            return "exact", self.c([
                [self.c(["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"]), k,
                 self.c(["9223372036854775807", "-9223372036854775808", "9223372036854775", "9223372036854776",
                         "-9223372036854775", "100", "4102444800"])] + self.c([[], ["GT"], ["LT"], ["XX"], ["NX"]]),
                ["EXPIRE", k, "100", self.c(["GT", "LT", "NX", "XX"])],
                ["EXPIREAT", k, "4102444800"], ["PERSIST", k], ["SET", k, "v", "EX", "100"]])
        # Keys of every type, small or past the (varied) encoding thresholds.
        n = self.c([1, 2, 3, 5, 9, 130])
        big = self.p(0.2)
        if n > 3 or big:
            self.hashed = True  # it may be a set or a sorted set (not known before the choice below)
        item = lambda i: ("m" * 70 if big and i == n - 1 else self.c(["a", "b", "1", "2", "-3", "c"]) + str(i % 7))
        return "exact", self.c([
            ["RPUSH", self.c(["l1", k])] + [item(i) for i in range(n)],
            ["HSET", self.c(["h1", k])] + sum(([item(i), item(i + 1)] for i in range(n)), []),
            ["SADD", self.c(["t1", k])] + [self.c([str(i), item(i)]) for i in range(n)],
            ["ZADD", self.c(["z1", k])] + sum(([self.c(["0", "1", "2.5"]), item(i)] for i in range(n)), []),
            ["XADD", self.c(["x1", k]), "%d-1" % self.r.randint(1, 9)] + sum(([item(i), "v"] for i in range(min(n, 9))), []),
            ["PFADD", self.c(["p1", k])] + [item(i) for i in range(n)],
            ["GEOADD", self.c(["g1", k]), "13.361389", "38.115556", item(0), "15.087269", "37.502669", item(1)],
            ["SET", self.c(["k1", k]), self.c(["12", "-1", "9223372036854775807", "x" * 25, "abc" * 30, "3.5"])],
        ])


# Scripts of the keys family. DUMP's payload ends with the RDB version (2 bytes) and a CRC-64
# (8 bytes): what Ferrous writes by default (10, Redis 7.0's) is neither Valkey's (80) nor 7.2's
# (11), so only the rest is compared. A round trip runs in one script so each server restores its
# own payload.
# A hash table's payload lists its elements in its hash order: not compared.
DUMP_BODY = ("if redis.call('OBJECT', 'ENCODING', KEYS[1]) == 'hashtable' then return 'hashtable' end "
             "local d = redis.call('DUMP', KEYS[1]) if not d then return d end return string.sub(d, 1, -11)")
ROUND_TRIP = ("local d = redis.call('DUMP', KEYS[1]) if not d then return 'nokey' end "
              "return redis.pcall('RESTORE', KEYS[2], ARGV[1], d, unpack(ARGV, 2))")
# The checksum's last byte is changed, not replaced: a payload (a hash table's, in its own hash
# order) whose CRC already ended with the replacement was restored as it should be (seed 6301).
CORRUPT_RESTORE = ("local d = redis.call('DUMP', KEYS[1]) if not d then return 'nokey' end "
                   "if ARGV[1] == 'trunc' then d = string.sub(d, 1, -12) .. string.sub(d, -10) "
                   "else d = string.sub(d, 1, -2) .. string.char((string.byte(d, -1) + 1) % 256) end "
                   "return redis.pcall('RESTORE', KEYS[2], 0, d, 'REPLACE')")
RANDOMKEY_ALONE = "if redis.call('DBSIZE') > 1 then return 'several' end return redis.call('RANDOMKEY')"


# --- Lua scripts ---------------------------------------------------------------------------------
# Values a script returns or computes: Lua types and their conversions to RESP2/RESP3, replies of
# redis.call converted to Lua and back, errors raised in every way a script can, the bundled libraries.
LUA_VALUES = [
    "1", "-1", "0", "3.99", "-2.5", "1e100", "0/0", "1/0", "true", "false", "nil", "'str'", "''",
    "'\\0bin'", "{}", "{1, 2, 3}", "{1, nil, 3}", "{1, {2, {3, 'x'}}, 'y'}", "{'a', false, 'b'}",
    "{1, 2.7, true}", "{a = 1}", "{err = 'boom'}", "{err = '-MYERR custom'}", "{ok = 'FINE'}",
    "{err = 1}", "{ok = {1}}", "{double = 1.5}", "{double = '3'}", "{double = 'x'}", "{map = {a = 1}}",
    "{map = {}}", "{set = {a = true, b = true}}", "{big_number = '12345678901234567890'}",
    "{verbatim_string = {format = 'txt', string = 'hi'}}",
    "redis.status_reply('PONGISH')", "redis.error_reply('My Error')", "redis.error_reply('-ERR dash')",
    "redis.error_reply('')", "redis.status_reply('')", "redis.sha1hex('')", "redis.sha1hex('abc')",
    "redis.sha1hex(123)", "cjson.encode({1, 2, {a = 3}})", "cjson.encode({})", "cjson.encode('s')",
    "cjson.decode('[1, 2.5, \"x\", null, true]')", "cjson.decode('{\"a\": [1, 2]}')",
    "cjson.encode(cjson.decode('1e400'))", "cmsgpack.pack({1, 2, 'x'})", "cmsgpack.unpack(cmsgpack.pack({1, 'a', {2}}))",
    "bit.band(5, 3)", "bit.bor(1, 2)", "bit.tohex(255)", "bit.lshift(1, 40)", "struct.pack('>I2', 258)",
    "struct.unpack('>I2', '\\1\\2')", "string.format('%5.2f', 3.14159)", "tostring(1e15)", "tostring(0.1)",
    "tostring(1/3)", "math.floor(-3.5)", "tonumber('0x10')", "tonumber('1e2')", "string.rep('ab', 3)",
    "#KEYS", "#ARGV", "KEYS[1]", "ARGV[1]", "type(ARGV[1])",
    "redis.call('PING')", "redis.call('GET', KEYS[1])", "type(redis.call('GET', 'nokey'))",
    "redis.call('INCR', KEYS[1])", "redis.call('HGETALL', 'h1')", "redis.call('ZRANGE', 'z1', 0, -1, 'WITHSCORES')",
    "redis.call('ZSCORE', 'z1', 'a')", "redis.call('TYPE', KEYS[1])", "redis.call('SET', KEYS[1], 'v')",
    "redis.call('SMEMBERS', 't1')", "redis.call('LRANGE', 'l1', 0, -1)", "redis.call('HGET', 'h1', 'f')",
    "redis.call('ECHO', 3.7)", "redis.call('ECHO', true)", "redis.call('SET', KEYS[1], 1.5)",
    "redis.call('EXISTS', KEYS[1])", "redis.pcall('INCR', 'h1')", "redis.pcall('NOSUCHCMD')",
    "redis.pcall('SET', 'a')", "redis.call('GET', 'h1')", "redis.pcall('HGETALL')", "redis.call('NOSUCHCMD')",
    "redis.call('SET', KEYS[1], {})", "redis.call()", "redis.call(1)", "redis.call('EVAL', 'return 1', 0)",
    "redis.pcall('EVAL', 'return 1', 0)", "redis.call('SUBSCRIBE', 'c')", "redis.call('MULTI')",
    "redis.call('BLPOP', 'l1', 0)", "redis.call('XREAD', 'BLOCK', 0, 'STREAMS', 'x', '$')",
    "redis.call('CONFIG', 'GET', 'maxmemory')", "redis.call('SCRIPT', 'EXISTS', 'abc')",
    "redis.setresp(3)", "redis.setresp(2)", "redis.setresp(4)", "redis.log(redis.LOG_WARNING, 'x')",
    "redis.REPL_ALL", "redis.set_repl(redis.REPL_NONE)", "redis.replicate_commands()", "redis.breakpoint()",
    "redis.debug('x')", "pcall(redis.call, 'INCR', 'h1')", "select(2, pcall(redis.call, 'INCR', 'h1'))",
    "select(2, pcall(error, {err = 'tbl'}))", "select(2, pcall(error, 'plain'))", "undefined_global",
    "loadstring('return 1')", "getmetatable('').__index", "redis.acl_check_cmd('GET', 'x')",
    "redis.acl_check_cmd('NOSUCH')", "redis.error_reply", "unpack({1, 2, 3})", "#redis.call('KEYS', '*')",
    "os.time", "os.clock() >= 0", "math.random() < 1", "string.len(redis.call('GET', KEYS[1]) or '')",
]

LUA_STATEMENTS = [
    "x = 5", "redis.setresp(3)", "redis.setresp(2)", "local t = {} t[1] = 1", "error('custom')",
    "error({err = 'ERRTBL table error'})", "error()", "error(nil)", "error(12)", "assert(false, 'asserted')",
    "redis.call('SET', KEYS[1], '10')", "redis.call('DEL', KEYS[1])", "rawset(_G, 'y', 1)",
    "setmetatable(_G, nil)", "redis.call('HSET', 'h1', 'f', 'v', 'g', '1.5')", "redis.call('ZADD', 'z1', 1.5, 'a', 2, 'b')",
    "redis.call('SADD', 't1', 'a', 'b', 1)", "redis.call('RPUSH', 'l1', 'a', 1, 2.5)", "local a = nil + 1",
]


def _lua_script(g):
    parts = [g.c(LUA_STATEMENTS) for _ in range(g.r.randint(0, 2))]
    parts.append("return " + g.c(LUA_VALUES))
    return " ".join(parts)


def _lua_mode(script):
    """How a script's reply is compared: a returned HGETALL or SMEMBERS of a hash table comes in
    the server's hash order (Redis seeds its dict hash per process), so it is compared order-free."""
    if script.endswith("return redis.call('HGETALL', 'h1')"):
        return "pairs"
    if script.endswith("return redis.call('SMEMBERS', 't1')"):
        return "unordered"
    return "exact"


def gen_lua(self):
    roll = self.r.randrange(10)
    if roll < 7:
        cmd = self.c(["EVAL", "EVAL", "EVAL", "EVAL_RO"])
        keys = self.keys(0, 2)
        script = _lua_script(self)
        return _lua_mode(script), [cmd, script, str(len(keys))] + keys + [self.value() for _ in range(self.r.randint(0, 2))]
    if roll == 7:
        return "exact", ["EVAL", "return " + self.c(LUA_VALUES) + " + 1", "0"]
    if roll == 8:
        return "exact", self.c([["SET", "s1", self.value()], ["HSET", "h1", "f", self.value()], ["ZADD", "z1", self.score(), "a"],
                                ["DEL", self.key()], ["RPUSH", "l1", self.member()], ["SADD", "t1", self.member()]])
    return "exact", ["EVAL", "local r = {} for i = 1, #ARGV do r[i] = ARGV[i] * 2 end return r", "0"] + [self.value() for _ in range(2)]


Gen.gen_lua = gen_lua


# --- WATCH / MULTI / EXEC ------------------------------------------------------------------------
def gen_tx(self):
    """A WATCH, another client's command that may or may not touch a watched key, then a
    transaction; or plain commands that set the keys up (types, TTLs, other databases)."""
    k = self.key()
    roll = self.r.randrange(10)
    if roll < 3:
        return "exact", self.c([["SET", k, self.value()], ["RPUSH", k, "a", "b"], ["HSET", k, "f", "1"],
                                ["EXPIRE", k, "1000"], ["DEL", k], ["SADD", k, "x"], ["SELECT", "0"],
                                ["SET", k, "x", "PXAT", "1"], ["MOVE", k, "1"], ["MSET", "s1", "1", "k1", "2"]])
    keys = self.keys(1, 2)
    touch = self.c([["SET", k, self.value()], ["SET", k, "x", "NX"], ["DEL", k], ["DEL", "nokey"],
                    ["EXPIRE", k, "1000"], ["EXPIRE", k, "0"], ["PERSIST", k], ["GET", k], ["FLUSHDB"],
                    ["FLUSHALL"], ["SWAPDB", "0", "1"], ["RENAME", k, self.key()], ["LPUSH", k, "x"],
                    ["LPOP", k], ["HSET", k, "f", "1"], ["HDEL", k, "nofield"], ["COPY", self.key(), k, "REPLACE"],
                    ["MOVE", k, "1"], ["INCR", k], ["APPEND", k, ""], ["SADD", k, "x"], ["SREM", k, "nomember"],
                    ["EXPIRE", k, "1000", "NX"], ["SET", k, "x", "PXAT", "1"], ["LTRIM", k, "0", "-1"],
                    ["SELECT", "1"], ["SORT", k, "STORE", self.key()], ["UNLINK", k], ["TOUCH", k],
                    ["OBJECT", "ENCODING", k], ["RENAME", k, k]])
    inner = self.c([["GET", k], ["INCR", k], ["SET", k, "t"], ["TYPE", k], ["EXISTS", k], ["PING"]])
    return "watch", (keys, touch, inner)


Gen.gen_tx = gen_tx



# --- several clients: blocking commands and pub/sub (scenarios run by multi.py) ------------------
BLOCK_LISTS = ["bl1", "bl2", "bl3"]
BLOCK_ZSETS = ["bz1", "bz2"]
BLOCK_STREAMS = ["bx1", "bx2"]


def _bkey(self, pool):
    """A key of `pool`, now and then one of another type's pool (wrong type, moves across types)."""
    if self.p(0.07):
        pool = self.c([BLOCK_LISTS, BLOCK_ZSETS, BLOCK_STREAMS])
    return self.c(pool)


def _block_timeout(self):
    return self.c(["0", "0", "0", "100", "1000.5"])


def _blocking_command(self, n):
    """A command that blocks on its keys (client n's: the consumer name of XREADGROUP)."""
    roll = self.r.randrange(12)
    t = _block_timeout(self)
    lk = [_bkey(self, BLOCK_LISTS) for _ in range(self.r.randint(1, 2))]
    zk = [_bkey(self, BLOCK_ZSETS) for _ in range(self.r.randint(1, 2))]
    xk = [_bkey(self, BLOCK_STREAMS) for _ in range(self.r.randint(1, 2))]
    side = lambda: self.c(["LEFT", "RIGHT"])  # noqa: E731
    if roll == 0:
        return ["BLPOP"] + lk + [t]
    if roll == 1:
        return ["BRPOP"] + lk + [t]
    if roll == 2:
        return ["BLMOVE", lk[0], _bkey(self, BLOCK_LISTS), side(), side(), t]
    if roll == 3:
        return ["BRPOPLPUSH", lk[0], _bkey(self, BLOCK_LISTS), t]
    if roll == 4:
        a = ["BLMPOP", t, str(len(lk))] + lk + [side()]
        return a + (["COUNT", self.c(["1", "2", "3", "10"])] if self.p(0.6) else [])
    if roll == 5:
        return [self.c(["BZPOPMIN", "BZPOPMAX"])] + zk + [t]
    if roll == 6:
        a = ["BZMPOP", t, str(len(zk))] + zk + [self.c(["MIN", "MAX"])]
        return a + (["COUNT", self.c(["1", "2", "5"])] if self.p(0.6) else [])
    if roll in (7, 8):
        a = ["XREAD"] + (["COUNT", self.c(["1", "2", "10"])] if self.p(0.4) else [])
        ids = [self.c(["$", "$", "$", "0-0", "%d-0" % self.xid, "%d-0" % (self.xid + 1)]) for _ in xk]
        return a + ["BLOCK", self.c(["0", "0", "100000"]), "STREAMS"] + xk + ids
    a = ["XREADGROUP", "GROUP", "g", "k%d" % n]
    if self.p(0.4):
        a += ["COUNT", self.c(["1", "2", "10"])]
    if self.p(0.3):
        a.append("NOACK")
    ids = [">" if self.p(0.9) else "0" for _ in xk]
    return a + ["BLOCK", self.c(["0", "0", "100000"]), "STREAMS"] + xk + ids


def _setup_command(self):
    """Makes keys of the pools exist (or not), with their groups, in db 0 or 1."""
    self.xid += 1
    roll = self.r.randrange(10)
    if roll < 2:
        return ["RPUSH", _bkey(self, BLOCK_LISTS)] + [self.member() for _ in range(self.r.randint(1, 3))]
    if roll < 3:
        return ["ZADD", _bkey(self, BLOCK_ZSETS), str(self.r.randint(0, 9)), self.member()]
    if roll < 5:
        return ["XGROUP", "CREATE", _bkey(self, BLOCK_STREAMS), "g", self.c(["$", "0"]), "MKSTREAM"]
    if roll < 6:
        return ["XADD", _bkey(self, BLOCK_STREAMS), "%d-0" % self.xid, "f", self.value()]
    if roll < 7:
        return ["DEL"] + [self.c(BLOCK_LISTS + BLOCK_ZSETS + BLOCK_STREAMS) for _ in range(2)]
    if roll < 8:
        return ["MOVE", self.c(BLOCK_LISTS + BLOCK_ZSETS + BLOCK_STREAMS), "1"]
    return ["XGROUP", "CREATE", _bkey(self, BLOCK_STREAMS), "g", "0"]


def _writer_command(self, blockers):
    """A write that may serve (or upset) the blocked clients."""
    self.xid += 1
    roll = self.r.randrange(32)
    lk, zk, xk = _bkey(self, BLOCK_LISTS), _bkey(self, BLOCK_ZSETS), _bkey(self, BLOCK_STREAMS)
    anyk = self.c(BLOCK_LISTS + BLOCK_ZSETS + BLOCK_STREAMS)
    if roll < 4:
        return [[self.c(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]), lk] + [self.member() for _ in range(self.r.randint(1, 4))]]
    if roll < 5:
        return [["LMOVE", lk, _bkey(self, BLOCK_LISTS), self.c(["LEFT", "RIGHT"]), self.c(["LEFT", "RIGHT"])]]
    if roll < 6:
        return [["RPOPLPUSH", lk, _bkey(self, BLOCK_LISTS)]]
    if roll < 9:
        a = ["ZADD", zk]
        for _ in range(self.r.randint(1, 3)):
            a += [str(self.r.randint(0, 9)), self.member()]
        return [a]
    if roll < 12:
        a = ["XADD", xk]
        if self.p(0.15):
            a += ["MAXLEN", self.c(["0", "1", "2"])]
        return [a + ["%d-0" % self.xid, "f", self.value()]]
    if roll < 14:
        cmds = [[self.c(["LPUSH", "RPUSH"]), lk, self.member(), self.member()],
                [self.c(["LPUSH", "RPUSH"]), _bkey(self, BLOCK_LISTS), self.member()],
                ["ZADD", zk, "1", self.member()], ["XADD", xk, "%d-1" % self.xid, "f", "v"], ["DEL", anyk],
                ["LPOP", lk], ["SET", anyk, "x"]]
        return [["MULTI"]] + [self.c(cmds) for _ in range(self.r.randint(1, 3))] + [["EXEC"]]
    if roll < 15:
        return [["DEL", anyk]]
    if roll < 16:
        return [["SET", anyk, "str"]]
    if roll < 17:
        return [["EXPIRE", anyk, self.c(["0", "100"])]]
    if roll < 19:
        return [["RENAME", self.c(BLOCK_LISTS + BLOCK_ZSETS + BLOCK_STREAMS), anyk]]
    if roll < 20:
        return [self.c([["SWAPDB", "0", "1"], ["FLUSHALL"], ["FLUSHDB"], ["MOVE", anyk, "1"]])]
    if roll < 22 and blockers:
        n = self.c(blockers)
        return [["CLIENT", "UNBLOCK", "$id:c%d" % (n + 1)] + self.c([[], ["TIMEOUT"], ["ERROR"]])]
    if roll < 23:
        return [["XDEL", xk] + ["%d-0" % self.r.randint(1, self.xid) for _ in range(2)]]
    if roll < 24:
        return [self.c([["XGROUP", "DESTROY", xk, "g"], ["XGROUP", "SETID", xk, "g", "0"],
                        ["XGROUP", "CREATE", xk, "g", "$", "MKSTREAM"], ["XTRIM", xk, "MAXLEN", "0"]])]
    if roll < 25:
        return [["COPY", self.c(BLOCK_LISTS + BLOCK_ZSETS + BLOCK_STREAMS), anyk, "REPLACE"]]
    if roll < 26:
        return [["EVAL", "redis.call('RPUSH', KEYS[1], 'e1', 'e2') redis.call('LPOP', KEYS[1]) return 1", "1", lk]]
    if roll < 27:
        return [["SORT", self.c(BLOCK_LISTS), "ALPHA", "STORE", lk]]
    if roll < 28:
        return [self.c([["LMPOP", "1", lk, "LEFT"], ["ZPOPMIN", zk], ["XREADGROUP", "GROUP", "g", "m", "STREAMS", xk, ">"]])]
    if roll < 29:
        return [["ZUNIONSTORE", zk, "2", zk, self.c(BLOCK_ZSETS)]]
    return [[self.c(["LPUSH", "RPUSH"]), lk, self.member()]]


def _state_commands(self):
    """What the keys hold after the scenario."""
    out = []
    for k in BLOCK_LISTS:
        out.append(["LRANGE", k, "0", "-1"])
    for k in BLOCK_ZSETS:
        out.append(["ZRANGE", k, "0", "-1", "WITHSCORES"])
    for k in BLOCK_STREAMS:
        out.append(["XRANGE", k, "-", "+"])
        out.append(["XPENDING", k, "g"])
    return out


def gen_blocking(self):
    """A scenario: some setup, one to three clients blocking (on the same or different keys), writes
    that may serve them, then every blocked client's reply in order and the keys' contents."""
    from multi import Scenario
    if not hasattr(self, "xid"):
        self.xid = 0
    ops = [("main", _setup_command(self)) for _ in range(self.r.randint(0, 4))]
    nblock = self.r.randint(1, 3)
    for n in range(nblock):
        if self.p(0.08):
            # A tiny timeout on a key nothing writes: the reply is certainly the timeout's.
            ops.append(("wait", n, self.c([["BLPOP", "quiet", "0.01"], ["BZPOPMIN", "quiet", "0.01"],
                                           ["BLMOVE", "quiet", "bl1", "LEFT", "LEFT", "0.01"],
                                           ["XREAD", "BLOCK", "10", "STREAMS", "quiet", "$"]])))
        ops.append(("block", n, _blocking_command(self, n)))
        if self.p(0.25):
            ops += [("main", c) for c in _writer_command(self, list(range(n + 1)))]
    for _ in range(self.r.randint(1, 4)):
        ops += [("main", c) for c in _writer_command(self, list(range(nblock)))]
    ops.append(("finish", self.c(["", "", "TIMEOUT", "ERROR"])))
    ops += [("main", c) for c in _state_commands(self)]
    return "clients", Scenario("clients", ops)


PUB_CHANNELS = ["ch1", "ch2", "news.a", "news.b", "h\u00e9llo"]
PUB_PATTERNS = ["ch*", "news.*", "*", "ch[12]", "h?llo", "n*s.?", "ch1"]


def _channels(self, pool, lo, hi):
    return [self.c(pool) for _ in range(self.r.randint(lo, hi))]


def _sub_command(self):
    roll = self.r.randrange(20)
    if roll < 4:
        return ["SUBSCRIBE"] + _channels(self, PUB_CHANNELS, 1, 3)
    if roll < 6:
        return ["PSUBSCRIBE"] + _channels(self, PUB_PATTERNS, 1, 2)
    if roll < 8:
        return ["SSUBSCRIBE"] + _channels(self, ["ch1", "ch2"], 1, 2)
    if roll < 10:
        return ["UNSUBSCRIBE"] + _channels(self, PUB_CHANNELS, 0, 2)
    if roll < 11:
        return ["PUNSUBSCRIBE"] + _channels(self, PUB_PATTERNS, 0, 2)
    if roll < 12:
        return ["SUNSUBSCRIBE"] + _channels(self, ["ch1", "ch2"], 0, 2)
    if roll < 13:
        return ["PING"] + ([self.c(["hi", ""])] if self.p(0.5) else [])
    if roll < 14:
        return ["RESET"]
    if roll < 16:
        return self.c([["GET", "k"], ["SET", "k", "v"], ["ECHO", "e"], ["PUBLISH", "ch1", "self"],
                       ["PUBSUB", "NUMSUB", "ch1"], ["CLIENT", "SETNAME", "sub"], ["SELECT", "1"],
                       ["subscribe"], ["SUBSCRIBE"],
                       ["PSUBSCRIBE"], ["SSUBSCRIBE"], ["SSUBSCRIBE", "ch1", "ch2x"], ["WATCH", "k"]])
    return ["SUBSCRIBE", self.c(PUB_CHANNELS)]


def _pub_command(self):
    roll = self.r.randrange(12)
    if roll < 5:
        return ["PUBLISH", self.c(PUB_CHANNELS + ["other"]), self.c(["m1", "m2", "", "hello world", "\x00x"])]
    if roll < 7:
        return ["SPUBLISH", self.c(["ch1", "ch2", "other"]), self.c(["s1", "s2"])]
    if roll < 8:
        return ["PUBSUB", self.c(["CHANNELS", "SHARDCHANNELS"])] + ([self.c(PUB_PATTERNS)] if self.p(0.6) else [])
    if roll < 9:
        return ["PUBSUB", self.c(["NUMSUB", "SHARDNUMSUB"])] + _channels(self, PUB_CHANNELS, 0, 3)
    if roll < 10:
        return ["PUBSUB", "NUMPAT"]
    if roll < 11:
        return self.c([["CONFIG", "SET", "notify-keyspace-events", "KEA"], ["SET", "k", "v"], ["DEL", "k"],
                       ["PUBLISH", "__keyspace@0__:k", "x"]])
    return ["PUBLISH", "ch1", "m"]


def gen_pubsub(self):
    """A scenario: one to three subscribers (un)subscribing, publishes from main, PUBSUB queries,
    other commands in subscribed mode; every frame each subscriber receives is compared."""
    from multi import Scenario
    nsub = self.r.randint(1, 3)
    ops = []
    for _ in range(self.r.randint(3, 14)):
        if self.p(0.55):
            ops.append(("sub", self.r.randrange(nsub), _sub_command(self)))
        else:
            ops.append(("main", _pub_command(self)))
    ops.append(("main", ["PUBSUB", "NUMPAT"]))
    ops.append(("main", ["PUBSUB", "NUMSUB"] + PUB_CHANNELS))
    ops.append(("main", ["PUBSUB", "SHARDNUMSUB", "ch1", "ch2"]))
    return "pubsub", Scenario("pubsub", ops)


Gen.gen_blocking = gen_blocking
Gen.gen_pubsub = gen_pubsub
FAMILY_KEYS["blocking"] = BLOCK_LISTS + BLOCK_ZSETS + BLOCK_STREAMS
FAMILY_KEYS["pubsub"] = ["k"]
FAMILIES = [f for f in FAMILY_KEYS]


# --- client-side caching: CLIENT TRACKING (scenarios run by multi.py) -----------------------------
TRK_STRINGS = ["a:1", "a:2", "b:1", "ab"]
TRK_HASH, TRK_LIST, TRK_SET = "b:h", "a:l", "c:s"
TRK_KEYS = TRK_STRINGS + [TRK_HASH, TRK_LIST, TRK_SET]
TRK_PREFIXES = ["a:", "b", "c:", "a", "ab", "x", ""]


def _trk_read(self):
    """A read that makes its keys tracked (one key now and then of the wrong type)."""
    s, k = self.c(TRK_STRINGS), self.c(TRK_KEYS)
    return self.c([["GET", s], ["GET", s], ["MGET", s, self.c(TRK_STRINGS)], ["STRLEN", s], ["GETRANGE", s, "0", "1"],
                   ["EXISTS", k, self.c(TRK_KEYS)], ["TYPE", k], ["TTL", s],
                   ["HGET", TRK_HASH, "f"], ["HGETALL", TRK_HASH], ["HEXISTS", self.c([TRK_HASH, s]), "g"],
                   ["LRANGE", TRK_LIST, "0", "-1"], ["LLEN", TRK_LIST], ["LINDEX", self.c([TRK_LIST, s]), "0"],
                   ["SMEMBERS", TRK_SET], ["SCARD", TRK_SET], ["SISMEMBER", TRK_SET, "m"],
                   ["EVAL_RO", "return redis.call('get', KEYS[1])", "1", s],
                   ["EVAL", "return redis.call('exists', 'a:2')", "0"], ["GET", "nokey"], ["DBSIZE"], ["PING"]])


def _trk_write(self):
    """A write, delete, expiry or flush (by whichever client runs it)."""
    s, k = self.c(TRK_STRINGS), self.c(TRK_KEYS)
    roll = self.r.randrange(30)
    if roll < 6:
        return [self.c([["SET", s, self.c(["1", "x", "10"])], ["INCR", s], ["APPEND", s, "z"], ["GETDEL", s],
                        ["SETRANGE", s, "0", "y"], ["SET", s, "1", "NX"], ["SET", s, "v", "XX"], ["GETSET", s, "2"]])]
    if roll < 8:
        return [["MSET", s, "m", self.c(TRK_STRINGS), "n"]]
    if roll < 10:
        return [self.c([["DEL", k], ["UNLINK", k, self.c(TRK_KEYS)], ["DEL", "nokey"]])]
    if roll < 12:
        return [self.c([["HSET", TRK_HASH, "f", "v"], ["HDEL", TRK_HASH, self.c(["f", "nofield"])], ["HINCRBY", TRK_HASH, "n", "1"]])]
    if roll < 14:
        return [self.c([["RPUSH", TRK_LIST, "e"], ["LPOP", TRK_LIST], ["LSET", TRK_LIST, "0", "q"]])]
    if roll < 15:
        return [self.c([["SADD", TRK_SET, "m"], ["SREM", TRK_SET, "m"], ["SADD", TRK_SET, "m", "n"]])]
    if roll < 17:
        return [self.c([["EXPIRE", k, "0"], ["EXPIRE", k, "100"], ["PERSIST", k],
                        ["GETEX", s, "EX", "100"], ["PEXPIREAT", k, "1"]])]
    if roll < 18:
        return [["SET", s, "soon", "PX", "50"], ("sleep", 150, ["EXISTS", s])]
    if roll < 20:
        return [self.c([["RENAME", k, self.c(TRK_KEYS)], ["COPY", k, self.c(TRK_KEYS), "REPLACE"], ["MOVE", k, "1"],
                        ["SWAPDB", "0", "1"], ["SORT", TRK_LIST, "ALPHA", "STORE", self.c(TRK_KEYS)]])]
    if roll < 22:
        return [self.c([["FLUSHDB"], ["FLUSHALL"], ["FLUSHALL", "ASYNC"], ["FLUSHDB", "SYNC"]])]
    if roll < 24:
        return [["EVAL", "redis.call('set', KEYS[1], 'e') redis.call('del', KEYS[2]) return 1", "2", s, k]]
    if roll < 27:
        cmds = [self.c([["SET", s, "t"], ["DEL", k], ["INCR", s], ["GET", s], ["HSET", TRK_HASH, "g", "1"]])
                for _ in range(self.r.randint(1, 3))]
        return [[["MULTI"]] + cmds + [["EXEC"]]]
    return [["SET", s, self.value()]]


def _trk_on(self, i, sinks, others, evict):
    """CLIENT TRACKING ON with options for client i."""
    a = ["CLIENT", "TRACKING", self.c(["ON", "ON", "on"])]
    if (sinks or others) and self.p(0.7 if self.trk_protos[i] == 2 else 0.3):
        target = self.c(sinks) if sinks and self.p(0.85) else self.c(others + [i])
        a += ["REDIRECT", "$id:c%d" % (target + 1)]
    if not evict and self.p(0.3):
        a.append("BCAST")
        for _ in range(self.r.randint(0, 2)):
            a += ["PREFIX", self.c(TRK_PREFIXES)]
    elif self.p(0.05):
        a += ["PREFIX", "a:"]  # an error without BCAST
    if self.p(0.3):
        a.append(self.c(["OPTIN", "OPTOUT", "optin"]))
    if not evict and self.p(0.25):
        a.append("NOLOOP")
    if self.p(0.03):
        a.append(self.c(["OPTIN", "BCAST", "REDIRECT", "bogus"]))
    return a


def _trk_evictions(self, i):
    """Reads of keys never read before (so the number of keys in the tracking table, and of
    evictions, does not depend on which keys were evicted), limits, flushes."""
    ops, fresh = [], 0
    for _ in range(self.r.randint(3, 12)):
        roll = self.r.randrange(10)
        if roll < 6:
            if self.p(0.2):
                ops.append(("cmd", i, ["CLIENT", "CACHING", self.c(["yes", "no"])]))
            keys = ["e:%d" % (fresh + j) for j in range(self.r.randint(1, 3))]
            fresh += len(keys)
            ops.append(("cmd", i, self.c([["GET", keys[0]], ["MGET"] + keys, ["EXISTS"] + keys, ["STRLEN", keys[0]]])))
        elif roll < 8:
            ops.append(("main", ["CONFIG", "SET", "tracking-table-max-keys", self.c(["1", "2", "3", "0"])]))
        elif roll < 9:
            ops.append(("main", self.c([["FLUSHALL"], ["FLUSHDB"], ["SET", "e:x", "1"]])))
        else:
            ops.append(("main", ["INFO"]))
    return ops + [("cmd", i, ["CLIENT", "TRACKINGINFO"]), ("main", ["INFO"])]


def gen_tracking(self):
    """A scenario: one to three clients (RESP2 or RESP3); some subscribe to __redis__:invalidate
    as redirect targets, the others turn tracking on (REDIRECT, BCAST PREFIX, OPTIN/OPTOUT,
    NOLOOP); then reads that track keys, writes by main and by the trackers themselves, flushes,
    MULTI/EXEC and scripts, expiry, CLIENT CACHING, TRACKING OFF/ON, TRACKINGINFO, GETREDIR, a
    redirect target that goes away, and (alone) a small tracking-table-max-keys. Every frame each
    client gets is compared."""
    from multi import TrackScenario
    n = self.r.randint(1, 3)
    self.trk_protos = {i: self.c([2, 3]) for i in range(n)}
    evict = self.p(0.15)
    ops = [("main", self.c([["MSET", "a:1", "1", "a:2", "x", "b:1", "10"], ["SET", "ab", "v"]]))]
    if self.p(0.6):
        ops += [("main", ["HSET", TRK_HASH, "f", "v"]), ("main", ["RPUSH", TRK_LIST, "x", "y"]), ("main", ["SADD", TRK_SET, "m"])]
    sinks = [i for i in range(n) if n > 1 and i > 0 and self.p(0.5)] if not evict else []
    trackers = [i for i in range(n) if i not in sinks][:1 if evict else 3]
    for i in sinks:
        ops.append(("cmd", i, ["SUBSCRIBE", "__redis__:invalidate"]))
    if evict:
        ops.append(("main", ["CONFIG", "SET", "tracking-table-max-keys", self.c(["1", "2", "3"])]))
    for i in trackers:
        ops.append(("cmd", i, _trk_on(self, i, sinks, [j for j in trackers if j != i], evict)))
    if evict:
        return "tracking", TrackScenario(ops + _trk_evictions(self, trackers[0]), dict(self.trk_protos))
    for _ in range(self.r.randint(4, 16)):
        i = self.c(trackers)
        roll = self.r.randrange(20)
        if roll < 7:
            if self.p(0.25):
                ops.append(("cmd", i, ["CLIENT", "CACHING", self.c(["yes", "no", "YES", "maybe"])]))
            ops.append(("cmd", i, _trk_read(self)))
        elif roll < 13:
            who = ("main",) if self.p(0.65) else ("cmd", i)
            for w in _trk_write(self):
                ops.append(w if isinstance(w, tuple) else who + (w,))
        elif roll < 15:
            ops.append(("cmd", i, self.c([["CLIENT", "TRACKINGINFO"], ["CLIENT", "GETREDIR"], ["CLIENT", "CACHING", "yes"],
                                          ["SELECT", self.c(["0", "1"])], ["CLIENT", "TRACKING"]])))
        elif roll < 17 and not evict:
            if self.p(0.5):
                ops.append(("cmd", i, ["CLIENT", "TRACKING", "OFF"]))
            ops.append(("cmd", i, _trk_on(self, i, sinks, [j for j in trackers if j != i], evict)))
        elif roll < 18 and not evict and sinks and self.p(0.5):
            ops.append(("close", sinks.pop()))
        else:
            ops.append(("main", self.c([["INFO"], ["CLIENT", "TRACKINGINFO"], ["DBSIZE"]])
                        if roll == 19 else _trk_write(self)[0]))
    for i in trackers:
        ops.append(("cmd", i, ["CLIENT", "TRACKINGINFO"]))
    ops.append(("main", ["INFO"]))
    return "tracking", TrackScenario(ops, dict(self.trk_protos))


Gen.gen_tracking = gen_tracking
FAMILY_KEYS["tracking"] = TRK_KEYS
FAMILIES.append("tracking")
