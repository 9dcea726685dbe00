#!/usr/bin/env python3
"""check_listing.py PAGE DIR BASE_URL - checks an HTML directory listing.

PAGE is the listing a server sent for the directory DIR, which it serves
at BASE_URL (ending in '/'). The page is parsed as a browser parses it,
and these must hold; each that does not is printed, and the exit status
is then 1:
  - no file name became markup (no <b>, <img> or <script> tag: the test
    trees have names made of those);
  - every name in DIR is the text of a link (a directory's may end in '/');
  - each link is percent-encoded (no space, ?, #, quote, <, >, byte
    outside printable ASCII, or % without two hex digits) and decodes to
    the name;
  - following each link gives 200 and, for a file, the file's bytes.
"""
import html.parser
import os
import re
import sys
import urllib.parse
import urllib.request

NOT_ENCODED = re.compile(r"[^\x21-\x7e]|[ ?#<>\"']|%(?![0-9A-Fa-f]{2})")


class Listing(html.parser.HTMLParser):
    """Collects the tags seen and each link as (href, text)."""

    def __init__(self):
        super().__init__()
        self.links, self.tags, self.link = [], set(), None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "a":
            self.link = [dict(attrs).get("href"), ""]

    def handle_data(self, data):
        if self.link is not None:
            self.link[1] += data

    def handle_endtag(self, tag):
        if tag == "a" and self.link is not None:
            self.links.append(tuple(self.link))
            self.link = None


def problems(page, directory, base):
    listing = Listing()
    with open(page, encoding="utf-8", errors="replace") as f:
        listing.feed(f.read())
    listing.close()
    found = []
    for tag in sorted(listing.tags & {"b", "img", "script"}):
        found.append("a file name became markup: the page has a <%s> tag "
                     "(escape & < > \" ' in names)" % tag)
    names = set(os.listdir(directory))
    shown = {}
    for href, text in listing.links:
        name = text.strip()
        if name.endswith("/") and os.path.isdir(os.path.join(directory, name[:-1])):
            name = name[:-1]
        shown[name] = href
    for name in sorted(names - set(shown)):
        found.append("the name %r is not shown as the text of a link" % name)
    for name in sorted(names & set(shown)):
        href = shown[name]
        if href is None:
            found.append("the link for %r has no href" % name)
        elif NOT_ENCODED.search(href):
            found.append("the link for %r is not percent-encoded: href=%r" % (name, href))
        elif urllib.parse.unquote(href).rstrip("/") != name:
            found.append("the link for %r decodes to %r" % (name, urllib.parse.unquote(href)))
        else:
            found.extend(follow(base, href, os.path.join(directory, name), name))
    return found


def follow(base, href, path, name):
    try:
        with urllib.request.urlopen(urllib.parse.urljoin(base, href), timeout=5) as r:
            got = r.read()
    except Exception as e:  # any failure is the server's: say what it was
        return ["following the link for %r (href=%r) failed: %s" % (name, href, e)]
    if os.path.isfile(path):
        with open(path, "rb") as f:
            if got != f.read():
                return ["following the link for %r gave other bytes than the file" % name]
    return []


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: check_listing.py PAGE DIR BASE_URL")
    found = problems(*sys.argv[1:])
    print("\n".join(found))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
