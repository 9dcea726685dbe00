/*
 * http_get - lesson 10: the origin's HTTP client, done right.
 *
 * Fetches one http:// URL and writes the response body to stdout, byte
 * for byte:
 *     http_get http://127.0.0.1:8080/            the body
 *     http_get -i http://127.0.0.1:8080/         status line and headers first
 *     http_get -f http://127.0.0.1:8080/nope     exit 22 on a status >= 400
 *     http_get -t 5 http://127.0.0.1:8080/       give up after 5 s of silence
 *     http_get -h                                usage
 *
 * It sends one HTTP/1.1 GET with Host and "Connection: close", reads the
 * status line and headers (at most MAX_HEAD_BYTES), then the body: exactly
 * Content-Length bytes when the server says how many, otherwise everything
 * until the server closes.
 *
 * Exit codes are curl's where curl has one, so scripts can treat the two
 * alike: 0 ok, 1 anything else, 2 usage or a bad URL, 6 cannot resolve
 * the host, 7 cannot connect, 8 a response head we cannot parse, 18 the
 * body was cut short, 22 HTTP error with -f, 23 cannot write stdout, 28
 * timeout, 52 empty reply, 55 send failure, 56 receive failure (reset,
 * closed inside the head, a head over MAX_HEAD_BYTES).
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PROG "http_get"
#define DEFAULT_PORT "80"
#define MAX_HOST 255                 /* a DNS name is at most 253 characters */
#define MAX_TARGET 8000              /* servers refuse request lines over 8 KiB */
#define MAX_REQUEST_BYTES 8448       /* the target plus our few header lines */
#define MAX_HEAD_BYTES (64 * 1024)   /* status line + headers + blank line */
#define BODY_CHUNK (64 * 1024)
#define DEFAULT_TIMEOUT_S 30         /* -t: silence we wait out before giving up */
#define MAX_TIMEOUT_S 86400

/* Exit codes: curl's numbers (man curl, "EXIT CODES"). */
enum {
    RC_OK = 0, RC_FAIL = 1, RC_USAGE = 2, RC_RESOLVE = 6, RC_CONNECT = 7,
    RC_WEIRD = 8, RC_PARTIAL = 18, RC_HTTP_ERROR = 22, RC_WRITE = 23, RC_TIMEOUT = 28,
    RC_EMPTY = 52, RC_SEND = 55, RC_RECV = 56,
};

struct url {
    char host[MAX_HOST + 1];      /* without the [] of an IPv6 literal */
    char port[6];                 /* "80" when the URL names none */
    char target[MAX_TARGET + 1];  /* path and query, never empty: "/" at least */
};

/* One response head (status line + headers + blank line) as received,
 * followed in buf by whatever body bytes arrived in the same reads. */
struct response {
    char buf[MAX_HEAD_BYTES];
    size_t len;            /* bytes in buf */
    size_t head_len;       /* bytes of the head, blank line included */
    int status;            /* 200, 404, ... */
    const char *reason;    /* points into buf; ends at reason_len */
    int reason_len;
    long long content_length;   /* -1: none, read until the server closes */
};

/*** parsing the URL ***/

/* Splits the authority "host[:port]" or "[v6]:port" (auth_len bytes at
 * auth) into u->host and u->port. Returns 0, or -1 after printing why. */
static int parse_authority(const char *url, const char *auth, size_t auth_len, struct url *u)
{
    const char *host = auth, *host_end, *port = NULL;
    if (*auth == '[') {                      /* [::1]:8080: IPv6 literal */
        host = auth + 1;
        host_end = memchr(host, ']', auth_len - 1);
        if (!host_end || (host_end + 1 != auth + auth_len && host_end[1] != ':')) {
            fprintf(stderr, PROG ": malformed URL '%s' (bad [IPv6] address)\n", url);
            return -1;
        }
        if (host_end + 1 != auth + auth_len)
            port = host_end + 2;
    } else {
        host_end = memchr(auth, ':', auth_len);
        if (host_end)
            port = host_end + 1;
        else
            host_end = auth + auth_len;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len > MAX_HOST || memchr(host, '@', host_len)) {
        fprintf(stderr, PROG ": malformed URL '%s' (%s)\n", url,
                host_len == 0 ? "no host" : host_len > MAX_HOST ? "host name too long"
                                                                 : "user names are not supported");
        return -1;
    }
    snprintf(u->host, sizeof u->host, "%.*s", (int)host_len, host);

    /* The port: 1 to 5 digits, 1..65535. "http://host:/" means the default. */
    size_t port_len = port ? (size_t)(auth + auth_len - port) : 0;
    long n = port_len ? strtol(port, NULL, 10) : 80;
    if (port_len > 5 || strspn(port ? port : "", "0123456789") < port_len || n < 1 || n > 65535) {
        fprintf(stderr, PROG ": malformed URL '%s' (bad port '%.*s')\n", url, (int)port_len, port);
        return -1;
    }
    snprintf(u->port, sizeof u->port, "%ld", n);
    return 0;
}

/* Splits "http://host[:port][/path][?query][#fragment]" into u. Returns 0,
 * or -1 after printing why on stderr (the caller exits 2). The fragment
 * never goes to the server: it is for the browser. */
static int parse_url(const char *s, struct url *u)
{
    const char *sep = strstr(s, "://");
    size_t scheme_len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    if (!sep || sep == s || s + scheme_len != sep) {
        fprintf(stderr, PROG ": malformed URL '%s' (expected http://host[:port]/path)\n", s);
        return -1;
    }
    if (sep - s != 4 || strncasecmp(s, "http", 4) != 0) {
        fprintf(stderr, PROG ": unsupported URL scheme '%.*s' (only http://)\n", (int)(sep - s), s);
        return -1;
    }
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/?#");
    if (parse_authority(s, auth, auth_len, u) < 0)
        return -1;

    /* The target: everything up to the fragment; "" and "?q" get a "/". */
    const char *path = auth + auth_len;
    size_t path_len = strcspn(path, "#");
    for (size_t i = 0; i < path_len; i++) {
        /* A space or control byte would end our request line early: the
         * server would read the rest as a header (request smuggling). */
        if ((unsigned char)path[i] <= ' ' || path[i] == 0x7f) {
            fprintf(stderr, PROG ": malformed URL '%s' (space or control character in the path)\n", s);
            return -1;
        }
    }
    int slash = (path_len == 0 || path[0] != '/');
    if (path_len + (size_t)slash > MAX_TARGET) {
        fprintf(stderr, PROG ": malformed URL (path longer than %d bytes)\n", MAX_TARGET);
        return -1;
    }
    snprintf(u->target, sizeof u->target, "%s%.*s", slash ? "/" : "", (int)path_len, path);
    return 0;
}

/*** the request ***/

/* Writes the GET request for u into buf. Returns its length, or -1 after
 * printing why (it does not fit). Every line ends in CRLF and an empty line ends the head:
 * that blank line is how the server knows the request is complete. */
static int build_request(const struct url *u, char *buf, size_t size)
{
    /* Host carries the port unless it is the default, and brackets an
     * IPv6 literal again: exactly the authority the URL had. */
    int v6 = strchr(u->host, ':') != NULL;
    int has_port = strcmp(u->port, DEFAULT_PORT) != 0;
    int n = snprintf(buf, size,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s%s%s%s%s\r\n"
                     "User-Agent: " PROG "\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     u->target, v6 ? "[" : "", u->host, v6 ? "]" : "",
                     has_port ? ":" : "", has_port ? u->port : "");
    if (n < 0) {
        fprintf(stderr, PROG ": build_request: %s\n", strerror(errno));
        return -1;
    }
    if ((size_t)n >= size) {
        fprintf(stderr, PROG ": the request does not fit in %zu bytes\n", size);
        return -1;
    }
    return n;
}

/*** the network ***/

/* Connects to host:port, trying every address getaddrinfo returns, with
 * `timeout_ms` as the limit on each connect, send and recv. Returns the
 * socket, or -1 with *rc set and a message printed. */
static int connect_to(const struct url *u, long timeout_ms, int *rc)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int err = getaddrinfo(u->host, u->port, &hints, &res);
    if (err != 0) {
        fprintf(stderr, PROG ": %s: %s\n", u->host, err == EAI_SYSTEM ? strerror(errno) : gai_strerror(err));
        *rc = RC_RESOLVE;
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        /* SO_RCVTIMEO makes a recv that waits longer fail with EAGAIN.
         * (Linux applies SO_SNDTIMEO to connect too: EINPROGRESS.) */
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000};
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
            connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        int timed_out = saved == EINPROGRESS || saved == EAGAIN || saved == ETIMEDOUT;
        fprintf(stderr, PROG ": connect to %s port %s: %s\n", u->host, u->port,
                saved == EINPROGRESS ? "Connection timed out" : strerror(saved));
        *rc = timed_out ? RC_TIMEOUT : RC_CONNECT;
    }
    return fd;
}

/* Sends all len bytes: send() may take fewer than asked. Returns 0 or an
 * exit code after printing why. */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, PROG ": send: %s\n", strerror(errno));
            return errno == EAGAIN || errno == EWOULDBLOCK ? RC_TIMEOUT : RC_SEND;
        }
        buf += n;
        len -= (size_t)n;
    }
    return RC_OK;
}

/* recv() that retries on EINTR. Returns bytes (0 at EOF), or -1 with *rc
 * set and a message printed: a timeout is EAGAIN because of SO_RCVTIMEO. */
static ssize_t recv_some(int fd, char *buf, size_t len, long timeout_ms, int *rc)
{
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            fprintf(stderr, PROG ": receive: no data from the server for %.3g s\n", (double)timeout_ms / 1000);
            *rc = RC_TIMEOUT;
        } else {
            fprintf(stderr, PROG ": receive: %s\n", strerror(errno));
            *rc = RC_RECV;
        }
        return -1;
    }
}

/* Writes all len bytes to stdout (a pipe, a file, a terminal). */
static int write_out(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, PROG ": stdout: %s\n", strerror(errno));
            return RC_WRITE;
        }
        buf += n;
        len -= (size_t)n;
    }
    return RC_OK;
}

/*** the response head ***/

/* Where the head ends in buf[0..len): the offset just past its blank line,
 * or 0 if the blank line has not arrived yet. Lines end in CRLF, but a
 * bare LF is accepted too (RFC 9112 section 2.2), so the blank line is an
 * LF followed by either LF or CR LF. The search starts at `from`: the
 * bytes before it were searched already (a server that sends one byte at
 * a time must not make us rescan the whole head after every byte). */
static size_t find_head_end(const char *buf, size_t from, size_t len)
{
    for (size_t i = from; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Reads until r->buf holds a whole head (it may already hold one: the
 * bytes after an interim 1xx response). Sets r->head_len. Returns 0 or
 * an exit code after printing why. One recv() is not one line, nor one
 * head: the head may come a byte at a time, or with the body glued on. */
static int read_head(int fd, struct response *r, long timeout_ms)
{
    int rc = RC_OK;
    size_t from = 0;
    while ((r->head_len = find_head_end(r->buf, from, r->len)) == 0) {
        from = r->len > 2 ? r->len - 2 : 0;
        if (r->len == sizeof r->buf) {
            fprintf(stderr, PROG ": the response headers are larger than %d bytes\n", MAX_HEAD_BYTES);
            return RC_RECV;
        }
        ssize_t n = recv_some(fd, r->buf + r->len, sizeof r->buf - r->len, timeout_ms, &rc);
        if (n < 0)
            return rc;
        if (n == 0) {
            fprintf(stderr, PROG ": %s\n", r->len == 0 ? "empty reply from server"
                                                       : "the server closed the connection inside the headers");
            return r->len == 0 ? RC_EMPTY : RC_RECV;
        }
        r->len += (size_t)n;
    }
    return RC_OK;
}

/* Parses the status line at the start of r->buf:
 *     HTTP/1.1 404 Not Found CRLF
 * version, one space, three digits, then a space and a reason phrase
 * (which may hold spaces, or be empty), or nothing. Sets r->status and
 * r->reason. Returns 0, or -1 if it is not a status line. */
static int parse_status_line(struct response *r)
{
    const char *p = r->buf;
    size_t line = strcspn(p, "\r\n");   /* the head ends in LF: a stop exists */
    if (line < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return -1;
    if (p[9] < '1' || p[9] > '5' || (line > 12 && p[12] != ' '))
        return -1;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    r->reason = line > 12 ? p + 13 : p + 12;
    r->reason_len = (int)(line > 12 ? line - 13 : 0);
    return 0;
}

/* Checks a Content-Length value: digits only, no sign, no overflow.
 * Returns the number, or -1. */
static long long parse_length(const char *v, size_t len)
{
    long long n = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || n > (LLONG_MAX - 9) / 10)
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* Walks the header lines after the status line and decides how the body
 * is framed (RFC 9112 section 6.3): sets r->content_length (-1: until the
 * server closes). Returns 0, or an exit code after printing why. */
static int parse_headers(struct response *r)
{
    r->content_length = -1;
    const char *end = r->buf + r->head_len;
    const char *p = (const char *)memchr(r->buf, '\n', r->head_len) + 1;
    for (;;) {
        /* Every line of the head ends in LF: memchr always finds one. */
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == p || (eol == p + 1 && *p == '\r'))
            break;                          /* the blank line: done */
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) {
            fprintf(stderr, PROG ": malformed header line in the response: '%.*s'\n",
                    (int)(eol - p), p);
            return RC_WEIRD;
        }
        /* The value without the spaces around it (and the CR). */
        const char *v = colon + 1, *v_end = eol;
        while (v < v_end && (*v == ' ' || *v == '\t'))
            v++;
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t' || v_end[-1] == '\r'))
            v_end--;
        size_t name_len = (size_t)(colon - p);
        if (name_len == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            long long n = parse_length(v, (size_t)(v_end - v));
            if (n < 0 || (r->content_length >= 0 && n != r->content_length)) {
                fprintf(stderr, PROG ": bad Content-Length in the response: '%.*s'\n", (int)(v_end - v), v);
                return RC_WEIRD;
            }
            r->content_length = n;
        } else if (name_len == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            /* Simplification: a chunked body is lesson 13's job. */
            fprintf(stderr, PROG ": Transfer-Encoding '%.*s' is not supported (lesson 13 decodes chunked bodies)\n",
                    (int)(v_end - v), v);
            return RC_FAIL;
        }
        p = eol + 1;
    }
    /* These statuses never have a body, whatever the headers say. */
    if (r->status == 204 || r->status == 304)
        r->content_length = 0;
    return RC_OK;
}

/*** the body ***/

/* Writes the body to stdout: first the bytes that came with the head,
 * then more from the socket, until Content-Length bytes or, without one,
 * until the server closes. Returns 0 or an exit code. */
static int copy_body(int fd, struct response *r, long timeout_ms)
{
    long long left = r->content_length;       /* -1: until EOF */
    size_t early = r->len - r->head_len;
    if (left >= 0 && (long long)early > left)
        early = (size_t)left;                 /* extra bytes: not ours to print */
    int rc = write_out(r->buf + r->head_len, early);
    if (rc != RC_OK)
        return rc;
    if (left >= 0)
        left -= (long long)early;

    char chunk[BODY_CHUNK];
    while (left != 0) {
        size_t want = sizeof chunk;
        if (left > 0 && (long long)want > left)
            want = (size_t)left;
        ssize_t n = recv_some(fd, chunk, want, timeout_ms, &rc);
        if (n < 0)
            return rc;
        if (n == 0) {
            if (left < 0)
                return RC_OK;                 /* EOF is how this body ends */
            fprintf(stderr, PROG ": the server closed the connection with %lld bytes of the body still to come\n",
                    left);
            return RC_PARTIAL;
        }
        if ((rc = write_out(chunk, (size_t)n)) != RC_OK)
            return rc;
        if (left > 0)
            left -= n;
    }
    return RC_OK;
}

/*** main ***/

struct options {
    int include_head;   /* -i */
    int fail_on_error;  /* -f */
    long timeout_ms;    /* -t, in milliseconds */
    const char *url;
};

static void usage(FILE *to)
{
    fprintf(to, "usage: %s [-i] [-f] [-t SECONDS] http://HOST[:PORT][/PATH]\n", PROG);
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.timeout_ms = DEFAULT_TIMEOUT_S * 1000L};
    int ch;
    opterr = 0;   /* our own usage line, not getopt's message */
    while ((ch = getopt(argc, argv, "ift:h")) != -1) {
        char *end;
        switch (ch) {
        case 'i': o->include_head = 1; break;
        case 'f': o->fail_on_error = 1; break;
        case 't':
            errno = 0;
            double t = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(t >= 0.001 && t <= MAX_TIMEOUT_S)) {
                fprintf(stderr, "usage: %s: -t needs seconds from 0.001 to %d, not '%s'\n",
                        PROG, MAX_TIMEOUT_S, optarg);
                return RC_USAGE;
            }
            o->timeout_ms = (long)(t * 1000 + 0.5);
            break;
        case 'h':
            usage(stdout);
            printf("Fetches URL with one HTTP/1.1 GET and writes the body to stdout.\n"
                   "  -i          write the status line and headers first, as received\n"
                   "  -f          exit 22 on a status >= 400, without writing the body\n"
                   "  -t SECONDS  give up when the server is silent that long (%d; 0.5 is fine)\n",
                   DEFAULT_TIMEOUT_S);
            return -1;
        default:
            usage(stderr);
            return RC_USAGE;
        }
    }
    if (argc - optind != 1) {
        usage(stderr);
        return RC_USAGE;
    }
    o->url = argv[optind];
    return RC_OK;
}

/* Talks to the server once the request is built. Returns an exit code. */
static int fetch(int fd, const char *req, size_t req_len, const struct options *o)
{
    struct response r;
    r.len = 0;
    int rc = send_all(fd, req, req_len);
    if (rc != RC_OK)
        return rc;
    /* Interim responses (100 Continue, 1xx) come before the real one:
     * print them with -i, then read on. */
    for (;;) {
        if ((rc = read_head(fd, &r, o->timeout_ms)) != RC_OK)
            return rc;
        if (parse_status_line(&r) < 0) {
            fprintf(stderr, PROG ": malformed status line: '%.*s'\n",
                    (int)strcspn(r.buf, "\r\n"), r.buf);
            return RC_WEIRD;
        }
        if (o->include_head && (rc = write_out(r.buf, r.head_len)) != RC_OK)
            return rc;
        if (r.status >= 200)
            break;
        memmove(r.buf, r.buf + r.head_len, r.len - r.head_len);
        r.len -= r.head_len;
    }
    if (o->fail_on_error && r.status >= 400) {
        fprintf(stderr, PROG ": the requested URL returned error: %d %.*s\n",
                r.status, r.reason_len, r.reason);
        return RC_HTTP_ERROR;
    }
    if ((rc = parse_headers(&r)) != RC_OK)
        return rc;
    return copy_body(fd, &r, o->timeout_ms);
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != RC_OK)
        return rc < 0 ? RC_OK : rc;

    /* A server that closes early must give us EPIPE, not kill us; so must
     * a reader of stdout that goes away (http_get URL | head -c 10). */
    signal(SIGPIPE, SIG_IGN);

    struct url u;
    if (parse_url(o.url, &u) < 0)
        return RC_USAGE;
    char req[MAX_REQUEST_BYTES];
    int req_len = build_request(&u, req, sizeof req);
    if (req_len < 0)
        return RC_FAIL;
    int fd = connect_to(&u, o.timeout_ms, &rc);
    if (fd < 0)
        return rc;
    rc = fetch(fd, req, (size_t)req_len, &o);
    close(fd);
    return rc;
}
