"""A minimal RESP3 client that keeps reply types (map order, sets, simple strings)."""
import socket

class Set(list): pass
class Simple(str): pass
class Err(str): pass
class Map(list):
    """A RESP3 map as an ordered list of (key, value) pairs."""
    def get(self, k, d=None):
        for a, b in self:
            if a == k: return b
        return d

class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port)); self.buf = b""; self.rec = None
    def _fill(self):
        d = self.sock.recv(1 << 20)
        if not d: raise EOFError
        self.buf += d
    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0: break
            self._fill()
        l = self.buf[:i]; self.buf = self.buf[i + 2:]
        if self.rec is not None: self.rec += l + b"\r\n"
        return l
    def _n(self, n):
        while len(self.buf) < n + 2: self._fill()
        d = self.buf[:n]; self.buf = self.buf[n + 2:]
        if self.rec is not None: self.rec += d + b"\r\n"
        return d
    def read(self):
        l = self._line(); t = l[:1]; r = l[1:]
        if t == b"+": return Simple(r.decode())
        if t == b"-": return Err(r.decode())
        if t == b":": return int(r)
        if t == b"$":
            n = int(r)
            return None if n < 0 else self._n(n).decode()
        if t in (b"*", b"~"):
            n = int(r)
            if n < 0: return None
            v = [self.read() for _ in range(n)]
            return Set(v) if t == b"~" else v
        if t == b"%":
            n = int(r); m = Map()
            for _ in range(n):
                k = self.read(); m.append((k, self.read()))
            return m
        if t == b"=":
            return self._n(int(r))[4:].decode()
        if t == b",": return float(r)
        if t == b"#": return r == b"t"
        if t == b"_": return None
        raise ValueError(l)
    def raw(self, *a):
        """Send a command; its reply's bytes exactly as the server wrote them, and the reply."""
        self.rec = bytearray()
        try:
            v = self.cmd(*a); return bytes(self.rec), v
        finally:
            self.rec = None
    def cmd(self, *a):
        out = b"*%d\r\n" % len(a)
        for x in a:
            x = x.encode() if isinstance(x, str) else x
            out += b"$%d\r\n%s\r\n" % (len(x), x)
        self.sock.sendall(out); return self.read()
