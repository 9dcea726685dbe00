#!/usr/bin/env python3
"""serve_dir.py - python's own http.server, on a port the kernel picks.

    serve_dir.py [--close-delimited] DIR

Serves the files in DIR on 127.0.0.1 with http.server's
SimpleHTTPRequestHandler (what `python3 -m http.server` runs; its
command line cannot ask for port 0). Once listening it prints
    listening on 127.0.0.1:PORT
and serves until it is killed. Responses are HTTP/1.0 style: one request
a connection, then the server closes.

--close-delimited drops Content-Length from every response, so a client
can only find the end of a body by reading until the server closes (the
oldest way, still legal: RFC 9112 section 6.3, rule 8).
"""
import functools
import http.server
import sys


class CloseDelimitedHandler(http.server.SimpleHTTPRequestHandler):
    def send_header(self, keyword, value):
        if keyword.lower() != "content-length":
            super().send_header(keyword, value)


def main():
    args = sys.argv[1:]
    handler = http.server.SimpleHTTPRequestHandler
    if args[:1] == ["--close-delimited"]:
        handler = CloseDelimitedHandler
        args = args[1:]
    if len(args) != 1:
        sys.exit("usage: serve_dir.py [--close-delimited] DIR")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=args[0]))
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
