#!/usr/bin/env python3
"""http_keepalive_server.py - an HTTP/1.1 keep-alive server that says what it saw.

Test equipment for the HTTP client lessons: a real server that answers
several requests on one connection, and logs, one line each, flushed:

    listening on 127.0.0.1:PORT
    connection N                    a new connection (N counts from 1)
    request N METHOD TARGET         a request on connection N

so a test can count connections and requests. Each line is written
before the response goes out: once a client has its answer, the line is
in the log. Built on http.server's BaseHTTPRequestHandler; every response
has a Content-Length (or is chunked) and keeps the connection open,
except where a route below says otherwise.

    /redirect/CODE?to=LOCATION   CODE with Location: LOCATION (url-decoded)
    /loop                        302 to /loop, forever
    /status/CODE                 CODE, body "status CODE"
    /drop/...                    200, then closes the connection without
                                 saying so (like a keep-alive timeout)
    /close/...                   200 with "Connection: close", and then
                                 keeps the connection open anyway: a client
                                 that reuses it shows up in the log as a
                                 second request on the same connection
                                 (a real server would close, and the
                                 client's reconnect would hide the mistake)
    /http10/...                  an HTTP/1.0 200 without "Connection:
                                 keep-alive" (so: not persistent), and the
                                 connection kept open the same way
    /http10-keep/...             an HTTP/1.0 200 with "Connection:
                                 keep-alive": this one may be reused
    /chunked/...                 200, chunked, with a chunk extension and a
                                 trailer field; body: the target
    /method                      body "METHOD BODY": the request's method
                                 and body
    anything else                200, body: the target

Every body ends in a newline.

    python3 tests/support/http_keepalive_server.py [-p PORT]
"""
import argparse
import http.server
import socket
import sys
import threading
import urllib.parse

lock = threading.Lock()
connections = 0


def log(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless we say otherwise

    def setup(self):
        global connections
        super().setup()
        # http.server sends the head and the body in two writes; with
        # Nagle's algorithm the second waits for the client's delayed ACK
        # of the first: 40 ms a response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with lock:
            connections += 1
            self.conn_id = connections
        log(f"connection {self.conn_id}")

    def log_message(self, format, *args):
        pass  # our own log is on stdout; keep stderr quiet

    def reply(self, code, body, headers=()):
        data = body.encode()
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def respond(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("latin-1") if length else ""
        log(f"request {self.conn_id} {self.command} {self.path}")
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.split("/")
        if url.path.startswith("/redirect/") and parts[2].isdigit():
            to = urllib.parse.parse_qs(url.query).get("to", ["/"])[0]
            self.reply(int(parts[2]), "redirecting\n", [("Location", to)])
        elif url.path == "/loop":
            self.reply(302, "again\n", [("Location", "/loop")])
        elif url.path.startswith("/status/") and parts[2].isdigit():
            self.reply(int(parts[2]), f"status {parts[2]}\n")
        elif url.path.startswith("/drop/"):
            self.reply(200, self.path + "\n")
            self.close_connection = True  # closes, but never said so
        elif url.path.startswith(("/close/", "/http10/", "/http10-keep/")):
            # Written by hand: send_header("Connection", "close") would
            # make http.server close the connection, and we want to see
            # whether the client sends another request on it.
            data = (self.path + "\n").encode()
            version, extra = "HTTP/1.1", b"Connection: close\r\n"
            if url.path.startswith("/http10/"):
                version, extra = "HTTP/1.0", b""
            elif url.path.startswith("/http10-keep/"):
                version, extra = "HTTP/1.0", b"Connection: keep-alive\r\n"
            self.wfile.write(b"%s 200 OK\r\n%sContent-Length: %d\r\n\r\n%s"
                             % (version.encode(), extra, len(data), data))
            self.close_connection = False
        elif url.path.startswith("/chunked/"):
            data = (self.path + "\n").encode()
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            self.wfile.write(b"3;name=value\r\n" + data[:3] + b"\r\n"
                             + b"%x\r\n" % (len(data) - 3) + data[3:] + b"\r\n"
                             + b"0\r\nX-Checksum: ok\r\n\r\n")
        elif url.path == "/method":
            self.reply(200, f"{self.command} {body}\n")
        else:
            self.reply(200, self.path + "\n")

    do_GET = do_POST = do_PUT = do_DELETE = respond


def main():
    parser = argparse.ArgumentParser(description="keep-alive HTTP test server")
    parser.add_argument("-p", "--port", type=int, default=0)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    log(f"listening on {host}:{port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()
