#!/usr/bin/env python3
"""hostile.py - runs the hostile-input corpus (tests/hostile/cases.txt)
against an HTTP server on loopback.

    hostile.py PORT [--corpus FILE] [--path /] [--secret TEXT] [--pid PID] [--only NAME]

For each case: connect, send the request bytes, half-close, read until the
server closes (at most --timeout seconds), and check the answer against the
case's EXPECT. With --secret, no response may contain TEXT (a file outside
the served directory). With --pid, the server must still be running after
each case. Then one normal request must still get 200.

Prints one line per case ("ok NAME: 400" or "FAIL NAME: expected ..., got
..."), and exits 1 if any case failed.
"""
import argparse
import os
import re
import socket
import sys
import time

CORPUS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hostile")


def expand(text, path):
    """Turns the corpus notation into bytes: escapes, {TEXT*N}, @PATH@."""
    text = text.replace("@PATH@", path)
    # Repeat first, escapes second: {\x00*64} is 64 NUL bytes.
    text = re.sub(r"\{(.*?)\*(\d+)\}", lambda m: m.group(1) * int(m.group(2)), text)
    out = bytearray()
    i = 0
    simple = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in simple:
                out += simple[nxt]
                i += 2
                continue
            if nxt == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def load_cases(path, corpus="cases.txt"):
    """The corpus as (name, [acceptable answers], request bytes)."""
    cases = []
    with open(os.path.join(CORPUS_DIR, corpus), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, expect, request = line.split("\t", 2)
            cases.append((name, expect.split("|"), expand(request, path)))
    return cases


def exchange(port, data, timeout):
    """Sends data, half-closes, reads to EOF. Returns (bytes, how)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    deadline = time.monotonic() + timeout
    got = bytearray()
    how = "closed"
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse before reading it all
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                how = "timeout"
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                how = "timeout"
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    return bytes(got), how


def verdict(expect, response, how):
    """Returns None if the answer is acceptable, else what was wrong."""
    if how == "timeout":
        return "the server neither answered nor closed the connection"
    if not response:
        if "close" in expect or "reject" in expect:
            return None
        return "the server closed the connection without a response"
    m = re.match(rb"HTTP/1\.[01] (\d{3})[ \r\n]", response)
    if not m:
        return "not an HTTP response: %r" % response[:60]
    code = m.group(1).decode()
    for e in expect:
        if e == code or (e.endswith("xx") and code[0] == e[0]):
            return None
        if e == "reject" and code[0] in "45":
            return None
    return "status %s" % code


def status_of(response):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return m.group(1).decode() if m else ("close" if not response else "garbage")


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--corpus", default="cases.txt", help="a file in tests/hostile/")
    ap.add_argument("--path", default="/")
    ap.add_argument("--secret")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--only")
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()

    failures = 0
    for name, expect, request in load_cases(args.path, args.corpus):
        if args.only and name != args.only:
            continue
        try:
            response, how = exchange(args.port, request, args.timeout)
        except OSError as e:
            print("FAIL %s: could not talk to the server: %s" % (name, e))
            failures += 1
            continue
        problem = verdict(expect, response, how)
        if problem is None and args.secret and args.secret.encode() in response:
            problem = "the response contains the secret from outside the directory"
        if problem is None and args.pid and not alive(args.pid):
            problem = "the server died"
        if problem:
            failures += 1
            print("FAIL %s: expected %s, got %s\n     request: %r" % (
                name, " or ".join(expect), problem, request[:120]))
            if args.pid and not alive(args.pid):
                print("the server is dead: stopping here")
                break
        else:
            print("ok %s: %s" % (name, status_of(response)))

    if not args.only:
        response, how = exchange(args.port, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                             % args.path).encode(), args.timeout)
        if status_of(response) != "200":
            failures += 1
            print("FAIL after the corpus, a normal GET %s got %s instead of 200" % (
                args.path, status_of(response) if how != "timeout" else "no answer"))
        else:
            print("ok after the corpus, a normal request still gets 200")
    print("%d case(s) failed" % failures if failures else "every case was handled")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
