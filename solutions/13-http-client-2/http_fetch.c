/*
 * http_fetch - lesson 13: a small curl.
 *
 *     http_fetch [-i] [-v] [-f] [-L] [-d DATA] [-o FILE] [-m SECONDS] URL...
 *
 * Fetches each URL (http:// only) with HTTP/1.1 and writes the bodies to
 * stdout, or to FILE with -o. Beyond lesson 10's http_get it handles:
 *   - chunked bodies (Transfer-Encoding: chunked) with chunk extensions
 *     and trailers, however the bytes are split on the way;
 *   - keep-alive: URLs on the same host and port share one connection,
 *     and a kept connection the server has closed meanwhile is replaced;
 *   - -L: follows 301, 302, 303, 307 and 308, at most MAX_REDIRECTS;
 *   - -d DATA: a POST with Content-Length, form-encoded like curl's -d;
 *   - -m SECONDS: one deadline for the whole run, connect included;
 *   - -v: the request and response headers on stderr, curl style
 *     ("> " out, "< " in, "* " notes); -i: response headers on stdout;
 *   - -f: a status >= 400 is a failure (exit 22) and its body is dropped.
 *
 * Exit statuses are curl's where curl has one:
 *     0 ok            6 cannot resolve     7 cannot connect
 *     8 a response head we cannot parse   18 body shorter than promised
 *    22 -f and a status >= 400            23 cannot write the output
 *    28 -m ran out   47 too many redirects 52 closed without a reply
 *    55 send failed  56 receive failed, or broken chunked framing
 *     2 usage, or a malformed or non-http URL;  1 anything else
 *
 * Bodies stream through one fixed buffer of BUF_SIZE bytes, so memory
 * use does not grow with the size of the download.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PROG "http_fetch"

/* Limits. Each names what happens when a peer goes past it. */
#define BUF_SIZE (256 * 1024)      /* read buffer; bodies stream through it */
#define MAX_HEAD_BYTES (64 * 1024) /* status line + headers (or trailers): else 56 */
#define MAX_HEADER_LINE 8192       /* one header line: else 56 */
#define MAX_CHUNK_LINE 4096        /* a chunk-size line with its extensions: else 56 */
#define MAX_REDIRECTS 20           /* -L gives up after this many: 47 (curl: 50) */
#define MAX_URL 8192               /* a URL or Location: else 2 (or 8 for Location) */
#define MAX_HOST 255               /* a DNS name is at most 255 bytes */
#define MAX_SECONDS 86400.0        /* the largest -m we accept */

_Static_assert(MAX_HEAD_BYTES < BUF_SIZE, "a whole response head must fit in the buffer");

enum {
    EXIT_FAIL = 1,       /* anything without a better number */
    EXIT_USAGE = 2,      /* bad option, malformed or non-http URL */
    EXIT_RESOLVE = 6,    /* getaddrinfo found nothing */
    EXIT_CONNECT = 7,    /* no address accepted the connection */
    EXIT_WEIRD = 8,      /* a response head we cannot parse */
    EXIT_PARTIAL = 18,   /* the body ended before its promised end */
    EXIT_HTTP = 22,      /* -f and a status >= 400 */
    EXIT_WRITE = 23,     /* writing the output failed */
    EXIT_TIMEOUT = 28,   /* -m ran out */
    EXIT_REDIRECTS = 47, /* more than MAX_REDIRECTS redirects */
    EXIT_EMPTY = 52,     /* the server closed without a reply */
    EXIT_SEND = 55,      /* sending the request failed */
    EXIT_RECV = 56,      /* receiving failed, or the chunked framing is broken */
};

struct options {
    int include, verbose, fail, follow; /* -i -v -f -L */
    const char *data;                   /* -d: POST this; NULL: GET */
    const char *out_path;               /* -o FILE; NULL: stdout */
    long long max_ms;                   /* -m in milliseconds; 0: no limit */
};

struct url {
    char host[MAX_HOST + 1];   /* an IPv6 address without its brackets */
    char port[6];              /* digits, "80" by default */
    char target[MAX_URL + 1];  /* what the request line asks for: /path?query */
    int ipv6;                  /* host needs [brackets] in Host: and in URLs */
};

struct conn {
    int fd;                    /* -1: not connected */
    char host[MAX_HOST + 1];   /* where fd leads */
    char port[6];
    long responses;            /* responses read on fd: > 0 means kept alive */
    long long received;        /* bytes received since the last request went out */
    char *buf;                 /* BUF_SIZE bytes; unread input is buf[start, end) */
    size_t start, end;
};

struct response {
    int status;                /* 200 */
    int keep_alive;            /* the connection may carry another request */
    int chunked;               /* Transfer-Encoding: chunked */
    long long length;          /* Content-Length; -1: none, read until close */
    char location[MAX_URL + 1];/* Location, "" if none */
    int follow;                /* -L and a redirect we will follow */
};

struct fetch {                 /* what the whole run shares: no globals */
    struct options opt;
    struct conn conn;
    int out_fd;                /* stdout, or -o FILE */
    long long deadline;        /* CLOCK_MONOTONIC ms when -m runs out; -1: never */
};

/*** messages ***/

/* Prints "http_fetch: ..." and returns code, so that errors read
 * `return failf(EXIT_RECV, "recv: %s", strerror(errno));`. */
static int failf(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* -v notes, curl style: "* Connected to ...". */
static void note(const struct fetch *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const struct fetch *f, const char *fmt, ...)
{
    if (!f->opt.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("* ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Turns a failed send or recv (errno in err) into its message and exit
 * status; ETIMEDOUT is our own code for "-m ran out". */
static int io_failed(const struct fetch *f, int code, const char *what, int err)
{
    if (err == ETIMEDOUT)
        return failf(EXIT_TIMEOUT, "timed out after %lld ms (-m)", f->opt.max_ms);
    return failf(code, "%s: %s", what, strerror(err));
}

/*** time and waiting ***/

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events (POLLIN or POLLOUT). Returns 0, or
 * -1 with errno ETIMEDOUT once the deadline (-1: none) has passed. */
static int wait_ready(int fd, short events, long long deadline)
{
    for (;;) {
        int ms = -1;
        /* poll() takes a relative timeout, and a signal can cut it
         * short: recompute what is left of the deadline every time. */
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0; /* ready, or an error the next recv/send reports */
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/*** socket I/O: non-blocking, waiting only up to the deadline ***/

/* recv() that waits (up to the deadline) while no data is there yet.
 * Returns the bytes read, 0 at EOF, or -1 with errno. */
static ssize_t io_recv(int fd, char *buf, size_t len, long long deadline)
{
    for (;;) {
        /* A server that drips one byte a second never makes recv wait,
         * so the deadline is checked here too, not only in poll. */
        if (deadline >= 0 && now_ms() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (wait_ready(fd, POLLIN, deadline) < 0)
            return -1;
    }
}

/* Sends all len bytes. Returns 0, or -1 with errno. */
static int io_send_all(int fd, const char *buf, size_t len, long long deadline)
{
    while (len > 0) {
        if (deadline >= 0 && now_ms() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t n = send(fd, buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            if (wait_ready(fd, POLLOUT, deadline) < 0)
                return -1;
            continue;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* write() all of it to the output (a file or a pipe: blocking is fine). */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Body bytes go to to_fd, or nowhere when to_fd is -1 (a redirect's). */
static int emit(const struct fetch *f, int to_fd, const char *buf, size_t len)
{
    if (to_fd < 0 || write_all(to_fd, buf, len) == 0)
        return 0;
    return failf(EXIT_WRITE, "write %s: %s", f->opt.out_path ? f->opt.out_path : "stdout",
                 strerror(errno));
}

/*** URLs ***/

static int is_host_char(int ch, int ipv6)
{
    if (ipv6)
        return isxdigit(ch) || ch == ':' || ch == '.';
    return isalnum(ch) || ch == '-' || ch == '.' || ch == '_';
}

/* Splits http://HOST[:PORT][/PATH][?QUERY][#FRAGMENT] into u. Returns
 * NULL, or why the URL is refused. The fragment never goes on the wire. */
static const char *url_parse(const char *text, struct url *u)
{
    const char *p = strstr(text, "://");
    if (!p)
        return "malformed URL: it must start with http://";
    if (p - text != 4 || strncasecmp(text, "http", 4) != 0)
        return "unsupported scheme: only http:// is supported";
    const char *auth = p + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *host = auth, *hend = auth + alen, *after;
    u->ipv6 = *auth == '[';
    if (u->ipv6) {
        host = auth + 1;
        hend = memchr(host, ']', alen - 1);
        if (!hend)
            return "malformed URL: no ] after an IPv6 address";
        after = hend + 1;
    } else {
        const char *colon = memchr(auth, ':', alen);
        hend = after = colon ? colon : auth + alen;
    }
    if (hend == host)
        return "malformed URL: no host";
    if (hend - host > MAX_HOST)
        return "malformed URL: host name too long";
    for (const char *h = host; h < hend; h++)
        if (!is_host_char((unsigned char)*h, u->ipv6))
            return "malformed URL: bad character in the host";
    memcpy(u->host, host, (size_t)(hend - host));
    u->host[hend - host] = '\0';

    memcpy(u->port, "80", 3);
    if (after < auth + alen) {
        size_t plen = (size_t)(auth + alen - after - 1);
        if (*after != ':' || plen < 1 || plen > 5 || strspn(after + 1, "0123456789") < plen)
            return "malformed URL: bad port";
        memcpy(u->port, after + 1, plen);
        u->port[plen] = '\0';
        long port = strtol(u->port, NULL, 10);
        if (port < 1 || port > 65535)
            return "malformed URL: port out of range";
    }

    const char *rest = auth + alen;
    size_t tlen = strcspn(rest, "#");
    if (tlen + 1 > MAX_URL)
        return "malformed URL: too long";
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)rest[i] <= ' ' || (unsigned char)rest[i] >= 0x7f)
            return "malformed URL: spaces, control and non-ASCII bytes must be %-encoded";
    /* "http://h" and "http://h?q" ask for "/" and "/?q". */
    size_t slash = *rest == '/' ? 0 : 1;
    u->target[0] = '/';
    memcpy(u->target + slash, rest, tlen);
    u->target[slash + tlen] = '\0';
    return NULL;
}

/* "http://host:port" as the start of an absolute URL (brackets for IPv6). */
static void url_origin(const struct url *u, char *buf, size_t size)
{
    snprintf(buf, size, u->ipv6 ? "http://[%s]:%s" : "http://%s:%s", u->host, u->port);
}

/* Does s start with a URI scheme and a colon ("https:", "ftp:")? */
static int has_scheme(const char *s)
{
    if (!isalpha((unsigned char)*s))
        return 0;
    while (isalnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.')
        s++;
    return *s == ':';
}

/* Turns a Location value into the next URL: RFC 3986 section 5 in
 * miniature. Simplification: "." and ".." segments are sent as they are
 * (servers normalise them), not removed. Returns NULL or why not. */
static const char *resolve_location(const struct url *base, const char *loc, struct url *next)
{
    char origin[MAX_HOST + 32], text[2 * MAX_URL + MAX_HOST + 32];
    url_origin(base, origin, sizeof origin);
    int n;
    if (has_scheme(loc)) {                    /* http://other/x */
        n = snprintf(text, sizeof text, "%s", loc);
    } else if (loc[0] == '/' && loc[1] == '/') { /* //other/x: same scheme */
        n = snprintf(text, sizeof text, "http:%s", loc);
    } else if (loc[0] == '/') {               /* /x: same host */
        n = snprintf(text, sizeof text, "%s%s", origin, loc);
    } else {
        /* "x" replaces the last path segment, "?q" only the query. */
        size_t keep = strcspn(base->target, "?");
        if (loc[0] != '?')
            while (keep > 0 && base->target[keep - 1] != '/')
                keep--;
        n = snprintf(text, sizeof text, "%s%.*s%s", origin, (int)keep, base->target, loc);
    }
    if (n < 0 || (size_t)n >= sizeof text)
        return "too long";
    return url_parse(text, next);
}

/*** the connection ***/

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->start = c->end = 0;
    c->responses = 0;
}

/* connect() that gives up at the deadline. A non-blocking connect returns
 * EINPROGRESS at once; the socket turns writable when the handshake is
 * over, and SO_ERROR then says whether it worked. Returns 0 or -1/errno. */
static int connect_before(int fd, const struct addrinfo *ai, long long deadline)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    /* EINTR: the connect goes on in the background, like EINPROGRESS. */
    if (errno != EINPROGRESS && errno != EINTR)
        return -1;
    if (wait_ready(fd, POLLOUT, deadline) < 0)
        return -1;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -1;
    errno = err;
    return err ? -1 : 0;
}

/* Opens a connection to u's host and port, trying every address in
 * getaddrinfo's order. Returns 0, or an exit status (6, 7, 28). */
static int conn_connect(struct fetch *f, const struct url *u)
{
    struct conn *c = &f->conn;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0)
        return failf(EXIT_RESOLVE, "could not resolve host %s: %s", u->host,
                     rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    int err = 0;
    for (struct addrinfo *ai = res; ai && c->fd < 0 && err != ETIMEDOUT; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect_before(fd, ai, f->deadline) == 0) {
            char ip[INET6_ADDRSTRLEN] = "?";
            getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST);
            note(f, "Connected to %s (%s) port %s", u->host, ip, u->port);
            c->fd = fd;
            break;
        }
        err = errno;
        if (fd >= 0)
            close(fd);
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        if (err == ETIMEDOUT)
            return io_failed(f, EXIT_CONNECT, "connect", err);
        return failf(EXIT_CONNECT, "connect to %s port %s: %s", u->host, u->port, strerror(err));
    }
    snprintf(c->host, sizeof c->host, "%s", u->host);
    snprintf(c->port, sizeof c->port, "%s", u->port);
    return 0;
}

/* Makes f->conn a connection to u's host and port: the one we kept open
 * if it leads there (keep-alive), else a new one. Returns 0 or a status. */
static int conn_for(struct fetch *f, const struct url *u)
{
    struct conn *c = &f->conn;
    if (c->fd >= 0 && strcmp(c->host, u->host) == 0 && strcmp(c->port, u->port) == 0) {
        note(f, "Re-using the connection to %s port %s", c->host, c->port);
        return 0;
    }
    conn_close(c);
    return conn_connect(f, u);
}

/* Reads up to limit more bytes into the buffer, moving unread bytes to
 * the front when the end is reached. Returns bytes read, 0 at EOF, -1. */
static ssize_t conn_fill(struct fetch *f, size_t limit)
{
    struct conn *c = &f->conn;
    if (c->start == c->end) {
        c->start = c->end = 0;
    } else if (c->end == BUF_SIZE) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    size_t room = BUF_SIZE - c->end;
    if (room == 0) { /* cannot happen: every limit is below BUF_SIZE */
        errno = EMSGSIZE;
        return -1;
    }
    ssize_t n = io_recv(c->fd, c->buf + c->end, limit < room ? limit : room, f->deadline);
    if (n > 0) {
        c->end += (size_t)n;
        c->received += n;
    }
    return n;
}

/* Makes sure a whole line (up to and with its LF) starts at
 * buf[start + off]. Returns its length, 0 if the connection closed
 * first, or -1 with errno (EMSGSIZE: no LF within max bytes). */
static ssize_t conn_line(struct fetch *f, size_t off, size_t max)
{
    struct conn *c = &f->conn;
    for (;;) {
        const char *p = c->buf + c->start + off;
        size_t have = c->end - c->start - off;
        const char *lf = memchr(p, '\n', have < max ? have : max);
        if (lf)
            return lf - p + 1;
        if (have >= max) {
            errno = EMSGSIZE;
            return -1;
        }
        ssize_t got = conn_fill(f, BUF_SIZE);
        if (got <= 0)
            return got;
    }
}

static int is_empty_line(const char *line, size_t len)
{
    return len == 1 || (len == 2 && line[0] == '\r');
}

/* Reads lines up to an empty one: a response head, or the trailer
 * section after a chunked body. Leaves them unread at buf[start] and
 * returns their length, 0 at EOF, or -1 with errno (EMSGSIZE: over
 * MAX_HEAD_BYTES or MAX_HEADER_LINE). */
static ssize_t read_head(struct fetch *f)
{
    size_t off = 0;
    for (;;) {
        size_t room = MAX_HEAD_BYTES - off;
        ssize_t n = conn_line(f, off, room < MAX_HEADER_LINE ? room : MAX_HEADER_LINE);
        if (n <= 0)
            return n;
        const char *line = f->conn.buf + f->conn.start + off;
        off += (size_t)n;
        if (is_empty_line(line, (size_t)n))
            return (ssize_t)off;
    }
}

/*** the request ***/

/* Appends to buf (size bytes, *len used) like snprintf; -1 if it is full. */
static int append(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

/* Writes the request head into buf. Returns its length, 0 if too long. */
static size_t format_request(char *buf, size_t size, const struct url *u, const char *method,
                             const char *body)
{
    size_t len = 0;
    /* Host: carries the port unless it is the default, as curl's does. */
    int bad = append(buf, size, &len, "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n", method,
                     u->target, u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "",
                     strcmp(u->port, "80") ? ":" : "", strcmp(u->port, "80") ? u->port : "");
    bad |= append(buf, size, &len, "User-Agent: " PROG "/1.0\r\nAccept: */*\r\n");
    if (body) {
        /* A body needs its length: the server cannot see where it ends
         * otherwise, since the connection stays open after it. */
        bad |= append(buf, size, &len,
                      "Content-Length: %zu\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n",
                      strlen(body));
    }
    bad |= append(buf, size, &len, "\r\n");
    return bad ? 0 : len;
}

/* -v: shows a head line by line after prefix ("> " or "< "), without
 * its CR LF, the way curl -v does. */
static void show_lines(const struct fetch *f, const char *prefix, const char *p, size_t len)
{
    if (!f->opt.verbose)
        return;
    const char *end = p + len;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *next = lf ? lf + 1 : end;
        size_t n = (size_t)((lf ? lf : end) - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        fprintf(stderr, "%s%.*s\n", prefix, (int)n, p);
        p = next;
    }
}

/* Sends the request head and body in one buffer: two small sends would
 * meet Nagle's algorithm and the server's delayed ACK, and wait 40 ms.
 * Returns 0, or -1 with errno. */
static int send_request(struct fetch *f, const struct url *u, const char *method, const char *body)
{
    char head[MAX_URL + MAX_HOST + 512];
    size_t hlen = format_request(head, sizeof head, u, method, body);
    if (hlen == 0) {
        errno = EMSGSIZE;
        return -1;
    }
    show_lines(f, "> ", head, hlen);
    size_t blen = body ? strlen(body) : 0;
    char *req = malloc(hlen + blen);
    if (!req)
        return -1;
    memcpy(req, head, hlen);
    if (blen)
        memcpy(req + hlen, body, blen);
    f->conn.received = 0;
    int rc = io_send_all(f->conn.fd, req, hlen + blen, f->deadline);
    int err = errno;
    free(req);
    errno = err;
    return rc;
}

/* Sends the request and reads the first response head, on the kept
 * connection if there is one. Servers close idle keep-alive connections
 * whenever they like (Apache after 5 s, nginx after 75 s), and we only
 * find out when our request fails or gets no answer at all. Such a
 * failure, before any byte of a response, on a reused connection, is not
 * an error: we retry once on a new connection (curl does the same).
 * Returns 0 with the head's length in *head_len, or an exit status. */
static int request(struct fetch *f, const struct url *u, const char *method, const char *body,
                   size_t *head_len)
{
    for (;;) {
        int rc = conn_for(f, u);
        if (rc)
            return rc;
        int reused = f->conn.responses > 0;
        int sent = send_request(f, u, method, body) == 0;
        ssize_t n = sent ? read_head(f) : -1;
        if (n > 0) {
            *head_len = (size_t)n;
            return 0;
        }
        int err = errno;
        long long received = f->conn.received;
        conn_close(&f->conn);
        if (reused && received == 0 && !(n < 0 && err == ETIMEDOUT)) {
            note(f, "The server closed the kept connection; connecting again");
            continue; /* the new connection is not reused: one retry only */
        }
        if (!sent)
            return err == EMSGSIZE ? failf(EXIT_FAIL, "request too long")
                                   : io_failed(f, EXIT_SEND, "send", err);
        if (n == 0 && received == 0)
            return failf(EXIT_EMPTY, "empty reply from server");
        if (n == 0)
            return failf(EXIT_RECV, "the connection closed in the middle of the response head");
        return io_failed(f, EXIT_RECV, "reading the response head", err);
    }
}

/*** the response head ***/

static int name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* Is tok one of the comma-separated tokens in value[0, len)? */
static int has_token(const char *value, size_t len, const char *tok)
{
    const char *end = value + len;
    while (value < end) {
        const char *comma = memchr(value, ',', (size_t)(end - value));
        const char *stop = comma ? comma : end;
        while (value < stop && (*value == ' ' || *value == '\t'))
            value++;
        size_t n = (size_t)(stop - value);
        while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
            n--;
        if (name_is(value, n, tok))
            return 1;
        value = stop + 1;
    }
    return 0;
}

/* Content-Length, strictly: one or more digits, nothing else, and no
 * overflow. "12abc", "-1", " " and 99999999999999999999 are all refused:
 * a lenient parser here is how request smuggling starts. */
static int parse_length(const char *p, size_t len, long long *out)
{
    long long v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        int d = p[i] - '0';
        if (v > (LLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int is_tchar(int ch)
{
    return ch && (isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch));
}

/* Parses "HTTP/1.x NNN reason". Sets r->status; *http11 says 1.1. */
static int parse_status_line(const char *line, size_t n, struct response *r, int *http11)
{
    if (n < 12 || strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ' || !isdigit((unsigned char)line[9]) ||
        !isdigit((unsigned char)line[10]) || !isdigit((unsigned char)line[11]) ||
        (n > 12 && line[12] != ' '))
        return failf(EXIT_WEIRD, "malformed status line: %.*s", (int)(n < 80 ? n : 80), line);
    *http11 = line[7] == '1';
    r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (r->status < 100 || r->status == 101)
        return failf(EXIT_WEIRD, "unexpected status %d", r->status);
    return 0;
}

/* Acts on one header field; the others we do not need. */
static int parse_field(const char *name, size_t nlen, const char *value, size_t vlen,
                       struct response *r, int *has_te, int *has_close, int *has_keep)
{
    if (name_is(name, nlen, "Content-Length")) {
        long long len;
        if (parse_length(value, vlen, &len) < 0 || (r->length >= 0 && len != r->length))
            return failf(EXIT_WEIRD, "bad Content-Length: %.*s", (int)vlen, value);
        r->length = len;
    } else if (name_is(name, nlen, "Transfer-Encoding")) {
        /* We asked for no codings, so chunked is the only one allowed. */
        if (!name_is(value, vlen, "chunked"))
            return failf(EXIT_WEIRD, "unsupported Transfer-Encoding: %.*s", (int)vlen, value);
        *has_te = 1;
    } else if (name_is(name, nlen, "Connection")) {
        *has_close |= has_token(value, vlen, "close");
        *has_keep |= has_token(value, vlen, "keep-alive");
    } else if (name_is(name, nlen, "Location")) {
        if (vlen > MAX_URL)
            return failf(EXIT_WEIRD, "Location longer than %d bytes", MAX_URL);
        memcpy(r->location, value, vlen);
        r->location[vlen] = '\0';
    }
    return 0;
}

/* Parses a response head (lines ending in LF, the last one empty) into
 * r: status, body framing, keep-alive, Location. Returns 0 or 8. */
static int parse_head(const char *head, size_t len, struct response *r)
{
    *r = (struct response){.length = -1};
    const char *end = head + len, *line = head;
    int http11 = 0, has_te = 0, has_close = 0, has_keep = 0;
    for (int first = 1; line < end; first = 0) {
        const char *lf = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)(lf - line);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        int rc = 0;
        if (first) {
            rc = parse_status_line(line, n, r, &http11);
        } else if (n > 0) {
            const char *colon = memchr(line, ':', n);
            size_t nlen = colon ? (size_t)(colon - line) : 0;
            for (size_t i = 0; i < nlen && colon; i++)
                if (!is_tchar((unsigned char)line[i]))
                    colon = NULL; /* obs-fold, or space before the colon */
            if (!colon || nlen == 0)
                return failf(EXIT_WEIRD, "malformed header line: %.*s", (int)(n < 80 ? n : 80), line);
            const char *v = colon + 1, *vend = line + n;
            while (v < vend && (*v == ' ' || *v == '\t'))
                v++;
            while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            /* A NUL would cut the value short as a C string: "/o\0k"
             * would send us to "/o". RFC 9110 5.5: reject the message. */
            if (memchr(v, '\0', (size_t)(vend - v)))
                return failf(EXIT_WEIRD, "a NUL byte in the header %.*s", (int)nlen, line);
            rc = parse_field(line, nlen, v, (size_t)(vend - v), r, &has_te, &has_close, &has_keep);
        }
        if (rc)
            return rc;
        line = lf + 1;
    }
    /* HTTP/1.1 keeps the connection unless told "close"; HTTP/1.0 closes
     * it unless told "keep-alive" (RFC 9112 section 9.3). */
    /* RFC 9112 9.3: "close" wins, whatever the version; otherwise 1.1
     * keeps the connection, 1.0 only when it says keep-alive. */
    r->keep_alive = !has_close && (http11 || has_keep);
    /* How the body ends (RFC 9112 section 6.3), in this order. */
    if (r->status < 200 || r->status == 204 || r->status == 304) {
        r->length = 0;
    } else if (has_te) {
        if (r->length >= 0)
            r->keep_alive = 0; /* both: chunked wins, but trust nothing after it */
        r->chunked = 1;
        r->length = -1;
    } else if (r->length < 0) {
        r->keep_alive = 0; /* the body ends when the server closes */
    }
    return 0;
}

/*** the response body ***/

/* Copies exactly n bytes of body to to_fd (-1: drop them): first what the
 * buffer holds, then straight from the socket, one big recv at a time.
 * Never reads past n: what follows belongs to the next response. */
static int copy_exact(struct fetch *f, long long n, int to_fd)
{
    struct conn *c = &f->conn;
    while (n > 0) {
        if (c->start == c->end) {
            ssize_t got = conn_fill(f, n < BUF_SIZE ? (size_t)n : BUF_SIZE);
            if (got < 0)
                return io_failed(f, EXIT_RECV, "reading the body", errno);
            if (got == 0)
                return failf(EXIT_PARTIAL, "transfer closed with %lld bytes remaining to read", n);
        }
        size_t take = c->end - c->start;
        if ((long long)take > n)
            take = (size_t)n;
        int rc = emit(f, to_fd, c->buf + c->start, take);
        if (rc)
            return rc;
        c->start += take;
        n -= (long long)take;
    }
    return 0;
}

/* A body without Content-Length or chunking ends when the server closes. */
static int copy_until_close(struct fetch *f, int to_fd)
{
    struct conn *c = &f->conn;
    for (;;) {
        if (c->start == c->end) {
            ssize_t got = conn_fill(f, BUF_SIZE);
            if (got < 0)
                return io_failed(f, EXIT_RECV, "reading the body", errno);
            if (got == 0)
                return 0;
        }
        int rc = emit(f, to_fd, c->buf + c->start, c->end - c->start);
        if (rc)
            return rc;
        c->start = c->end;
    }
}

/* Parses a chunk-size line: HEX, optional spaces, optional
 * ";extensions", CRLF (or LF). Strict: at least one hex digit, no sign,
 * no "0x", no overflow. Extensions are allowed and ignored (RFC 9112
 * section 7.1.1). Returns 0 with *size set, or -1. */
static int parse_chunk_size(const char *line, size_t len, long long *size)
{
    size_t i = 0;
    long long v = 0;
    for (; i < len && isxdigit((unsigned char)line[i]); i++) {
        int ch = tolower((unsigned char)line[i]);
        int d = isdigit(ch) ? ch - '0' : ch - 'a' + 10;
        if (v > (LLONG_MAX - d) / 16)
            return -1;
        v = v * 16 + d;
    }
    if (i == 0)
        return -1;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (line[i] != ';' && !is_empty_line(line + i, len - i))
        return -1;
    *size = v;
    return 0;
}

/* Decodes a chunked body:  SIZE[;ext] CRLF  DATA CRLF  ...  0 CRLF
 * trailer fields, CRLF.  Any of those bytes may arrive on its own. */
static int copy_chunked(struct fetch *f, int to_fd)
{
    struct conn *c = &f->conn;
    for (;;) {
        ssize_t n = conn_line(f, 0, MAX_CHUNK_LINE);
        if (n == 0)
            return failf(EXIT_PARTIAL, "transfer closed with outstanding read data remaining");
        if (n < 0)
            return io_failed(f, EXIT_RECV, "reading a chunk-size line", errno);
        long long size;
        if (parse_chunk_size(c->buf + c->start, (size_t)n, &size) < 0)
            return failf(EXIT_RECV, "malformed chunk-size line: %.*s", (int)(n < 40 ? n : 40),
                         c->buf + c->start);
        c->start += (size_t)n;
        if (size == 0)
            break;
        int rc = copy_exact(f, size, to_fd);
        if (rc)
            return rc;
        /* The data is followed by CRLF, and nothing else: anything else
         * means the chunk was longer than its size said. */
        n = conn_line(f, 0, 2);
        if (n == 0)
            return failf(EXIT_PARTIAL, "transfer closed with outstanding read data remaining");
        if (n < 0 && errno != EMSGSIZE)
            return io_failed(f, EXIT_RECV, "reading a chunk", errno);
        if (n < 0 || !is_empty_line(c->buf + c->start, (size_t)n))
            return failf(EXIT_RECV, "chunk data longer than its size");
        c->start += (size_t)n;
    }
    /* Trailer fields look like headers and end with an empty line. */
    ssize_t n = read_head(f);
    if (n == 0)
        return failf(EXIT_PARTIAL, "transfer closed in the trailer section");
    if (n < 0)
        return io_failed(f, EXIT_RECV, "reading the trailer section", errno);
    show_lines(f, "< ", c->buf + c->start, (size_t)n);
    c->start += (size_t)n;
    return 0;
}

static int copy_body(struct fetch *f, const struct response *r, int to_fd)
{
    if (r->chunked)
        return copy_chunked(f, to_fd);
    if (r->length >= 0)
        return copy_exact(f, r->length, to_fd);
    return copy_until_close(f, to_fd);
}

/*** one exchange, one URL ***/

static int is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Reads response heads until a final one (1xx are interim), showing each
 * (-i: to the output as received; -v: on stderr). Returns 0 or a status. */
static int read_final_head(struct fetch *f, size_t head_len, struct response *r)
{
    struct conn *c = &f->conn;
    for (;;) {
        const char *head = c->buf + c->start;
        int rc = parse_head(head, head_len, r);
        show_lines(f, "< ", head, head_len);
        if (!rc && f->opt.include)
            rc = emit(f, f->out_fd, head, head_len);
        if (rc)
            return rc;
        c->start += head_len;
        if (r->status >= 200)
            return 0;
        ssize_t n = read_head(f);
        if (n == 0)
            return failf(EXIT_RECV, "the connection closed after a %d response", r->status);
        if (n < 0)
            return io_failed(f, EXIT_RECV, "reading the response head", errno);
        head_len = (size_t)n;
    }
}

/* One request and its response: the body goes to the output, unless it
 * belongs to a redirect we follow. Returns 0 with r filled, or a status. */
static int fetch_once(struct fetch *f, const struct url *u, const char *method, const char *body,
                      struct response *r)
{
    size_t head_len = 0;
    int rc = request(f, u, method, body, &head_len);
    if (!rc)
        rc = read_final_head(f, head_len, r);
    if (!rc) {
        r->follow = f->opt.follow && is_redirect(r->status) && r->location[0];
        if (!r->follow && f->opt.fail && r->status >= 400)
            rc = failf(EXIT_HTTP, "the requested URL returned error: %d", r->status);
    }
    if (!rc)
        rc = copy_body(f, r, r->follow ? -1 : f->out_fd);
    if (rc) {
        conn_close(&f->conn); /* its state is unknown: never reuse it */
        return rc;
    }
    f->conn.responses++;
    /* Bytes after the response mean a confused server: start afresh. */
    if (!r->keep_alive || f->conn.start != f->conn.end)
        conn_close(&f->conn);
    return 0;
}

/* Fetches one URL, following redirects with -L. Returns 0 or a status. */
static int fetch_url(struct fetch *f, const char *text)
{
    struct url u;
    const char *why = url_parse(text, &u);
    if (why)
        return failf(EXIT_USAGE, "%s: %s", text, why);
    const char *method = f->opt.data ? "POST" : "GET", *body = f->opt.data;
    for (int redirects = 0;; redirects++) {
        struct response r;
        int rc = fetch_once(f, &u, method, body, &r);
        if (rc || !r.follow)
            return rc;
        if (redirects == MAX_REDIRECTS)
            return failf(EXIT_REDIRECTS, "maximum (%d) redirects followed", MAX_REDIRECTS);
        struct url next;
        why = resolve_location(&u, r.location, &next);
        if (why)
            return failf(EXIT_WEIRD, "cannot follow Location %s: %s", r.location, why);
        note(f, "Following the redirect to %s", r.location);
        /* 303 means "GET this instead"; browsers, and curl, treat 301
         * and 302 after a POST the same way. 307 and 308 repeat the
         * request as it was, body included. */
        if (r.status == 301 || r.status == 302 || r.status == 303) {
            method = "GET";
            body = NULL;
        }
        u = next;
    }
}

/*** main ***/

static void usage(FILE *to)
{
    fputs("usage: " PROG " [-i] [-v] [-f] [-L] [-d DATA] [-o FILE] [-m SECONDS] URL...\n"
          "Fetches each http:// URL; the bodies go to stdout.\n"
          "  -i          put the response headers before the body\n"
          "  -v          show request and response headers on stderr\n"
          "  -f          fail (exit 22) on a status >= 400, without its body\n"
          "  -L          follow redirects (at most 20)\n"
          "  -d DATA     POST DATA (Content-Type: application/x-www-form-urlencoded)\n"
          "  -o FILE     write the bodies to FILE instead of stdout\n"
          "  -m SECONDS  give up after SECONDS in all (exit 28)\n",
          to);
}

/* Returns -1 to go on, or the status to exit with (0 after -h). */
static int parse_options(int argc, char **argv, struct options *o)
{
    int ch;
    while ((ch = getopt(argc, argv, "hivfLd:o:m:")) != -1) {
        switch (ch) {
        case 'h': usage(stdout); return 0;
        case 'i': o->include = 1; break;
        case 'v': o->verbose = 1; break;
        case 'f': o->fail = 1; break;
        case 'L': o->follow = 1; break;
        case 'd': o->data = optarg; break;
        case 'o': o->out_path = optarg; break;
        case 'm': {
            char *end;
            double secs = strtod(optarg, &end);
            /* Written so that NaN fails too: every comparison with it is false. */
            if (end == optarg || *end != '\0' || !(secs > 0 && secs <= MAX_SECONDS)) {
                fprintf(stderr, "usage: " PROG ": -m needs a number of seconds, not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            o->max_ms = (long long)(secs * 1000 + 0.5);
            if (o->max_ms == 0)
                o->max_ms = 1;
            break;
        }
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind == argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct fetch f = {.conn = {.fd = -1}, .out_fd = STDOUT_FILENO, .deadline = -1};
    int rc = parse_options(argc, argv, &f.opt);
    if (rc >= 0)
        return rc;
    if (f.opt.max_ms)
        f.deadline = now_ms() + f.opt.max_ms;
    /* A peer that closes early must give us EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    f.conn.buf = malloc(BUF_SIZE);
    if (!f.conn.buf)
        return failf(EXIT_FAIL, "malloc: %s", strerror(errno));
    rc = 0;
    if (f.opt.out_path) {
        f.out_fd = open(f.opt.out_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (f.out_fd < 0)
            rc = failf(EXIT_WRITE, "%s: %s", f.opt.out_path, strerror(errno));
    }
    for (int i = optind; i < argc && rc == 0; i++)
        rc = fetch_url(&f, argv[i]);

    conn_close(&f.conn);
    /* A full disk may only show up at close() (NFS does this). */
    if (f.opt.out_path && f.out_fd >= 0 && close(f.out_fd) < 0 && rc == 0)
        rc = failf(EXIT_WRITE, "%s: %s", f.opt.out_path, strerror(errno));
    free(f.conn.buf);
    return rc;
}
