"""A minimal RESP2/RESP3 client for the differential fuzzer: one reply read as raw bytes plus a parsed tree.

The tree is (type_byte, payload) where payload is bytes for simple values and a list of trees for
aggregates (maps and attributes as a flat list of key, value, key, value ...). Raw bytes are what is
compared; the tree serves the comparison modes that ignore order.
"""

import socket


class Conn:
    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def call(self, args):
        self.send(args)
        return self.read()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("connection closed")
        if self.pos > (1 << 16) and self.pos * 2 > len(self.buf):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def _line(self):
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos:end])
                self.pos = end + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n + 2
        return data

    def read(self):
        """Returns (raw_bytes, tree) of one complete reply (attributes included in raw)."""
        # Bytes consumed may span refills; collect them as they are parsed.
        self._consumed = []
        tree = self._value()
        return b"".join(self._consumed), tree

    def _take_line(self):
        line = self._line()
        self._consumed.append(line + b"\r\n")
        return line

    def _value(self):
        line = self._take_line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-", b":", b"_", b"#", b",", b"("):
            return (t, rest)
        if t in (b"$", b"!", b"="):
            n = int(rest)
            if n < 0:
                return (t, None)
            data = self._exact(n)
            self._consumed.append(data + b"\r\n")
            return (t, data)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return (t, None)
            return (t, [self._value() for _ in range(n)])
        if t in (b"%", b"|"):
            n = int(rest)
            items = []
            for _ in range(n):
                items.append(self._value())
                items.append(self._value())
            if t == b"|":
                # An attribute precedes the real reply.
                return self._value()
            return (t, items)
        raise ValueError("bad RESP type byte in %r" % line)


def encode(tree):
    """Re-encodes a tree (used after sorting for a canonical form)."""
    t, p = tree
    if p is None:
        return t + b"-1\r\n"
    if isinstance(p, list):
        n = len(p) // 2 if t in (b"%", b"|") else len(p)
        return t + str(n).encode() + b"\r\n" + b"".join(encode(x) for x in p)
    if t in (b"$", b"!", b"="):
        return t + str(len(p)).encode() + b"\r\n" + p + b"\r\n"
    return t + p + b"\r\n"


def order_free(mode, tree):
    """A reply in the form compared where its order is a hash table's: "unordered" (a top-level
    aggregate as a multiset) or "pairs" (a flat field/value array or a map, as a set of pairs).
    None for any other mode, or a reply that is no aggregate."""
    t, p = tree
    if mode not in ("unordered", "pairs") or not isinstance(p, list):
        return None
    if mode == "pairs":
        items = [encode(p[i]) + encode(p[i + 1]) for i in range(0, len(p) - 1, 2)]
    else:
        items = [encode(x) for x in p]
    return t + b"".join(sorted(items))
