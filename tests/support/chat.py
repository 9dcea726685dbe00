#!/usr/bin/env python3
"""chat.py - scripted chat clients for tests/08-poll.bats.

An independent peer for the lesson's chat server (never the lesson's own
code), for what the C peer cannot choreograph: many clients in one
process, and clients that must keep in step with each other.

  chat.py crowd PORT N
      N clients connect at once. Each must get one first line: the
      welcome (`welcome, you are [ID]`) or a refusal
      (`error: server full`, then the connection closes). Then the
      first and the last welcomed client each say one line, and every
      other welcomed client must receive it as `[ID] line`.

  chat.py flood PORT BYTES
      Four clients join one after another: two readers, one that never
      reads, and a sender. The sender sends BYTES of lines, never more
      than WINDOW_LINES ahead of the readers, who must receive every
      line whole, as `[ID] line`, in order. At the end the client that
      never read must find its connection closed by the server (it was
      dropped), and the sender must have been sent nothing back.

What happened goes to stdout, one fact a line. When the server
misbehaves: a message on stderr saying what was expected and what
happened, and exit status 1. Usage errors exit 2. Every wait has a
deadline.
"""
import re
import select
import socket
import sys
import time

HOST = "127.0.0.1"
WAIT = 5.0            # seconds any one step may take before we call it stuck
SILENCE = 2.0         # seconds of silence that mean "no EOF is coming"
LINE_BYTES = 1000     # flood lines, '\n' included
WINDOW_LINES = 32     # how far the flood sender may run ahead of its readers
WELCOME = re.compile(rb"^welcome, you are \[([0-9]+)\]$")
FULL = b"error: server full"


class Fail(Exception):
    """The server did something wrong; the message says what."""


def show(data, limit=80):
    text = repr(bytes(data[:limit]))[2:-1]
    return text + ("..." if len(data) > limit else "")


class Client:
    def __init__(self, port, name, tiny=False):
        self.name = name
        self.id = None
        self.buf = b""
        self.received = 0
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if tiny:
                # A small receive window and segment size keep the kernels'
                # own buffers for this client to a few KB (a few MB
                # otherwise, on loopback), so the server's queue for it
                # overflows after ~100 KB of chat, not after megabytes.
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                if hasattr(socket, "TCP_MAXSEG"):
                    self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
            self.sock.settimeout(WAIT)
            self.sock.connect((HOST, port))
        except OSError as e:
            raise Fail(f"{name}: cannot connect to {HOST} port {port}: {e.strerror or e}")

    def label(self):
        return f"[{self.id}]" if self.id is not None else self.name

    def _recv(self, deadline):
        """One recv() before the deadline: bytes, b"" at EOF, None on timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return b""
        self.received += len(data)
        return data

    def line(self, deadline):
        """The next line without its newline; None at EOF; raises on timeout."""
        while b"\n" not in self.buf:
            data = self._recv(deadline)
            if data is None:
                raise Fail(f"{self.label()}: no complete line within {WAIT:g} s"
                           f" (got so far: '{show(self.buf)}')")
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def exactly(self, n, deadline):
        """The next n bytes; raises on timeout or EOF, saying how far it got."""
        while len(self.buf) < n:
            data = self._recv(deadline)
            if not data:
                why = "then the connection closed" if data == b"" else f"then nothing for {WAIT:g} s"
                raise Fail(f"{self.label()}: expected {n} more bytes, got {len(self.buf)}, {why}"
                           " (is the server waiting for a client that does not read?)")
            self.buf += data
        got, self.buf = self.buf[:n], self.buf[n:]
        return got

    def join(self):
        """Reads the welcome line and learns the ID; raises if it is not one."""
        line = self.line(time.monotonic() + WAIT)
        m = WELCOME.match(line or b"")
        if not m:
            raise Fail(f"{self.name}: expected 'welcome, you are [ID]' first, got "
                       + ("EOF" if line is None else f"'{show(line)}'"))
        self.id = int(m.group(1))
        return self

    def send(self, data):
        self.sock.settimeout(WAIT)
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise Fail(f"{self.label()}: could not send for {WAIT:g} s:"
                       " the server stopped reading this client")
        except OSError as e:
            raise Fail(f"{self.label()}: send failed: {e.strerror or e}")

    def wait_eof(self):
        """True if the connection ends (EOF or reset) before SILENCE s pass."""
        self.buf = b""
        while True:
            data = self._recv(time.monotonic() + SILENCE)
            if data is None:
                return False
            if not data:
                return True

    def close(self):
        self.sock.close()


def hear(speaker, listeners, text):
    """speaker says text; every listener must get "[ID] text". Returns how many did."""
    speaker.send(text + b"\n")
    want = b"[%d] %s" % (speaker.id, text)
    deadline = time.monotonic() + WAIT
    heard, problems = 0, []
    for c in listeners:
        try:
            got = c.line(deadline)
        except Fail as e:
            problems.append(str(e))
            continue
        if got == want:
            heard += 1
        else:
            problems.append(f"{c.label()}: expected '{show(want)}', got "
                            + ("EOF" if got is None else f"'{show(got)}'"))
    print(f"broadcast from {speaker.label()} reached {heard} of {len(listeners)}")
    return problems


def crowd(port, n):
    clients = [Client(port, f"client {k + 1}") for k in range(n)]
    welcomed, refused, problems = [], [], []
    deadline = time.monotonic() + WAIT
    for c in clients:
        try:
            line = c.line(deadline)
        except Fail as e:
            problems.append(str(e))
            continue
        if line is not None and WELCOME.match(line):
            c.id = int(WELCOME.match(line).group(1))
            welcomed.append(c)
        elif line == FULL:
            refused.append(c)
        else:
            problems.append(f"{c.name}: expected 'welcome, you are [ID]' or '{FULL.decode()}',"
                            " got " + ("EOF" if line is None else f"'{show(line)}'"))
    print(f"welcomed {len(welcomed)}")
    print(f"refused {len(refused)}")
    for c in refused:
        if not c.wait_eof():
            problems.append(f"{c.name}: after '{FULL.decode()}' the server must close the"
                            f" connection, but it stayed open for {SILENCE:g} s")
    ids = [c.id for c in welcomed]
    if len(set(ids)) != len(ids):
        problems.append(f"two welcomed clients got the same ID: {sorted(ids)}")
    if len(welcomed) >= 2 and not problems:
        first, last = welcomed[0], welcomed[-1]
        problems += hear(first, welcomed[1:], b"hello from the first")
        problems += hear(last, welcomed[:-1], b"hello from the last")
    for c in clients:
        c.close()
    return problems


FILLER = bytes(48 + i % 75 for i in range(2 * LINE_BYTES))   # printable, never '\n'


def flood_line(k):
    """Line k of the flood: LINE_BYTES long, numbered, each a little different."""
    head = b"line %07d " % k
    return head + FILLER[k % 75:k % 75 + LINE_BYTES - 1 - len(head)] + b"\n"


def flood(port, total):
    readers = [Client(port, "reader 1").join(), Client(port, "reader 2").join()]
    mute = Client(port, "the client that never reads", tiny=True).join()
    sender = Client(port, "sender").join()
    lines = [flood_line(k) for k in range((total + LINE_BYTES - 1) // LINE_BYTES)]
    payload = b"".join(lines)
    prefix = b"[%d] " % sender.id
    want = b"".join(prefix + line for line in lines)
    out_line = LINE_BYTES + len(prefix)   # one line as the readers get it
    for c in readers + [sender]:
        c.sock.setblocking(False)
    sent, got = 0, [0] * len(readers)
    last_progress = time.monotonic()
    while min(got) < len(want):
        # Flow control: the sender never gets more than WINDOW_LINES ahead
        # of the slower reader, so a reader's queue in the server never
        # holds more than that, however the machine schedules us.
        behind = sent // LINE_BYTES - min(got) // out_line
        room = (WINDOW_LINES - behind) * LINE_BYTES - sent % LINE_BYTES
        writers = [sender.sock] if sent < len(payload) and room > 0 else []
        left = last_progress + WAIT - time.monotonic()
        ready_r, ready_w, _ = select.select([r.sock for r in readers], writers, [], max(left, 0))
        if not ready_r and not ready_w:
            raise Fail(f"stuck for {WAIT:g} s: the sender had sent {sent} of {len(payload)} bytes;"
                       + "".join(f" {r.label()} had received {g} of {len(want)};"
                                 for r, g in zip(readers, got))
                       + " is the server waiting for the client that never reads?")
        if ready_w:
            try:
                sent += sender.sock.send(payload[sent:sent + room])
                last_progress = time.monotonic()
            except BlockingIOError:
                pass
            except OSError as e:
                raise Fail(f"{sender.label()}: send failed after {sent} bytes: {e.strerror or e}")
        for i, r in enumerate(readers):
            if r.sock not in ready_r:
                continue
            try:
                data = r.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                raise Fail(f"{r.label()}: recv failed after {got[i]} bytes: {e.strerror or e}")
            if not data:
                raise Fail(f"{r.label()} keeps up, yet the server closed its connection after"
                           f" {got[i]} of {len(want)} bytes")
            expect = want[got[i]:got[i] + len(data)]
            if data != expect:
                at = got[i] + next(k for k in range(len(data)) if data[k:k + 1] != expect[k:k + 1])
                line_start = at - at % out_line
                raise Fail(f"{r.label()}: the broadcast went wrong at byte {at}:"
                           f"\n  expected '{show(want[line_start:])}'"
                           f"\n  got      '{show((want[:got[i]] + data)[line_start:])}'")
            got[i] += len(data)
            last_progress = time.monotonic()
            if hasattr(socket, "TCP_QUICKACK"):
                # ACK at once: a server that leaves Nagle on (most do)
                # waits for our ACK before it sends the tail of a line,
                # and a delayed ACK would cost 40 ms each time.
                r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    print(f"sent {sent} bytes in {len(lines)} lines from {sender.label()}")
    for r in readers:
        print(f"{r.label()} received every line")
    problems = []
    if mute.wait_eof():
        print(f"{mute.label()} was dropped (it found {mute.received} bytes waiting, then EOF)")
    else:
        problems.append(f"{mute.label()} never read, and after the flood its connection was"
                        f" still open: it found {mute.received} bytes waiting and no EOF"
                        f" in {SILENCE:g} s. The server must drop a client whose bounded"
                        " output queue overflows.")
    try:
        echo = sender.sock.recv(65536)
        problems.append(f"{sender.label()} was sent its own lines back: '{show(echo)}'"
                        if echo else f"{sender.label()}: the server closed the sender")
    except BlockingIOError:
        print(f"{sender.label()} was sent nothing back")
    for c in readers + [mute, sender]:
        c.close()
    return problems


def main(argv):
    if len(argv) != 4 or argv[1] not in ("crowd", "flood") or not argv[2].isdigit() \
            or not argv[3].isdigit():
        print("usage: chat.py crowd PORT N | chat.py flood PORT BYTES", file=sys.stderr)
        return 2
    port, n = int(argv[2]), int(argv[3])
    try:
        problems = crowd(port, n) if argv[1] == "crowd" else flood(port, n)
    except Fail as e:
        problems = [str(e)]
    for p in problems[:5]:
        print(p, file=sys.stderr)
    if len(problems) > 5:
        print(f"... and {len(problems) - 5} more like these", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
