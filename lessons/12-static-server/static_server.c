/*
 * static_server - lesson 12: serve a directory over HTTP, the way
 * `python3 -m http.server` does, with a pool of threads.
 *
 *     static_server -d DIR [-p PORT] [-b ADDR] [-t SECONDS]
 *     curl http://127.0.0.1:8080/
 *
 * GET and HEAD of every regular file beneath DIR, with its MIME type,
 * Content-Length and Last-Modified; If-Modified-Since gives 304. A
 * directory serves its index.html, or else an HTML listing in which
 * every name is escaped; a directory asked for without its trailing
 * slash is redirected (301). 404 for what does not exist; 403 for what
 * is not a regular file or a directory (a FIFO, a socket, a device) and
 * for every symbolic link.
 *
 * No request, however it is encoded, opens anything outside DIR. The
 * path is percent-decoded once, then normalised ("." and ".." resolved,
 * a ".." above the root refused), and only then opened: one component
 * at a time with openat(O_NOFOLLOW), starting from a descriptor of DIR.
 * It is never glued onto DIR as a string, and never followed through a
 * symlink.
 *
 * POOL_THREADS threads each wait in accept() and serve one connection at
 * a time: one request per connection, answered with "Connection: close".
 * A client gets SECONDS (-t, default 10; 0.5 is half a second) to send
 * its request, and as long for each write of our answer, so a silent client cannot hold a thread
 * forever. The limits and the 400/413/414/431/501/505 answers follow the
 * lab's HTTP rules (DESIGN.md). Lesson 14 does keep-alive, with an event
 * loop instead of threads.
 *
 * YOUR JOB: the seven TODOs below, in order (the README walks through
 * them). Build and grade with
 *     make check LESSON=12
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PROG "static_server"
#define DEFAULT_PORT "8080"
#define DEFAULT_ADDR "127.0.0.1"

#define REQUEST_LINE_MAX 8192        /* bytes in the request line, else 414 */
#define HEADER_LINE_MAX 8192         /* bytes in one header line, else 431 */
#define HEADERS_MAX 32768            /* bytes in all header lines, else 431 */
#define BODY_MAX (1024L * 1024)      /* bytes of request body, else 413 */
#define REQUEST_BUF (REQUEST_LINE_MAX + HEADERS_MAX + 64)
#define IO_CHUNK 65536               /* bytes read from a file at a time */
#define DEFAULT_TIMEOUT_MS 10000     /* to send the request; per write after */
#define LINGER_MS 2000               /* to discard what a client still sends */
#define POOL_THREADS 64              /* connections served at once; more wait */
#define ACCEPT_BACKOFF_MS 100        /* after accept runs out of descriptors */
#define HEAD_PATIENCE_MS 500         /* full pool, a client queued: slow heads go */
#define QUEUE_CHECK_MS 100           /* how often a slow head looks at the queue */
#define DRAIN_MAX_MS 10000           /* SIGTERM: longest wait for answers in flight */
#define DRAIN_CUT_MS 2000            /* then: for the cut connections to let go */

/* What every thread shares. (No globals at all: the signals are taken
 * with sigwait, in main.) Only the drain bookkeeping changes once the
 * threads run, and only under lock. */
struct server {
    int listen_fd;             /* every thread accepts from it */
    int root_fd;               /* DIR: every path is opened beneath it */
    int timeout_ms;            /* -t */
    pthread_mutex_t lock;      /* guards what follows */
    pthread_cond_t changed;    /* a worker ended */
    int running;               /* workers that have not ended */
    int busy;                  /* workers serving a connection */
    int conn_fd[POOL_THREADS]; /* each worker's connection, -1: none; a slot a worker */
};

/* One parsed request. Every string points into the request buffer. */
struct request {
    char *method, *target;
    int minor;                 /* HTTP/1.minor */
    int hosts;                 /* Host fields seen */
    long long content_length;  /* -1: none */
    int chunked;               /* Transfer-Encoding: chunked */
    char *if_modified_since;   /* NULL: none */
};

/* A growable byte buffer with a sticky error, like a stdio stream:
 * append freely, check `failed` once before sending. */
struct buf {
    char *data;
    size_t len, cap;
    int failed;
};

/*** small utilities ***/

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* A token character (RFC 9110 5.6.2): what method and field names are made of. */
static int is_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int buf_reserve(struct buf *b, size_t more)
{
    if (b->failed) return -1;
    if (b->cap - b->len >= more) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len < more) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static void buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) == 0) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

static void buf_puts(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);      /* first: how long will it be? */
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n + 1) < 0) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Sends all of buf: send() may take only part of it. Returns 0 or -1. */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;      /* EPIPE, ECONNRESET, or EAGAIN after SO_SNDTIMEO */
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/*** dates ***/

static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Formats t as an HTTP date, "Sun, 06 Nov 1994 08:49:37 GMT". strftime's
 * %a and %b are English because we never call setlocale(). */
static void http_date(time_t t, char out[40])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        snprintf(out, 40, "Thu, 01 Jan 1970 00:00:00 GMT");
}

/* Days from 1970-01-01 to y-m-d in the Gregorian calendar (Howard
 * Hinnant's days_from_civil): timegm() is not in POSIX 2008. */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads n digits at s. Returns the number, or -1. */
static int read_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Parses an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", into *t.
 * Returns 0, or -1 if s is anything else. Simplification: RFC 9110
 * 5.6.7 also asks for two obsolete forms; a date we cannot read is
 * ignored, which is always safe (the client gets a 200). */
static int parse_http_date(const char *s, time_t *t)
{
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT") != 0)
        return -1;
    int month = -1;
    for (int i = 0; i < 12; i++)
        if (strncmp(s + 8, MONTHS[i], 3) == 0) month = i + 1;
    int day = read_digits(s + 5, 2), year = read_digits(s + 12, 4);
    int h = read_digits(s + 17, 2), m = read_digits(s + 20, 2), sec = read_digits(s + 23, 2);
    if (month < 0 || day < 1 || day > 31 || year < 0 || h < 0 || h > 23 || m < 0 || m > 59 ||
        sec < 0 || sec > 60)
        return -1;
    *t = (time_t)(days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + sec);
    return 0;
}

/*** reading a request ***/

#define NOT_YET SIZE_MAX

/* Where we are in the request head: the request line, the header lines,
 * and the empty line that ends them. */
struct head_scan {
    size_t pos;            /* next byte to look at */
    size_t line_start;     /* where the current line begins */
    size_t request_line;   /* offset of the request line, NOT_YET */
    size_t headers;        /* offset of the first header line */
    size_t end;            /* offset just past the empty line */
};

static int parse_request_line(char *line, struct request *rq);
static int parse_header(char *line, size_t len, struct request *rq);

/* Checks one complete line of the head (without its line end) on a
 * copy, as soon as it has arrived: a request line or a header line that
 * can never be valid is answered at once, not after the client has
 * finished (or -t has run out). Returns 0 or the status to answer with. */
static int check_line(const char *line, size_t len, int is_request_line)
{
    char copy[REQUEST_LINE_MAX + 2];
    if (len > 0 && line[len - 1] == '\r') len--;
    if (len >= sizeof copy || memchr(line, '\0', len))
        return 400;
    memcpy(copy, line, len);
    copy[len] = '\0';
    struct request scratch = {.content_length = -1};
    return is_request_line ? parse_request_line(copy, &scratch) : parse_header(copy, len, &scratch);
}

/* Could the first len bytes of a request line still begin a valid one?
 * A method is made of token characters: TLS's ClientHello (0x16 ...) or
 * other binary bytes are refused before any line end arrives. */
static int could_be_request_line(const char *p, size_t len)
{
    for (size_t i = 0; i < len && p[i] != ' '; i++)
        if (!is_tchar((unsigned char)p[i]) && !(p[i] == '\r' && i + 1 == len)) return 0;
    return 1;
}

/* Looks at the len bytes of buf for whole lines. Returns 1 when the head
 * is complete, 0 when more is needed, 414 or 431 as soon as a line or the
 * headers are too long, 400 (or 505) as soon as a line is known to be
 * bad: we answer before reading any more of them. A bare LF ends a line
 * like CRLF; empty lines before the request line are skipped (RFC 9112
 * 2.2). */
static int scan_head(const char *buf, size_t len, struct head_scan *s)
{
    while (s->pos < len) {
        const char *nl = memchr(buf + s->pos, '\n', len - s->pos);
        size_t stop = nl ? (size_t)(nl - buf) : len;
        size_t line_len = stop - s->line_start;       /* may include a CR */
        int seen_request = s->request_line != NOT_YET;
        if (line_len > (seen_request ? HEADER_LINE_MAX : REQUEST_LINE_MAX) + 1)
            return seen_request ? 431 : 414;
        if (seen_request && stop - s->headers > HEADERS_MAX)
            return 431;
        if (!nl) {
            if (!seen_request && !could_be_request_line(buf + s->line_start, line_len))
                return 400;
            s->pos = len;
            return 0;
        }
        int empty = line_len == 0 || (line_len == 1 && buf[s->line_start] == '\r');
        if (!seen_request && !empty) {
            int bad = check_line(buf + s->line_start, line_len, 1);
            if (bad) return bad;
            s->request_line = s->line_start;
            s->headers = stop + 1;
        } else if (seen_request && empty) {
            s->end = stop + 1;
            return 1;
        } else if (seen_request) {
            int bad = check_line(buf + s->line_start, line_len, 0);
            if (bad) return bad;
        }
        s->pos = s->line_start = stop + 1;
    }
    return 0;
}

/* Should a worker whose client is slow to send its head give it up?
 * Yes when every worker is busy and a new client waits in the listen
 * queue: a client that has not sent its head in HEAD_PATIENCE_MS makes
 * room for one that may (this is what keeps "slowloris" from taking
 * all the workers for -t seconds each). */
static int pool_needs_room(struct server *srv)
{
    pthread_mutex_lock(&srv->lock);
    int full = srv->busy >= srv->running;
    pthread_mutex_unlock(&srv->lock);
    struct pollfd q = {.fd = srv->listen_fd, .events = POLLIN};
    return full && poll(&q, 1, 0) == 1;
}

/* Reads until the request head is complete, for at most timeout_ms in
 * all (not per read: a client sending one byte every few seconds must
 * not hold us forever either), and less when the pool is full (see
 * pool_needs_room). Returns 0 with *s and *got filled in, an HTTP status
 * to answer with, or -1 when the client closed, failed, stayed silent
 * or was too slow: then there is nobody to answer. */
static int read_head(struct server *srv, int fd, char *buf, size_t cap, struct head_scan *s, size_t *got)
{
    long long start = now_ms(), deadline = start + srv->timeout_ms;
    *s = (struct head_scan){.request_line = NOT_YET};
    *got = 0;
    for (;;) {
        int r = scan_head(buf, *got, s);
        if (r != 0)
            return r == 1 ? 0 : r;
        if (*got == cap)        /* only empty lines could get us here */
            return s->request_line == NOT_YET ? 400 : 431;
        long long now = now_ms(), left = deadline - now;
        if (left <= 0)
            return -1;
        if (now - start >= HEAD_PATIENCE_MS && pool_needs_room(srv))
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, left < QUEUE_CHECK_MS ? (int)left : QUEUE_CHECK_MS);
        if ((n < 0 && errno == EINTR) || n == 0)
            continue;
        if (n < 0)
            return -1;
        ssize_t k = recv(fd, buf + *got, cap - *got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        /* EOF before the empty line: the client gave up. CS:APP's Tiny
         * loops forever here because its line reader returns "" on EOF. */
        if (k <= 0)
            return -1;
        *got += (size_t)k;
    }
}

/* Splits and checks "METHOD SP TARGET SP HTTP/1.x" (line has no line
 * end and is NUL-terminated). Returns 0, 400 or 505. */
static int parse_request_line(char *line, struct request *rq)
{
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1)
        return 400;
    *sp1 = *sp2 = '\0';
    rq->method = line;
    rq->target = sp1 + 1;
    const char *version = sp2 + 1;
    for (const char *p = rq->method; *p; p++)
        if (!is_tchar((unsigned char)*p)) return 400;
    /* The target is visible ASCII only: a CR, LF, NUL, space, control
     * or raw 8-bit byte here is an attack or a broken client. */
    for (const unsigned char *p = (const unsigned char *)rq->target; *p; p++)
        if (*p <= ' ' || *p >= 0x7f) return 400;
    if (strncmp(version, "HTTP/", 5) != 0 || !is_digit(version[5]) || version[6] != '.' ||
        !is_digit(version[7]) || version[8] != '\0')
        return 400;
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
        return 505;
    rq->minor = version[7] - '0';
    return 0;
}

/* Is s[0..n) a valid uri-host [":" port] (RFC 3986 3.2.2)? A reg-name
 * of letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = and %XX, or an
 * IP literal in brackets; then an optional port of digits. Empty is
 * allowed (RFC 9112 3.2), ".." is not (no host is named that; nginx
 * refuses it too). */
static int host_is_valid(const char *s, size_t n)
{
    size_t i = 0;
    if (n > 0 && s[0] == '[') {
        while (i + 1 < n && s[i + 1] != ']') {
            int c = (unsigned char)s[++i];
            if (hex_value(c) < 0 && c != ':' && c != '.') return 0;
        }
        if (i + 1 >= n) return 0;         /* no ']' */
        i += 2;
    } else {
        for (; i < n && s[i] != ':'; i++) {
            int c = (unsigned char)s[i];
            if (c == '%') {
                if (i + 2 >= n || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) return 0;
                i += 2;
            } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c != '\0' && strchr("-._~!$&'()*+,;=", c)))) {
                return 0;
            }
            if (c == '.' && i > 0 && s[i - 1] == '.') return 0;
        }
    }
    if (i < n && s[i] != ':') return 0;
    for (i++; i < n; i++)
        if (!is_digit(s[i])) return 0;
    return 1;
}

/* Reads a Content-Length value: digits only, no overflow. Returns the
 * value or -1. */
static long long parse_length(const char *s)
{
    if (*s == '\0') return -1;
    long long v = 0;
    for (; *s; s++) {
        if (!is_digit(*s) || v > (LLONG_MAX - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* Checks one header line (no line end, length len) and records the
 * fields we use. Returns 0, 400 or 501. */
static int parse_header(char *line, size_t len, struct request *rq)
{
    if (line[0] == ' ' || line[0] == '\t')
        return 400;                       /* obs-fold: RFC 9112 5.2 says reject */
    char *colon = memchr(line, ':', len);
    if (!colon || colon == line)
        return 400;
    for (char *p = line; p < colon; p++)
        if (!is_tchar((unsigned char)*p)) return 400;   /* "Host :" too */
    *colon = '\0';
    char *value = colon + 1, *end = line + len;
    while (value < end && (*value == ' ' || *value == '\t')) value++;
    while (end > value && (end[-1] == ' ' || end[-1] == '\t')) end--;
    /* Field values are visible bytes, spaces and tabs (RFC 9110 5.5):
     * CR, NUL and every other control byte (\x05, DEL) are refused. */
    for (const unsigned char *p = (const unsigned char *)value; p < (const unsigned char *)end; p++)
        if ((*p < ' ' && *p != '\t') || *p == 0x7f) return 400;
    *end = '\0';

    if (strcasecmp(line, "Host") == 0) {
        if (!host_is_valid(value, strlen(value)))
            return 400;                   /* RFC 9112 3.2: "a b", "x/y", ".." */
        rq->hosts++;
    } else if (strcasecmp(line, "Content-Length") == 0) {
        long long n = parse_length(value);
        if (n < 0 || (rq->content_length >= 0 && n != rq->content_length))
            return 400;
        rq->content_length = n;
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        if (strcasecmp(value, "chunked") != 0)
            return 501;                   /* a coding we do not know */
        rq->chunked = 1;
    } else if (strcasecmp(line, "If-Modified-Since") == 0) {
        rq->if_modified_since = value;
    }
    return 0;
}

/* Parses the head that scan_head found in buf. Returns 0, or the status
 * to answer with. */
static int parse_request(char *buf, const struct head_scan *s, struct request *rq)
{
    *rq = (struct request){.method = "", .content_length = -1};
    char *line = buf + s->request_line;
    char *nl = memchr(line, '\n', s->end - s->request_line);
    size_t len = (size_t)(nl - line);
    if (len > 0 && line[len - 1] == '\r') len--;
    if (memchr(line, '\0', len))
        return 400;                       /* it would cut our C strings short */
    line[len] = '\0';
    int status = parse_request_line(line, rq);
    for (char *p = buf + s->headers; status == 0 && p < buf + s->end;) {
        nl = memchr(p, '\n', (size_t)(buf + s->end - p));
        len = (size_t)(nl - p);
        if (len > 0 && p[len - 1] == '\r') len--;
        if (len > 0)
            status = parse_header(p, len, rq);
        p = nl + 1;
    }
    if (status != 0)
        return status;
    if (rq->hosts > 1 || (rq->minor == 1 && rq->hosts == 0))
        return 400;                       /* RFC 9112 3.2 */
    if (rq->chunked && rq->content_length >= 0)
        return 400;                       /* request smuggling's favourite */
    if (rq->content_length > BODY_MAX)
        return 413;
    if (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0)
        return 0;
    static const char *const known[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(rq->method, known[i]) == 0) return 405;
    return 501;
}

/*** from target to path ***/

/* Decodes the %XX escapes of in[0..n) once, into out (cap >= n + 1).
 * Returns 0, or -1 for a malformed escape, a decoded NUL, or a backslash
 * (raw or decoded): each is refused before the file system sees it. */
static int percent_decode(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        /* TODO 2: a '%' must be followed by two hex digits (hex_value()
         * reads one), and the pair is the byte to keep: "%20" is a space,
         * "%2F" a '/'. Refuse (return -1) a '%' without two hex digits
         * after it, a byte that decodes to '\0', and a backslash, raw or
         * decoded. Decode once only: "%252e" is "%2e", not ".". See RFC
         * 3986, sections 2.1 (what %XX is) and 2.4 (decode once). */
        (void)hex_value;
        if (o + 1 >= cap) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Normalises a decoded path in place: drops empty and "." segments,
 * resolves ".." against the segment before it, and removes the leading
 * '/': "/a/./b/../c" becomes "a/c", "/" becomes "". Returns 0, or -1 if
 * a ".." would climb above the root. */
static int normalise_path(char *path)
{
    /* TODO 3: walk the segments between the slashes. Drop the empty
     * ones and ".". For "..", remove the last segment you kept; if there
     * is none, the path climbs above the root: return -1. Keep the rest,
     * joined by single slashes, with no '/' in front. You can write the
     * result over path as you read it (memmove(3)): it never gets
     * longer. RFC 3986, section 5.2.4 ("remove_dot_segments") is a
     * cousin: it keeps empty segments and quietly drops a ".." at the
     * root, where this function must refuse it.
     * For now only the leading slashes go, and ".." climbs out of DIR:
     * try  curl --path-as-is http://127.0.0.1:8080/../../etc/passwd  */
    size_t skip = strspn(path, "/");
    memmove(path, path + skip, strlen(path + skip) + 1);
    return 0;
}

/* Turns a request target into a path beneath the root, e.g.
 * "/a/./b/../c%20d?x=1" into "a/c d". *dir_slash says whether it ended
 * with '/'. Returns 0 or 400. Nothing here touches the file system. */
static int target_to_path(const char *target, char *path, size_t cap, int *dir_slash)
{
    const char *p = target;
    if (strchr(p, '#'))
        return 400;                       /* a fragment is never sent (RFC 9112 3.2) */
    /* absolute-form, "http://host/path", as proxies send it (RFC 9112
     * 3.2.2): we serve the path, whatever the host. */
    size_t scheme = strncasecmp(p, "http://", 7) == 0 ? 7 : strncasecmp(p, "https://", 8) == 0 ? 8 : 0;
    if (scheme) {
        /* The authority is a host and a port: empty, userinfo ("u:p@"),
         * or a byte no host has is a 400 (RFC 9110 4.2.1, 4.2.4). */
        p += scheme;
        size_t n = strcspn(p, "/?#");
        if (n == 0 || memchr(p, '@', n) || !host_is_valid(p, n))
            return 400;
        p += n;
        if (*p != '/') p = "/";
    }

    if (*p != '/')
        return 400;                       /* "*" or a bare word names no file */
    size_t n = strcspn(p, "?#");          /* the query is not part of the path */
    if (percent_decode(p, n, path, cap) < 0)
        return 400;
    *dir_slash = path[strlen(path) - 1] == '/';
    if (normalise_path(path) < 0)
        return 400;
    if (path[0] == '\0')
        *dir_slash = 1;                   /* the root needs no redirect */
    return 0;
}

/*** the file system ***/

/* Opens path (normalised, as above) beneath root_fd, one component at a
 * time: O_NOFOLLOW refuses a symlink (ELOOP) at every step, so nothing
 * outside the root can be reached, not even through a link planted
 * inside it. The last component is opened O_NONBLOCK: opening a FIFO
 * would otherwise wait for a writer forever. Returns a descriptor, or
 * -1 with errno set. */
static int open_beneath(int root_fd, char *path)
{
    if (path[0] == '\0')                  /* the root itself: a fresh open, since a */
        return openat(root_fd, ".", O_RDONLY | O_DIRECTORY);   /* dup shares its offset */
    /* TODO 4: open one component at a time: openat(2) each directory on
     * the way with O_RDONLY | O_DIRECTORY | O_NOFOLLOW, relative to the
     * one before (starting at root_fd), and the last component with
     * O_RDONLY | O_NOFOLLOW | O_NONBLOCK. Close each directory once you
     * have the next; never close root_fd. Keep the errno of a failed
     * openat for the caller (close() may change errno). For now the
     * whole path is opened at once, and a symlink anywhere on it is
     * followed, out of DIR if it points there. */
    return openat(root_fd, path, O_RDONLY | O_NONBLOCK);
}

/* The status for a failed open. */
static int status_for_errno(int err)
{
    switch (err) {
    case ENOENT: case ENOTDIR: case ENAMETOOLONG:
        return 404;
    case EACCES: case EPERM: case ELOOP: case EMLINK: /* EMLINK: FreeBSD's O_NOFOLLOW */
    case ENXIO:                           /* a socket file */
        return 403;
    default:
        return 500;
    }
}

static const struct {
    const char *ext, *type;
} MIME_TYPES[] = {
    {"html", "text/html"}, {"htm", "text/html"}, {"css", "text/css"},
    {"js", "text/javascript"}, {"mjs", "text/javascript"}, {"json", "application/json"},
    {"txt", "text/plain"}, {"md", "text/markdown"}, {"csv", "text/csv"},
    {"xml", "application/xml"}, {"png", "image/png"}, {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"}, {"gif", "image/gif"}, {"svg", "image/svg+xml"},
    {"webp", "image/webp"}, {"ico", "image/vnd.microsoft.icon"}, {"pdf", "application/pdf"},
    {"wasm", "application/wasm"}, {"woff2", "font/woff2"}, {"mp4", "video/mp4"},
};

/* The MIME type for a file name, from its extension, case-insensitive. */
static const char *mime_type(const char *name)
{
    /* TODO 1: find the extension: what follows the last '.' of the last
     * path component (a '.' in a directory name does not count), and
     * look it up in MIME_TYPES without regard to case (strcasecmp(3),
     * from <strings.h>). No extension, or one not in the table:
     * "application/octet-stream". strrchr(3) finds a last character. */
    (void)name;
    (void)MIME_TYPES;
    return "application/octet-stream";    /* "some bytes": the browser downloads it */
}

/*** responses ***/

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default:  return "Internal Server Error";
    }
}

/* Appends the status line and the headers every response carries; the
 * caller adds its own and the empty line. */
static void begin_response(struct buf *out, int status)
{
    char date[40];
    http_date(time(NULL), date);
    buf_printf(out, "HTTP/1.1 %d %s\r\nServer: " PROG "\r\nDate: %s\r\nConnection: close\r\n",
               status, reason(status), date);
}

/* Appends s with the five HTML-special characters escaped: a file named
 * "<script>...</script>" must show as text, not run. */
static void append_html(struct buf *out, const char *s)
{
    /* TODO 5 (1 of 2): append s with & < > " ' written as the entities
     * &amp; &lt; &gt; &quot; &#39; (any other byte as it is). For now a
     * file named "<script>...</script>.txt" runs in the listing. */
    buf_puts(out, s);
}

/* Appends s percent-encoded: every byte but the unreserved ones (RFC
 * 3986 2.3), and '/' where keep_slash says so. A name with '?', '#', '%'
 * or ':' in it would otherwise be read as a query, a fragment, an escape
 * or a scheme. */
static void append_url(struct buf *out, const char *s, int keep_slash)
{
    /* TODO 5 (2 of 2): append s with every byte but A-Z a-z 0-9 - . _ ~
     * (and '/' if keep_slash) written as %XX, two upper-case hex digits
     * (buf_printf with "%%%02X"). Take the bytes as unsigned char: a
     * UTF-8 byte such as 0xC3 must become %C3, not a negative number. */
    (void)keep_slash;
    buf_puts(out, s);
}

/* Sends a complete error (or redirect) response with a short HTML body.
 * location: for a 301, else NULL. */
static void send_status(int fd, struct buf *out, int status, int head_only, const char *location)
{
    struct buf body = {0};
    buf_printf(&body, "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
               "<body><h1>%d %s</h1></body></html>\n", status, reason(status), status, reason(status));
    out->len = 0;
    begin_response(out, status);
    if (location) {
        buf_puts(out, "Location: /");
        append_url(out, location, 1);
        buf_puts(out, location[0] ? "/\r\n" : "\r\n");
    }
    if (status == 405)
        buf_puts(out, "Allow: GET, HEAD\r\n");
    buf_printf(out, "Content-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n\r\n", body.len);
    if (!head_only && !body.failed)
        buf_append(out, body.data, body.len);
    if (!out->failed && !body.failed)
        send_all(fd, out->data, out->len);
    free(body.data);
}

/* Is the client's copy, dated by its If-Modified-Since, as new as the
 * file? Then it needs no new copy (304). Only whole seconds count: that
 * is all an HTTP date holds. */
static int not_modified(const struct request *rq, const struct stat *st)
{
    /* TODO 6: if the request had an If-Modified-Since that
     * parse_http_date() can read, and the file's st_mtime is not after
     * that date, return 1; else 0. (Equal means not modified: the client
     * has this very version.) RFC 9110, section 13.1.3. */
    (void)rq;
    (void)st;
    (void)parse_http_date;
    return 0;
}

/* Sends a regular file: 200 with its bytes, or 304 if the client's copy
 * is as new as ours. Returns 0: the response went out, or the connection
 * broke on the way and there is no one left to tell. */
static int send_file(int fd, const struct request *rq, int file, const struct stat *st,
                     const char *name, struct buf *out)
{
    char modified[40];
    http_date(st->st_mtime, modified);
    if (not_modified(rq, st)) {
        /* Not Modified has no body, so no Content-Length either (RFC
         * 9110 8.6: it would have to be the 200's length). */
        begin_response(out, 304);
        buf_printf(out, "Last-Modified: %s\r\n\r\n", modified);
        if (!out->failed) send_all(fd, out->data, out->len);
        return 0;
    }
    begin_response(out, 200);
    buf_printf(out, "Content-Type: %s\r\nContent-Length: %lld\r\nLast-Modified: %s\r\n\r\n",
               mime_type(name), (long long)st->st_size, modified);
    /* The first chunk of the file rides along with the headers, so a
     * small file goes out in one send(). */
    long long left = strcmp(rq->method, "HEAD") == 0 ? 0 : (long long)st->st_size;
    for (;;) {
        size_t want = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
        if (buf_reserve(out, want) < 0)
            return 0;
        ssize_t n = want ? read(file, out->data + out->len, want) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        /* A file that shrank under us: we promised st_size bytes, and
         * closing early is the only honest thing left to do. */
        if (n < 0 || (n == 0 && left > 0))
            return 0;
        out->len += (size_t)n;
        left -= n;
        if (send_all(fd, out->data, out->len) < 0 || left == 0)
            return 0;
        out->len = 0;
    }
}

/*** directory listings ***/

struct entry {
    char *name;
    int is_dir;
};

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static void free_entries(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) free(e[i].name);
    free(e);
}

/* Reads the names in the directory dir_fd (but "." and ".."), sorted.
 * Returns the count with *out to free (free_entries), or -1. */
static long read_entries(int dir_fd, struct entry **out)
{
    /* fdopendir takes over the descriptor it is given: give it its own. */
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return -1;
    }
    struct entry *e = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);   /* safe: this DIR is ours alone */
        if (!de) break;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            struct entry *bigger = realloc(e, (cap ? cap * 2 : 32) * sizeof *e);
            if (!bigger) break;
            e = bigger;
            cap = cap ? cap * 2 : 32;
        }
        struct stat st;
        e[n].is_dir = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        if (!(e[n].name = strdup(de->d_name))) break;
        n++;
    }
    int failed = errno != 0;
    closedir(d);
    if (failed) {
        free_entries(e, n);
        return -1;
    }
    if (n > 0)
        qsort(e, n, sizeof *e, compare_entries);
    *out = e;
    return (long)n;
}

/* Sends the HTML listing of a directory; path is its normalised path
 * ("" for the root). Returns 0 when sent, or a status to answer with. */
static int send_listing(int fd, const struct request *rq, int dir_fd, const char *path, struct buf *out)
{
    struct entry *e = NULL;
    long n = read_entries(dir_fd, &e);
    if (n < 0)
        return 500;
    struct buf body = {0};
    buf_puts(&body, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<title>Directory listing for /");
    append_html(&body, path);
    buf_puts(&body, path[0] ? "/</title>\n</head>\n<body>\n<h1>Directory listing for /" :
                              "</title>\n</head>\n<body>\n<h1>Directory listing for /");
    append_html(&body, path);
    buf_puts(&body, path[0] ? "/</h1>\n<hr>\n<ul>\n" : "</h1>\n<hr>\n<ul>\n");
    for (long i = 0; i < n; i++) {
        /* Two encodings, each for its place: the link is percent-encoded
         * (it is a URL), the text is HTML-escaped (it is markup). */
        const char *slash = e[i].is_dir ? "/" : "";
        buf_puts(&body, "<li><a href=\"");
        append_url(&body, e[i].name, 0);
        buf_printf(&body, "%s\">", slash);
        append_html(&body, e[i].name);
        buf_printf(&body, "%s</a></li>\n", slash);
    }
    buf_puts(&body, "</ul>\n<hr>\n</body>\n</html>\n");
    free_entries(e, (size_t)n);

    begin_response(out, 200);
    buf_printf(out, "Content-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n\r\n", body.len);
    if (strcmp(rq->method, "HEAD") != 0 && !body.failed)
        buf_append(out, body.data, body.len);
    int failed = body.failed || out->failed;
    free(body.data);
    if (failed)
        return 500;
    send_all(fd, out->data, out->len);
    return 0;
}

/* A directory: redirect to its name with a '/', or serve its index.html,
 * or list it. Returns 0 when a response went out, or a status. */
static int send_directory(int fd, const struct request *rq, int dir_fd, const char *path,
                          int dir_slash, struct buf *out)
{
    if (!dir_slash) {
        /* Relative links in the page must resolve inside the directory:
         * "/docs" + "a.txt" is "/a.txt", "/docs/" + "a.txt" is right. */
        send_status(fd, out, 301, strcmp(rq->method, "HEAD") == 0, path);
        return 0;
    }
    int index = openat(dir_fd, "index.html", O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (index < 0 && errno != ENOENT)
        return status_for_errno(errno);
    struct stat st;
    if (index >= 0 && fstat(index, &st) == 0 && S_ISREG(st.st_mode)) {
        send_file(fd, rq, index, &st, "index.html", out);
        close(index);
        return 0;
    }
    if (index >= 0) close(index);         /* not a file: list the directory instead */
    return send_listing(fd, rq, dir_fd, path, out);
}

/* Answers a parsed request. Returns 0 when a response went out, or the
 * status of the error page to send. */
static int answer(const struct server *srv, int fd, const struct request *rq, struct buf *out)
{
    char path[REQUEST_LINE_MAX + 2];
    int dir_slash = 0;
    int status = target_to_path(rq->target, path, sizeof path, &dir_slash);
    if (status != 0)
        return status;
    int file = open_beneath(srv->root_fd, path);
    if (file < 0)
        return status_for_errno(errno);
    struct stat st;
    if (fstat(file, &st) < 0)
        status = 500;
    else if (S_ISDIR(st.st_mode))
        status = send_directory(fd, rq, file, path, dir_slash, out);
    else if (!S_ISREG(st.st_mode))
        status = 403;                     /* a FIFO, socket or device: not ours to serve */
    else if (dir_slash)
        status = 404;                     /* "file.txt/" names no directory */
    else
        status = send_file(fd, rq, file, &st, path, out);
    close(file);
    return status;
}

/*** connections ***/

/* We answered without reading all the client sent (a body, or a request
 * we refused half-way). Closing now, with unread bytes, makes the kernel
 * send RST, and the client may lose our answer before reading it (RFC
 * 9112 9.6). So: send FIN, then read and discard for a while. */
static void linger_close(int fd)
{
    char sink[4096];
    shutdown(fd, SHUT_WR);
    long long deadline = now_ms() + LINGER_MS;
    for (long long left; (left = deadline - now_ms()) > 0;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        ssize_t k = recv(fd, sink, sizeof sink, 0);
        if (k == 0 || (k < 0 && errno != EINTR))
            return;
    }
}

/* How many bytes of empty lines (CR LF or LF) buf[0..len) starts with. */
static size_t skip_empty_lines(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && (buf[i] == '\n' || (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')))
        i += buf[i] == '\r' ? 2 : 1;
    return i;
}

/* Serves one connection: one request, one response. Every failure here
 * ends this connection only; the caller closes fd. */
static void serve_connection(struct server *srv, int fd)
{
    /* A client that stops reading makes send() block: not forever. */
    struct timeval tv = {.tv_sec = srv->timeout_ms / 1000, .tv_usec = srv->timeout_ms % 1000 * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return;

    char head[REQUEST_BUF + 1];
    struct head_scan scan;
    size_t got;
    int status = read_head(srv, fd, head, REQUEST_BUF, &scan, &got);
    if (status < 0)
        return;                           /* gone or silent: nobody to answer */
    struct request rq = {.method = ""};
    int unread = status != 0;             /* refused before the end of the head */
    if (status == 0) {
        status = parse_request(head, &scan, &rq);
        unread = status != 0 || got > scan.end || rq.content_length > 0 || rq.chunked;
    }
    struct buf out = {0};
    if (status == 0)
        status = answer(srv, fd, &rq, &out);
    /* An error found before the request was parsed (414, 431, a bad
     * line) still owes a HEAD request no body: look at the method. */
    int head_only = strcmp(rq.method, "HEAD") == 0 ||
                    (rq.method[0] == '\0' && got - skip_empty_lines(head, got) >= 5 &&
                     memcmp(head + skip_empty_lines(head, got), "HEAD ", 5) == 0);
    if (status != 0)
        send_status(fd, &out, status, head_only, NULL);
    free(out.data);
    if (unread)
        linger_close(fd);
}

/* One of the POOL_THREADS workers: accept a connection, serve it, close
 * it, and again. The kernel hands each new connection to one of the
 * threads waiting in accept(); while all are busy, new connections wait
 * in the listen queue. Prethreading (UNP 30.12) saves creating a thread
 * per connection, which costs as much as serving a small file. */
static void worker_ended(void *arg);

static void *worker(void *arg)
{
    struct server *srv = arg;
    /* A slot of our own in conn_fd, so that a drain that runs out of
     * time can cut our connection (see main). */
    pthread_mutex_lock(&srv->lock);
    int slot = 0;
    while (slot < POOL_THREADS - 1 && srv->conn_fd[slot] != -1) slot++;
    srv->conn_fd[slot] = -2;              /* taken, no connection yet */
    pthread_mutex_unlock(&srv->lock);
    pthread_cleanup_push(worker_ended, srv);
    for (;;) {
        /* main stops us with pthread_cancel(), which acts only at a
         * cancellation point while cancelling is enabled: in accept()
         * here, never half-way through a client. */
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        int fd = accept(srv->listen_fd, NULL, NULL);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        if (fd >= 0) {
            pthread_mutex_lock(&srv->lock);
            srv->conn_fd[slot] = fd;
            srv->busy++;
            pthread_mutex_unlock(&srv->lock);
            serve_connection(srv, fd);
            /* Under the lock: main must never shut down a descriptor
             * number that has meanwhile been reused for something else. */
            pthread_mutex_lock(&srv->lock);
            srv->conn_fd[slot] = -2;
            srv->busy--;
            close(fd);
            pthread_mutex_unlock(&srv->lock);
        } else if (errno == EMFILE || errno == ENFILE) {
            /* Out of descriptors: the connection stays queued, and accept
             * would fail again at once, forever. Pause for others to close. */
            fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
            struct timespec pause = {0, ACCEPT_BACKOFF_MS * 1000000L};
            nanosleep(&pause, NULL);
        } else if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO) {
            fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
        }
    }
    pthread_cleanup_pop(0);               /* never reached: cancelled in accept */
    return NULL;
}

/* Runs when a worker is cancelled (in accept): one fewer running. */
static void worker_ended(void *arg)
{
    struct server *srv = arg;
    pthread_mutex_lock(&srv->lock);
    srv->running--;
    pthread_cond_broadcast(&srv->changed);
    pthread_mutex_unlock(&srv->lock);
}

/* Waits until no worker runs, or until deadline (CLOCK_REALTIME, as
 * pthread_cond_timedwait wants it). Returns how many still run. Call
 * with srv->lock held. */
static int wait_workers(struct server *srv, const struct timespec *deadline)
{
    while (srv->running > 0 &&
           pthread_cond_timedwait(&srv->changed, &srv->lock, deadline) != ETIMEDOUT) {
    }
    return srv->running;
}

/* The time ms milliseconds from now, for pthread_cond_timedwait. */
static struct timespec realtime_after(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += ms % 1000 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* SIGTERM: stop accepting, let the answers in flight finish, but not for
 * ever: after -t (at most DRAIN_MAX_MS) the connections still open are
 * cut with shutdown(), which makes their blocked send or recv fail at
 * once. Returns 0 when every worker has ended (and may be joined). */
static int drain(struct server *srv, pthread_t *pool, int started)
{
    for (int i = 0; i < started; i++)
        pthread_cancel(pool[i]);
    long grace = srv->timeout_ms < DRAIN_MAX_MS ? srv->timeout_ms : DRAIN_MAX_MS;
    struct timespec deadline = realtime_after(grace);
    pthread_mutex_lock(&srv->lock);
    if (wait_workers(srv, &deadline) > 0) {
        for (int i = 0; i < POOL_THREADS; i++)
            if (srv->conn_fd[i] >= 0) shutdown(srv->conn_fd[i], SHUT_RDWR);
        deadline = realtime_after(DRAIN_CUT_MS);
        wait_workers(srv, &deadline);
    }
    int left = srv->running;
    pthread_mutex_unlock(&srv->lock);
    return left;
}

/* Starts up to n workers. Returns how many started (for each that did
 * not, a message is printed). */
static int start_workers(struct server *srv, pthread_t *pool, int n)
{
    /* TODO 7: start n threads, pool[0] to pool[n - 1], each running
     * worker(srv): pthread_create(3). It returns an error number (it
     * does not set errno): print "static_server: pthread_create: <its
     * strerror>" and return how many started. For now there is one
     * worker, so one slow client holds up everyone else. */
    (void)n;
    int err = pthread_create(&pool[0], NULL, worker, srv);
    if (err != 0) {
        fprintf(stderr, PROG ": pthread_create: %s\n", strerror(err));
        return 0;
    }
    return 1;
}

/*** setting up ***/

/* Binds and listens on addr:port; prints "listening on ADDR:PORT".
 * Returns the socket, or -1 with a message printed. */
static int listen_on(const char *addr, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(addr, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s: %s\n", addr, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    const char *what = NULL;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            what = "socket";
            continue;
        }
        int one = 1;
        /* A restarted server can bind while old connections sit in TIME_WAIT. */
        what = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ? "setsockopt"
             : bind(fd, ai->ai_addr, ai->ai_addrlen) < 0                  ? "bind"
             : listen(fd, SOMAXCONN) < 0                                   ? "listen"
             : NULL;
        if (what) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, PROG ": %s: %s\n", what, strerror(err));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned short p = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
            p = ntohs(s6->sin6_port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
            p = ntohs(s4->sin_port);
        }
    }
    printf("listening on %s:%u\n", ip, p);
    fflush(stdout);
    return fd;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: " PROG " -d DIR [-p PORT] [-b ADDR] [-t SECONDS]\n"
                "Serves the files beneath DIR over HTTP, from a pool of threads.\n"
                "  -d DIR      the directory to serve\n"
                "  -p PORT     port to listen on (" DEFAULT_PORT "; 0: any free port)\n"
                "  -b ADDR     address to listen on (" DEFAULT_ADDR ")\n"
                "  -t SECONDS  time a client has to send its request, and per write (%g;\n"
                "              fractions allowed: 0.5)\n",
            DEFAULT_TIMEOUT_MS / 1000.0);
}

/* Reads a whole number in [lo, hi]; returns -1 if s is not one. */
static long parse_number(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

/* Reads seconds, fractions allowed ("0.5"), as milliseconds in
 * [1, 3600000]; returns -1 if s is not that. */
static long parse_millis(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= 0.001 && v <= 3600))
        return -1;
    return (long)(v * 1000 + 0.5);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *port = DEFAULT_PORT, *addr = DEFAULT_ADDR;
    long timeout_ms = DEFAULT_TIMEOUT_MS;
    int opt;
    opterr = 0;                           /* our usage line says it all */
    while ((opt = getopt(argc, argv, "d:p:b:t:h")) != -1) {
        switch (opt) {
        case 'd': dir = optarg; break;
        case 'p': port = optarg; break;
        case 'b': addr = optarg; break;
        case 't': timeout_ms = parse_millis(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dir || optind != argc || parse_number(port, 0, 65535) < 0 || timeout_ms < 0) {
        usage(stderr);
        return 2;
    }

    struct server srv = {.timeout_ms = (int)timeout_ms};
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.changed, NULL);
    for (int i = 0; i < POOL_THREADS; i++) srv.conn_fd[i] = -1;
    srv.root_fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (srv.root_fd < 0) {
        fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
        return 1;
    }

    /* SIGPIPE would kill us when a client closes while we send; with it
     * ignored, send() fails with EPIPE and only that connection ends. */
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, NULL);
    /* SIGINT and SIGTERM: blocked before any thread exists, so every
     * thread inherits the mask and none is interrupted; main collects
     * them with sigwait() below. No handler, no flag, no EINTR. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    srv.listen_fd = listen_on(addr, port);
    if (srv.listen_fd < 0) {
        close(srv.root_fd);
        return 1;
    }
    pthread_t pool[POOL_THREADS];
    srv.running = POOL_THREADS;           /* before any can end; fixed below */
    int started = start_workers(&srv, pool, POOL_THREADS);
    pthread_mutex_lock(&srv.lock);
    srv.running -= POOL_THREADS - started;
    pthread_mutex_unlock(&srv.lock);
    int sig, status = started > 0 ? 0 : 1;    /* fewer threads: still a server */
    if (started > 0)
        sigwait(&stop_signals, &sig);
    /* Each worker is cancelled in accept(), or, if busy, as soon as it
     * is back there: connections in flight are finished, for a while. */
    if (drain(&srv, pool, started) == 0)
        for (int i = 0; i < started; i++)
            pthread_join(pool[i], NULL);
    else
        fprintf(stderr, PROG ": exiting with connections still open\n");
    close(srv.listen_fd);
    close(srv.root_fd);
    return status;
}
