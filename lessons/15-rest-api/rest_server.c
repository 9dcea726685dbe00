/*
 * rest_server - lesson 15: a JSON notes API, the origin text's "remote
 * calls", on the event loop of lesson 14.
 *
 *     rest_server [-p PORT] [-b ADDR] [-t SECONDS] [-c MAXCONN] [-v]
 *
 *     GET    /notes        200  [{"id":1,"text":"..."}, ...]
 *     POST   /notes        201  {"id":N,"text":"..."}   Location: /notes/N
 *     GET    /notes/ID     200  the note
 *     PUT    /notes/ID     200  the note, its text replaced
 *     DELETE /notes/ID     204  (no body)
 *
 * A body is JSON, {"text": "..."}, sent with Content-Type:
 * application/json (else 415). Errors are JSON too, {"error": "..."}:
 * 400 bad JSON or a missing/wrong field, 404 no such note or path, 405
 * with Allow for a method the path does not take, 411 a chunked body,
 * 413 a body over 1 MiB, 507 when the store is full (10,000 notes or
 * 16 MiB of text: every buffer has a named limit).
 *
 * The loop, the request parser and the limits are lesson 14's (copied:
 * every lesson stands alone), minus the files and plus request bodies.
 * The JSON reader and writer are hand-written: they handle every string
 * escape both ways (\" \\ \n ... and \uXXXX with surrogate pairs), check
 * UTF-8, and refuse what they do not understand with 400 instead of
 * guessing. Notes live in memory and die with the process.
 *
 *     curl -s localhost:8080/notes -H 'Content-Type: application/json' -d '{"text":"hi"}'
 *
 * YOUR JOB: the loop and the HTTP parts are lesson 14's and done. The
 * TODOs are the API: reading a JSON string (TODO 1), writing one (TODO 2),
 * and the /notes/ID routes (TODO 3). Grade with
 *     make check LESSON=15
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && !defined(USE_POLL)
#define USE_EPOLL 1
#include <sys/epoll.h>
#endif

#define PROG "rest_server"

/*** limits ***/

#define MAX_REQUEST_LINE   8192         /* longer: 414 */
#define MAX_HEADER_LINE    8192         /* one header line longer: 431 */
#define MAX_HEADERS        (32 * 1024)  /* all header lines together: 431 */
#define MAX_HEAD           (2 * MAX_REQUEST_LINE + MAX_HEADERS + 1024)
#define MAX_BODY           (1024 * 1024) /* a request body larger: 413 */
#define MAX_NOTES          10000        /* more: 507 */
#define MAX_STORE_BYTES    (16 * 1024 * 1024) /* all notes' text together; more: 507 */
#define KEEP_OUT_BUF_BYTES (256 * 1024) /* an idle client keeps no bigger buffer */
#define DEFAULT_TIMEOUT_S  15           /* -t: header, body, idle and send */
#define LINGER_MS          2000         /* reading leftovers before a close */
#define DEFAULT_MAX_CONNS  10000        /* -c, clamped to the fd limit */
#define FD_RESERVE         16
#define MAX_EVENTS         512
#define DRAIN_GRACE_S      10
#define TIMER_TICK_MS      250

/*** types ***/

struct buf {
    char *data;
    size_t len, cap;
};

struct request {
    const char *method, *target, *content_type;
    size_t method_len, target_len, content_type_len;
    int minor;
    int keep_alive;
    long long content_length; /* -1: none */
    int chunked;
    int expect_continue;      /* Expect: 100-continue */
};

enum conn_state { C_READING, C_WRITING, C_LINGERING };

struct conn {
    int fd;
    enum conn_state state;
    char *in;                    /* grows to MAX_HEAD + MAX_BODY at most */
    size_t in_len, in_cap;
    size_t need;                 /* head + body bytes awaited, 0: head not parsed */
    int continue_sent;           /* "100 Continue" already sent for this request */
    struct buf out;
    size_t out_off;
    int keep_alive;
    long long request_start_ms, last_progress_ms, linger_until_ms;
    size_t line_start;
    int watching;
    char peer[INET6_ADDRSTRLEN];
    struct conn *prev, *next;
};

struct events {
#ifdef USE_EPOLL
    int epfd;
#else
    struct pollfd *pfds;
    int *slot_of;
    int n, max_fds;
    int first;                   /* where ev_wait's next scan starts */
#endif
};

struct ready {
    int fd;
    int readable, writable, error;
};

struct note {
    long long id;
    char *text;                  /* UTF-8, may hold NUL bytes: use len */
    size_t len;
};

struct store {
    struct note *notes;          /* in id order */
    size_t count, cap;
    size_t bytes;                /* all texts together */
    long long next_id;
};

struct server {
    int listen_fd;
    int timeout_ms;
    int max_conns, nconns;
    int verbose;
    struct conn **by_fd;
    int max_fds;
    struct conn *conns;
    long long drain_deadline_ms;
    struct events ev;
    time_t date_second;
    char date[40];
    long long accept_paused_until_ms;
    struct store store;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/*** small utilities ***/

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static int ci_equal(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Appends to a growable buffer; returns -1 (ENOMEM) on failure. */
static int buf_append(struct buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

static int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1; /* every caller formats short lines: a longer one is a bug */
    return buf_append(b, tmp, (size_t)n);
}

static void buf_free(struct buf *b)
{
    free(b->data);
    *b = (struct buf){0};
}

/*** the event backend: poll(), or epoll on Linux ***/
/*
 * The loop needs three things from the kernel: watch this fd for reading
 * and/or writing, stop watching it, and tell me which are ready. poll()
 * does it portably, but hands the whole list to the kernel on every call:
 * with 10,000 idle keep-alive connections, each wake-up scans 10,000
 * entries to find the three that are ready. epoll (Linux) and kqueue (BSD,
 * macOS) keep the list inside the kernel and report only the ready ones.
 * Both sit behind the same four functions, so the server cannot tell.
 */
enum { EV_READ = 1, EV_WRITE = 2 };

#ifdef USE_EPOLL
static int ev_open(struct events *ev, int max_fds)
{
    (void)max_fds;
    ev->epfd = epoll_create1(EPOLL_CLOEXEC);
    return ev->epfd < 0 ? -1 : 0;
}

static int ev_watch(struct events *ev, int fd, int want, int is_new)
{
    struct epoll_event e = {.events = (want & EV_READ ? EPOLLIN : 0u) |
                                      (want & EV_WRITE ? EPOLLOUT : 0u),
                            .data.fd = fd};
    return epoll_ctl(ev->epfd, is_new ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e);
}

static void ev_forget(struct events *ev, int fd)
{
    epoll_ctl(ev->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int ev_wait(struct events *ev, struct ready *out, int max, int timeout_ms)
{
    struct epoll_event es[MAX_EVENTS];
    int n = epoll_wait(ev->epfd, es, max < MAX_EVENTS ? max : MAX_EVENTS, timeout_ms);
    for (int i = 0; i < n; i++) {
        out[i] = (struct ready){.fd = es[i].data.fd,
                                .readable = !!(es[i].events & (EPOLLIN | EPOLLHUP)),
                                .writable = !!(es[i].events & EPOLLOUT),
                                .error = !!(es[i].events & EPOLLERR)};
    }
    return n;
}

static void ev_close(struct events *ev)
{
    close(ev->epfd);
}
#else
static int ev_open(struct events *ev, int max_fds)
{
    ev->pfds = calloc((size_t)max_fds, sizeof *ev->pfds);
    ev->slot_of = malloc((size_t)max_fds * sizeof *ev->slot_of);
    if (!ev->pfds || !ev->slot_of)
        return -1;
    for (int i = 0; i < max_fds; i++)
        ev->slot_of[i] = -1;
    ev->n = ev->first = 0;
    ev->max_fds = max_fds;
    return 0;
}

static int ev_watch(struct events *ev, int fd, int want, int is_new)
{
    (void)is_new;
    if (fd >= ev->max_fds) {
        errno = EMFILE;
        return -1;
    }
    int slot = ev->slot_of[fd];
    if (slot < 0) {
        slot = ev->n++;
        ev->slot_of[fd] = slot;
        ev->pfds[slot].fd = fd;
    }
    ev->pfds[slot].events = (short)((want & EV_READ ? POLLIN : 0) | (want & EV_WRITE ? POLLOUT : 0));
    return 0;
}

static void ev_forget(struct events *ev, int fd)
{
    int slot = ev->slot_of[fd];
    if (slot < 0)
        return;
    /* Move the last entry into the hole: the array stays dense. */
    ev->pfds[slot] = ev->pfds[--ev->n];
    ev->slot_of[ev->pfds[slot].fd] = slot;
    ev->slot_of[fd] = -1;
}

static int ev_wait(struct events *ev, struct ready *out, int max, int timeout_ms)
{
    int n = poll(ev->pfds, (nfds_t)ev->n, timeout_ms);
    if (n <= 0)
        return n;
    /* With more than max ready, the scan stops early: start the next one
     * where this one stopped, or the fds at the end would wait forever. */
    int got = 0, k = 0;
    for (; k < ev->n && got < max; k++) {
        int i = (ev->first + k) % ev->n;
        short r = ev->pfds[i].revents;
        if (!r)
            continue;
        out[got++] = (struct ready){.fd = ev->pfds[i].fd,
                                    .readable = !!(r & (POLLIN | POLLHUP)),
                                    .writable = !!(r & POLLOUT),
                                    .error = !!(r & (POLLERR | POLLNVAL))};
    }
    ev->first = (ev->first + k) % ev->n;
    return got;
}

static void ev_close(struct events *ev)
{
    free(ev->pfds);
    free(ev->slot_of);
}
#endif

/*** the request parser (lesson 14's) ***/

#define PARSE_AGAIN (-1) /* the head is not complete yet: read more */

/* tchar from RFC 9110: the characters of a method or a field name. */
static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A Host value, or the authority of an absolute-form target, is
 * host[:port] (RFC 3986 3.2.2): letters, digits, "-._~!$&'()*+;=", "%"
 * escapes, ":" and "[...]" (IPv6). Never a space, "/", ",", "@", "#" or
 * "..": RFC 9112 3.2 says 400. Empty is allowed (no authority). */
static int is_valid_host(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == 0 || (!isalnum(c) && !strchr("-._~!$&'()*+;=%:[]", c)))
            return 0;
        if (c == '.' && i + 1 < n && v[i + 1] == '.')
            return 0;
    }
    return 1;
}

/* Whether a head the parser refused came from a HEAD request: the error
 * response then has no body either (RFC 9110 9.3.2). */
static int is_head_request(const char *in, size_t len)
{
    while (len > 0 && (*in == '\r' || *in == '\n')) {
        in++;
        len--;
    }
    return len >= 5 && memcmp(in, "HEAD ", 5) == 0;
}

/* A server MUST accept the absolute-form "http://host/path?query" as well
 * (RFC 9112, 3.2.2), though only proxies are sent it. There is one site
 * here, so the scheme and host are dropped and the path kept. With no path
 * ("http://host", "http://host?q") the path is "/", and the query is
 * dropped: the second slash of "http://" serves as that "/", so the target
 * still points into the request buffer. Returns 0, or 400 if no host. */
static int strip_absolute_form(struct request *req)
{
    const char *t = req->target, *end = t + req->target_len;
    size_t scheme = 0;
    if (req->target_len > 7 && strncasecmp(t, "http://", 7) == 0)
        scheme = 7;
    else if (req->target_len > 8 && strncasecmp(t, "https://", 8) == 0)
        scheme = 8;
    if (scheme == 0)
        return 0; /* not absolute-form: the caller judges it */
    const char *path = t + scheme;
    while (path < end && *path != '/' && *path != '?')
        path++;
    if (path == t + scheme || !is_valid_host(t + scheme, (size_t)(path - (t + scheme))))
        return 400; /* no host, or userinfo, a fragment, bytes no host has */
    if (path == end || *path == '?') {
        req->target = t + scheme - 1;
        req->target_len = 1;
    } else {
        req->target = path;
        req->target_len = (size_t)(end - path);
    }
    return 0;
}

/* METHOD SP TARGET SP HTTP/D.D, nothing more, nothing less. */
static int parse_request_line(const char *line, size_t n, struct request *req)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i >= n || line[i] != ' ')
        return 400;
    req->method = line;
    req->method_len = i++;

    size_t start = i;
    for (; i < n && line[i] != ' '; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x21 || c == 0x7f) /* NUL, CR, TAB, other controls */
            return 400;
    }
    if (i == start || i >= n)
        return 400;
    req->target = line + start;
    req->target_len = i - start;
    i++;

    const char *v = line + i;
    if (n - i != 8 || memcmp(v, "HTTP/", 5) != 0 || !isdigit((unsigned char)v[5]) || v[6] != '.' ||
        !isdigit((unsigned char)v[7]))
        return 400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return 505;
    req->minor = v[7] - '0';
    if (strip_absolute_form(req) != 0)
        return 400;
    /* Origin-form "/path?query" from here on; "*" (OPTIONS) is not served. */
    return req->target[0] == '/' ? 0 : 400;
}

/* Content-Length: digits only, no sign, no list, no overflow. */
static int parse_content_length(const char *v, size_t n, long long *out)
{
    if (n == 0 || n > 15) /* 15 digits: far beyond any limit, far below overflow */
        return 400;
    long long value = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 400;
        value = value * 10 + (v[i] - '0');
    }
    if (*out >= 0 && *out != value) /* two Content-Lengths that disagree */
        return 400;
    *out = value;
    return 0;
}

/* Scans "close, keep-alive, Upgrade" for the two tokens we care about. */
static void parse_connection(const char *v, size_t n, int *close_seen, int *keep_seen)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (ci_equal(v + start, i - start, "close"))
            *close_seen = 1;
        else if (ci_equal(v + start, i - start, "keep-alive"))
            *keep_seen = 1;
    }
}

struct header_state {
    int hosts, close_seen, keep_seen;
};

/* One "Name: value" line (without its line end). */
static int parse_header_line(const char *line, size_t n, struct request *req, struct header_state *hs)
{
    if (line[0] == ' ' || line[0] == '\t') /* obs-fold: refused, RFC 9112 5.2 */
        return 400;
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)line[i]))
        i++;
    /* No name, no colon, or anything (a space!) between name and colon. */
    if (i == 0 || i >= n || line[i] != ':')
        return 400;
    const char *name = line;
    size_t name_len = i++;

    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t end = n;
    while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    const char *value = line + i;
    size_t vlen = end - i;
    for (size_t k = 0; k < vlen; k++) {
        unsigned char c = (unsigned char)value[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f) /* CR, NUL, controls */
            return 400;
    }

    if (ci_equal(name, name_len, "host")) {
        if (++hs->hosts > 1 || !is_valid_host(value, vlen))
            return 400;
    } else if (ci_equal(name, name_len, "content-length")) {
        return parse_content_length(value, vlen, &req->content_length);
    } else if (ci_equal(name, name_len, "transfer-encoding")) {
        if (!ci_equal(value, vlen, "chunked"))
            return 501; /* a coding we do not implement */
        req->chunked = 1;
    } else if (ci_equal(name, name_len, "connection")) {
        parse_connection(value, vlen, &hs->close_seen, &hs->keep_seen);
    } else if (ci_equal(name, name_len, "expect")) {
        req->expect_continue = ci_equal(value, vlen, "100-continue");
    } else if (ci_equal(name, name_len, "content-type")) {
        req->content_type = value;
        req->content_type_len = vlen;
    }
    return 0;
}

/* Finds the next line in buf[from, len): sets *n to its length without the
 * line end (LF or CRLF) and returns the offset after the LF, or 0 when no
 * LF has arrived yet. */
static size_t next_line(const char *buf, size_t from, size_t len, size_t *n)
{
    const char *lf = memchr(buf + from, '\n', len - from);
    if (!lf)
        return 0;
    size_t end = (size_t)(lf - buf);
    *n = end - from;
    if (*n > 0 && buf[end - 1] == '\r')
        (*n)--;
    return end + 1;
}

/*
 * Parses the request head at the start of buf[0, len).
 * Returns 0 when it is complete and valid (*consumed: its length, *req:
 * what it says), PARSE_AGAIN when more bytes are needed, or the HTTP
 * status to answer with (400, 413, 414, 431, 501, 505).
 */
static int http_parse_request(const char *buf, size_t len, struct request *req, size_t *consumed)
{
    *req = (struct request){.content_length = -1};
    size_t pos = 0, n = 0, next;

    /* Empty lines before the request line are allowed (RFC 9112 2.2). */
    while ((next = next_line(buf, pos, len, &n)) != 0 && n == 0) {
        pos = next;
        if (pos > MAX_REQUEST_LINE)
            return 400;
    }
    if (!next) {
        if (len - pos > MAX_REQUEST_LINE)
            return 414;
        /* A method is tchars up to a space: bytes that cannot begin one (a
         * TLS ClientHello, binary garbage) get 400 now, not a silence. */
        for (size_t i = pos; i < len && buf[i] != ' '; i++)
            if (!is_tchar((unsigned char)buf[i]) && buf[i] != '\r')
                return 400;
        return PARSE_AGAIN;
    }
    if (next - pos > MAX_REQUEST_LINE)
        return 414;
    int status = parse_request_line(buf + pos, n, req);
    if (status)
        return status;

    size_t head_start = pos = next;
    struct header_state hs = {0};
    for (;;) {
        next = next_line(buf, pos, len, &n);
        if (!next) {
            if (len - pos > MAX_HEADER_LINE || len - head_start > MAX_HEADERS)
                return 431;
            return PARSE_AGAIN;
        }
        if (next - pos > MAX_HEADER_LINE || next - head_start > MAX_HEADERS)
            return 431;
        if (n == 0)
            break;
        status = parse_header_line(buf + pos, n, req, &hs);
        if (status)
            return status;
        pos = next;
    }

    if (req->minor == 1 && hs.hosts == 0)
        return 400;
    if (req->chunked && req->content_length >= 0) /* smuggling: refuse both */
        return 400;
    /* HTTP/1.1 keeps the connection unless told to close; 1.0 closes
     * unless told to keep it. */
    req->keep_alive = req->minor == 1 ? !hs.close_seen : hs.keep_seen && !hs.close_seen;
    *consumed = next;
    return 0;
}

/*** JSON: just enough, and strict ***/
/*
 * The reader understands one object whose values are strings, numbers,
 * true, false or null: {"text": "buy milk", "pinned": true}. Anything else
 * (nesting, trailing commas, single quotes, bad escapes, invalid UTF-8,
 * raw control characters, garbage after the object) is refused: a server
 * that guesses what a malformed request meant is a server that can be
 * tricked. The writer escapes everything the reader would refuse raw
 * (quotes, backslashes, control characters).
 */

struct json_in {
    const char *p, *end;
};

static void json_skip_ws(struct json_in *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* Appends code point cp as UTF-8. */
static int utf8_append(struct buf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_append(b, u, n);
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_valid(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned long cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Four hex digits, as in \u00e9. */
static int hex4(const char *p, const char *end, unsigned long *out)
{
    if (end - p < 4)
        return -1;
    unsigned long v = 0;
    for (int i = 0; i < 4; i++) {
        int c = tolower((unsigned char)p[i]);
        if (!isxdigit(c))
            return -1;
        v = v * 16 + (unsigned long)(isdigit(c) ? c - '0' : c - 'a' + 10);
    }
    *out = v;
    return 0;
}

/* Reads a string (j->p at its opening quote) into out, decoded. */
static int json_read_string(struct json_in *j, struct buf *out)
{
    /* TODO 1: read the string literal starting at j->p (its opening '"')
     * into out, decoded, leaving j->p after the closing '"'. Return 0, or
     * -1 for anything malformed. RFC 8259, section 7:
     *   - a raw byte below 0x20 is an error (it must be escaped);
     *   - other bytes must be valid UTF-8: copy each sequence whole,
     *     checked with utf8_valid();
     *   - escapes: \" \\ \/ \b \f \n \r \t, and \uXXXX (hex4() reads the
     *     digits, utf8_append() writes the code point). A \uD800-\uDBFF
     *     must be followed by a \uDC00-\uDFFF: together they are one code
     *     point, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00); a low
     *     surrogate alone is an error. */
    (void)j;
    (void)out;
    (void)hex4;
    (void)utf8_append;
    (void)utf8_valid;
    return -1;
}

/* Skips a number, true, false or null; refuses objects and arrays. */
static int json_skip_scalar(struct json_in *j)
{
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
            j->p += n;
            return 0;
        }
    }
    /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    const char *p = j->p;
    if (p < j->end && *p == '-')
        p++;
    if (p < j->end && *p == '0')
        p++;
    else if (p < j->end && *p >= '1' && *p <= '9')
        while (p < j->end && isdigit((unsigned char)*p))
            p++;
    else
        return -1;
    if (p < j->end && *p == '.') {
        if (++p >= j->end || !isdigit((unsigned char)*p))
            return -1;
        while (p < j->end && isdigit((unsigned char)*p))
            p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= j->end || !isdigit((unsigned char)*p))
            return -1;
        while (p < j->end && isdigit((unsigned char)*p))
            p++;
    }
    j->p = p;
    return 0;
}

/*
 * Reads {"text": "..."} from body: the decoded text goes to *text.
 * Returns NULL, or what is wrong (for the 400 response).
 */
static const char *json_read_note(const char *body, size_t len, struct buf *text)
{
    struct json_in j = {body, body + len};
    int have_text = 0;
    json_skip_ws(&j);
    if (j.p >= j.end || *j.p != '{')
        return "the body must be a JSON object";
    j.p++;
    json_skip_ws(&j);
    if (j.p < j.end && *j.p == '}') {
        j.p++;
    } else {
        for (;;) {
            struct buf key = {0};
            int bad = json_read_string(&j, &key);
            int is_text = !bad && key.len == 4 && memcmp(key.data, "text", 4) == 0;
            buf_free(&key);
            if (bad)
                return "malformed JSON: expected a string key";
            json_skip_ws(&j);
            if (j.p >= j.end || *j.p++ != ':')
                return "malformed JSON: expected ':'";
            json_skip_ws(&j);
            if (is_text) {
                if (have_text)
                    return "\"text\" appears twice";
                if (j.p >= j.end || *j.p != '"')
                    return "\"text\" must be a string";
                if (json_read_string(&j, text))
                    return "malformed JSON string";
                have_text = 1;
            } else if (j.p < j.end && *j.p == '"') {
                struct buf ignored = {0};
                bad = json_read_string(&j, &ignored);
                buf_free(&ignored);
                if (bad)
                    return "malformed JSON string";
            } else if (j.p < j.end && (*j.p == '{' || *j.p == '[')) {
                return "nested objects and arrays are not accepted";
            } else if (json_skip_scalar(&j)) {
                return "malformed JSON value";
            }
            json_skip_ws(&j);
            if (j.p < j.end && *j.p == ',') {
                j.p++;
                json_skip_ws(&j);
                continue;
            }
            if (j.p < j.end && *j.p == '}') {
                j.p++;
                break;
            }
            return "malformed JSON: expected ',' or '}'";
        }
    }
    json_skip_ws(&j);
    if (j.p != j.end)
        return "malformed JSON: something follows the object";
    return have_text ? NULL : "missing field \"text\"";
}

/* Appends s as a JSON string literal: quotes, backslashes and control
 * characters (below 0x20) escaped, as RFC 8259 requires; everything else
 * is valid UTF-8 already and goes as it is. */
static int json_write_string(struct buf *b, const char *s, size_t n)
{
    /* TODO 2: append s (n bytes, valid UTF-8, may contain NUL) to b as a
     * JSON string: in double quotes, with " and \ escaped as \" and \\,
     * newline, CR and tab as \n \r \t, and every other byte below 0x20
     * as \u00XX (six characters: a backslash, u, 0, 0, two hex digits).
     * Every other byte goes as it is. Return 0, or -1 when out of memory. */
    (void)s;
    (void)n;
    return buf_append(b, "\"\"", 2);
}

static int json_write_note(struct buf *b, const struct note *n)
{
    return buf_printf(b, "{\"id\":%lld,\"text\":", n->id) || json_write_string(b, n->text, n->len) ||
           buf_append(b, "}", 1);
}

/*** the notes ***/

static struct note *store_find(struct store *st, long long id)
{
    /* Ids only grow, so the array is sorted by id: binary search. */
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->notes[mid].id == id)
            return &st->notes[mid];
        if (st->notes[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Takes ownership of text (a malloc'd buffer). NULL: out of room. */
static struct note *store_add(struct store *st, char *text, size_t len)
{
    if (st->count >= MAX_NOTES || len > MAX_STORE_BYTES - st->bytes)
        return NULL;
    if (st->count == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        struct note *p = realloc(st->notes, cap * sizeof *p);
        if (!p)
            return NULL;
        st->notes = p;
        st->cap = cap;
    }
    struct note *n = &st->notes[st->count++];
    *n = (struct note){.id = st->next_id++, .text = text, .len = len};
    st->bytes += len;
    return n;
}

static void store_remove(struct store *st, struct note *n)
{
    st->bytes -= n->len;
    free(n->text);
    size_t i = (size_t)(n - st->notes);
    memmove(n, n + 1, (st->count - i - 1) * sizeof *n);
    st->count--;
}

static void store_free(struct store *st)
{
    for (size_t i = 0; i < st->count; i++)
        free(st->notes[i].text);
    free(st->notes);
}
/*** responses ***/

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default:  return "Unknown";
    }
}

/* The Date header changes once a second: format it once a second. */
static const char *current_date(struct server *s)
{
    time_t t = time(NULL);
    if (t != s->date_second) {
        struct tm tm;
        s->date_second = t;
        gmtime_r(&t, &tm);
        strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    return s->date;
}

/* The whole response into c->out: status line, headers (extra: more
 * header lines, or NULL), and body as JSON (NULL: none, as for 204). */
static int respond(struct server *s, struct conn *c, int status, const char *extra,
                   const struct buf *body, int is_head)
{
    int rc = buf_printf(&c->out, "HTTP/1.1 %d %s\r\nServer: sockets-lab\r\nDate: %s\r\n", status,
                        reason_phrase(status), current_date(s));
    if (!rc && body)
        rc = buf_printf(&c->out, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body->len);
    if (!rc)
        rc = buf_printf(&c->out, "Connection: %s\r\n%s\r\n", c->keep_alive ? "keep-alive" : "close",
                        extra ? extra : "");
    if (!rc && body && !is_head)
        rc = buf_append(&c->out, body->data, body->len);
    return rc;
}

/* {"error": "MESSAGE"} with STATUS. Returns STATUS, or -1 (no memory). */
static int respond_error(struct server *s, struct conn *c, int status, const char *message,
                         const char *extra, int is_head)
{
    struct buf body = {0};
    int rc = buf_append(&body, "{\"error\":", 9) || json_write_string(&body, message, strlen(message)) ||
             buf_append(&body, "}\n", 2) || respond(s, c, status, extra, &body, is_head);
    buf_free(&body);
    return rc ? -1 : status;
}

/*** the API ***/

enum route { ROUTE_NONE, ROUTE_NOTES, ROUTE_NOTE };

/* "/notes" or "/notes/ID" (query ignored); anything else: ROUTE_NONE. */
static enum route route_of(const char *target, size_t len, long long *id)
{
    size_t n = 0;
    while (n < len && target[n] != '?')
        n++;
    if (n == 6 && memcmp(target, "/notes", 6) == 0)
        return ROUTE_NOTES;
    if (n < 8 || n > 7 + 15 || memcmp(target, "/notes/", 7) != 0)
        return ROUTE_NONE;
    if (target[7] == '0') /* /notes/007 would name note 7 a second time */
        return ROUTE_NONE;
    long long v = 0;
    for (size_t i = 7; i < n; i++) {
        if (target[i] < '0' || target[i] > '9')
            return ROUTE_NONE;
        v = v * 10 + (target[i] - '0');
    }
    *id = v;
    return ROUTE_NOTE;
}

/* application/json, in any case, with or without ";charset=..." */
static int is_json(const struct request *req)
{
    size_t n = 0;
    while (n < req->content_type_len && req->content_type[n] != ';' && req->content_type[n] != ' ')
        n++;
    return req->content_type && ci_equal(req->content_type, n, "application/json");
}

/* Reads {"text": ...} from the body into a new malloc'd string.
 * Returns 0, or the error status already put in c->out. */
static int read_text(struct server *s, struct conn *c, const struct request *req, const char *body,
                     size_t len, struct buf *text)
{
    if (!is_json(req))
        return respond_error(s, c, 415, "the body must be Content-Type: application/json", NULL, 0);
    const char *problem = json_read_note(body, len, text);
    if (problem) {
        buf_free(text);
        return respond_error(s, c, 400, problem, NULL, 0);
    }
    return 0;
}

static int respond_note(struct server *s, struct conn *c, int status, const struct note *n,
                        const char *extra, int is_head)
{
    struct buf body = {0};
    int rc = json_write_note(&body, n) || buf_append(&body, "\n", 1) ||
             respond(s, c, status, extra, &body, is_head);
    buf_free(&body);
    return rc ? -1 : status;
}

static int list_notes(struct server *s, struct conn *c, int is_head)
{
    struct buf body = {0};
    int rc = buf_append(&body, "[", 1);
    for (size_t i = 0; i < s->store.count && !rc; i++)
        rc = (i > 0 && buf_append(&body, ",", 1)) || json_write_note(&body, &s->store.notes[i]);
    rc = rc || buf_append(&body, "]\n", 2) || respond(s, c, 200, NULL, &body, is_head);
    buf_free(&body);
    return rc ? -1 : 200;
}

static int create_note(struct server *s, struct conn *c, const struct request *req, const char *body,
                       size_t len)
{
    struct buf text = {0};
    int status = read_text(s, c, req, body, len, &text);
    if (status)
        return status;
    /* An empty text still needs a buffer: a note's text is never NULL. */
    if (!text.data && !(text.data = malloc(1)))
        return -1;
    struct note *n = store_add(&s->store, text.data, text.len);
    if (!n) {
        buf_free(&text);
        return respond_error(s, c, 507, "the note store is full", NULL, 0);
    }
    char location[64];
    snprintf(location, sizeof location, "Location: /notes/%lld\r\n", n->id);
    return respond_note(s, c, 201, n, location, 0);
}

static int replace_note(struct server *s, struct conn *c, const struct request *req, struct note *n,
                        const char *body, size_t len)
{
    struct buf text = {0};
    int status = read_text(s, c, req, body, len, &text);
    if (status)
        return status;
    if (text.len > n->len && text.len - n->len > MAX_STORE_BYTES - s->store.bytes) {
        buf_free(&text);
        return respond_error(s, c, 507, "the note store is full", NULL, 0);
    }
    if (!text.data && !(text.data = malloc(1)))
        return -1;
    s->store.bytes = s->store.bytes - n->len + text.len;
    free(n->text);
    n->text = text.data;
    n->len = text.len;
    return respond_note(s, c, 200, n, NULL, 0);
}

static int is_method(const struct request *req, const char *m)
{
    return req->method_len == strlen(m) && memcmp(req->method, m, req->method_len) == 0;
}

/*
 * Answers one request whose body (len bytes) has fully arrived.
 * Returns the status for the access log, or -1 when out of memory.
 */
static int handle_request(struct server *s, struct conn *c, const struct request *req, const char *body,
                          size_t len)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                        "OPTIONS", "TRACE", "PATCH"};
    int is_head = is_method(req, "HEAD"), is_get = is_head || is_method(req, "GET");
    int known_method = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        known_method |= is_method(req, known[i]);
    if (!known_method) {
        c->keep_alive = 0;
        return respond_error(s, c, 501, "unknown method", NULL, 0);
    }

    long long id = 0;
    enum route r = route_of(req->target, req->target_len, &id);
    if (r == ROUTE_NONE)
        return respond_error(s, c, 404, "no such resource: try /notes", NULL, is_head);
    if (r == ROUTE_NOTES) {
        if (is_get)
            return list_notes(s, c, is_head);
        if (is_method(req, "POST"))
            return create_note(s, c, req, body, len);
        return respond_error(s, c, 405, "/notes takes GET and POST", "Allow: GET, HEAD, POST\r\n", 0);
    }
    /* TODO 3: /notes/ID. Find the note with store_find(&s->store, id).
     *   - a method other than GET, HEAD, PUT, DELETE: 405 with the header
     *     "Allow: GET, HEAD, PUT, DELETE\r\n" (respond_error's `extra`);
     *   - no such note: 404;
     *   - GET/HEAD: 200 and the note (respond_note);
     *   - PUT: replace_note();
     *   - DELETE: store_remove(), then 204 with no body:
     *     respond(s, c, 204, NULL, NULL, 0), and return 204.
     * Each branch returns the status, or -1 when out of memory. */
    (void)store_find;
    (void)store_remove;
    (void)replace_note;
    return respond_error(s, c, 501, "TODO: /notes/ID is not written yet", NULL, is_head);
}

/*** connections (lesson 14's, without files, with request bodies) ***/

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

enum send_result { SENT_ALL, SEND_BLOCKED, CONN_GONE };

static void conn_want(struct server *s, struct conn *c, int want)
{
    if (c->watching != want && ev_watch(&s->ev, c->fd, want, 0) == 0)
        c->watching = want;
}

static void conn_close(struct server *s, struct conn *c)
{
    ev_forget(&s->ev, c->fd);
    close(c->fd);
    s->by_fd[c->fd] = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c->in);
    buf_free(&c->out);
    free(c);
}

/* Lesson 14's lingering close: shut our side, drain leftovers, close. */
static void conn_linger(struct server *s, struct conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->state = C_LINGERING;
    c->linger_until_ms = now_ms() + LINGER_MS;
    c->in_len = 0;
    conn_want(s, c, EV_READ);
}

static enum send_result conn_send(struct server *s, struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_want(s, c, EV_WRITE);
                return SEND_BLOCKED;
            }
            conn_close(s, c);
            return CONN_GONE;
        }
        c->out_off += (size_t)n;
        c->last_progress_ms = now_ms();
    }
    if (c->out.cap > KEEP_OUT_BUF_BYTES)
        buf_free(&c->out); /* a big listing's buffer: not kept for an idle client */
    c->out.len = c->out_off = 0;
    if (!c->keep_alive) {
        conn_linger(s, c);
        return CONN_GONE;
    }
    c->state = C_READING;
    return SENT_ALL;
}

static void log_request(const struct conn *c, const struct request *req, int status)
{
    if (req)
        fprintf(stderr, "%s \"%.*s %.*s HTTP/1.%d\" %d\n", c->peer, (int)req->method_len, req->method,
                (int)(req->target_len > 200 ? 200 : req->target_len), req->target, req->minor, status);
    else
        fprintf(stderr, "%s \"-\" %d\n", c->peer, status);
}

static size_t last_line_start(const char *buf, size_t len)
{
    while (len > 0 && buf[len - 1] != '\n')
        len--;
    return len;
}

/* Makes room for `need` bytes of input in all (head plus body). */
static int conn_reserve_input(struct conn *c, size_t need)
{
    if (need <= c->in_cap)
        return 0;
    char *p = realloc(c->in, need);
    if (!p)
        return -1;
    c->in = p;
    c->in_cap = need;
    return 0;
}

/* A head the parser refused, or a body we will not read: answer, close
 * (we cannot know where the next request would start). */
static int refuse_request(struct server *s, struct conn *c, int status)
{
    const char *message;
    switch (status) {
    case 411: message = "send the body with a Content-Length"; break;
    case 413: message = "the body is larger than 1 MiB"; break;
    case 414: message = "the request line is too long"; break;
    case 431: message = "the request headers are too large"; break;
    case 501: message = "not implemented"; break;
    case 505: message = "HTTP version not supported"; break;
    default:  message = "malformed request"; break;
    }
    c->keep_alive = 0;
    int is_head = is_head_request(c->in, c->in_len);
    c->in_len = 0;
    return respond_error(s, c, status, message, NULL, is_head);
}

/*
 * Answers every complete request in c->in, in order. A request is
 * complete when its head has been parsed and Content-Length more bytes
 * have arrived after it.
 */
static void conn_process(struct server *s, struct conn *c)
{
    while (c->state == C_READING) {
        struct request req;
        size_t used = 0;
        int status = c->in_len ? http_parse_request(c->in, c->in_len, &req, &used) : PARSE_AGAIN;
        if (status == PARSE_AGAIN) {
            if (c->in_len == 0) {
                free(c->in);
                c->in = NULL;
                c->in_cap = 0;
                c->request_start_ms = 0;
            }
            conn_want(s, c, EV_READ);
            return;
        }
        /* Simplification: a chunked request body (RFC 9112 7.1) is refused
         * with 411 Length Required; every client in this lab sends
         * Content-Length. Lesson 13 shows how to decode chunks. */
        if (status == 0 && req.chunked)
            status = 411;
        else if (status == 0 && req.content_length > MAX_BODY)
            status = 413;
        size_t body_len = status == 0 && req.content_length > 0 ? (size_t)req.content_length : 0;
        if (status == 0 && c->in_len < used + body_len) {
            /* The head is here, the body is still arriving. */
            if (conn_reserve_input(c, used + body_len) < 0) {
                conn_close(s, c);
                return;
            }
            c->need = used + body_len;
            /* curl -T and others wait up to a second for this before
             * sending the body (RFC 9110 10.1.1). */
            if (req.expect_continue && req.minor == 1 && !c->continue_sent) { /* never 1xx to 1.0 */
                static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
                c->continue_sent = 1;
                if (send(c->fd, go_on, sizeof go_on - 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
                    errno != EWOULDBLOCK) {
                    conn_close(s, c);
                    return;
                }
            }
            conn_want(s, c, EV_READ);
            return;
        }
        if (status > 0) {
            status = refuse_request(s, c, status);
            if (s->verbose && status > 0)
                log_request(c, NULL, status);
        } else {
            c->keep_alive = req.keep_alive && s->listen_fd >= 0;
            status = handle_request(s, c, &req, c->in + used, body_len);
            if (s->verbose && status > 0)
                log_request(c, &req, status);
            memmove(c->in, c->in + used + body_len, c->in_len - used - body_len);
            c->in_len -= used + body_len;
        }
        if (status < 0) {
            conn_close(s, c);
            return;
        }
        c->line_start = last_line_start(c->in, c->in_len);
        c->request_start_ms = c->in_len ? now_ms() : 0;
        c->continue_sent = 0;
        c->state = C_WRITING;
        if (conn_send(s, c) != SENT_ALL)
            return;
    }
}

/*
 * Parsing from the start of the head again on every recv() is quadratic:
 * a client sending one short header line per packet would make us parse
 * 32 KiB hundreds of times. So we parse only when the head may be
 * complete (the new bytes, with the 3 before them, hold an empty line).
 * Tracks where the last line starts, for the line-length limit.
 */
static int head_may_be_complete(struct conn *c, size_t old_len)
{
    size_t from = old_len > 3 ? old_len - 3 : 0;
    int complete = 0;
    for (size_t i = from; i + 1 < c->in_len && !complete; i++)
        complete = c->in[i] == '\n' && (c->in[i + 1] == '\n' ||
                                        (c->in[i + 1] == '\r' && i + 2 < c->in_len && c->in[i + 2] == '\n'));
    const char *lf = memchr(c->in + old_len, '\n', c->in_len - old_len);
    /* The request line just ended, or the first byte cannot begin one:
     * parse now, so a request that can never be valid is answered at once
     * (400), not when the client gives up or -t runs out. */
    if ((lf && c->line_start == 0) ||
        (old_len == 0 && !is_tchar((unsigned char)c->in[0]) && c->in[0] != '\r' && c->in[0] != '\n'))
        complete = 1;
    if (lf)
        c->line_start = last_line_start(c->in, c->in_len);
    return complete;
}

static void conn_on_readable(struct server *s, struct conn *c)
{
    if (c->state == C_LINGERING) {
        char sink[16384];
        ssize_t n;
        while ((n = recv(c->fd, sink, sizeof sink, 0)) > 0)
            ;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            conn_close(s, c);
        return;
    }
    if (c->state != C_READING)
        return;
    if (c->in_len == c->in_cap && conn_reserve_input(c, c->in_cap ? c->in_cap : MAX_HEAD) < 0) {
        conn_close(s, c);
        return;
    }
    size_t room = c->in_cap - c->in_len;
    if (room == 0) { /* cannot happen: a full buffer is parsed, and answered */
        conn_close(s, c);
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(s, c);
        return;
    }
    long long now = now_ms();
    if (c->in_len == 0)
        c->request_start_ms = now;
    c->last_progress_ms = now;
    size_t old_len = c->in_len;
    c->in_len += (size_t)n;
    /* A body is arriving: go on when all of it is here. A head: parse when
     * it may be complete, or a limit was crossed (then the parser answers
     * 414 or 431); see head_may_be_complete(). */
    if (c->need) {
        if (c->in_len < c->need)
            return;
        c->need = 0;
    } else if (!head_may_be_complete(c, old_len) && c->in_len - c->line_start <= MAX_HEADER_LINE &&
               c->in_len < c->in_cap) {
        return;
    }
    conn_process(s, c);
}

static void conn_on_writable(struct server *s, struct conn *c)
{
    if (c->state == C_WRITING && conn_send(s, c) == SENT_ALL)
        conn_process(s, c);
}
/*** the server ***/

static void conn_open(struct server *s, int fd, const struct sockaddr_storage *ss)
{
    struct conn *c = calloc(1, sizeof *c);
    int one = 1;
    /* Nagle's algorithm would hold back the last small segment of a
     * response until the client ACKs the previous one: with delayed ACKs
     * that is 40 ms per response. We always send whole responses. */
    if (!c || set_nonblocking(fd) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        ev_watch(&s->ev, fd, EV_READ, 1) < 0) {
        free(c);
        close(fd);
        return;
    }
    c->fd = fd;
    c->watching = EV_READ;
    c->state = C_READING;
    c->last_progress_ms = now_ms();
    if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, c->peer, sizeof c->peer);
    else
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, c->peer, sizeof c->peer);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->by_fd[fd] = c;
    s->nconns++;
}

/* Over the cap: a short 503 and a close, so the client knows at once,
 * instead of a connection that hangs in the backlog. */
static void refuse_busy(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 20\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
                               "server is at its cap";
    if (set_nonblocking(fd) == 0 && send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL) > 0)
        shutdown(fd, SHUT_WR);
    close(fd);
}

static void accept_clients(struct server *s)
{
    for (int i = 0; i < 64; i++) { /* then let the others have a turn */
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept(s->listen_fd, (struct sockaddr *)&ss, &len);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: the connection stays queued and the
                 * listener stays "readable", so the loop would spin. Stop
                 * watching it for a moment instead. */
                fprintf(stderr, PROG ": accept: %s (pausing 100 ms)\n", strerror(errno));
                ev_watch(&s->ev, s->listen_fd, 0, 0);
                s->accept_paused_until_ms = now_ms() + 100;
            }
            return;
        }
        if (s->nconns >= s->max_conns || fd >= s->max_fds)
            refuse_busy(fd);
        else
            conn_open(s, fd, &ss);
    }
}

/* When must this connection be closed, whatever else happens? */
static long long conn_deadline(const struct server *s, const struct conn *c)
{
    switch (c->state) {
    case C_LINGERING:
        return c->linger_until_ms;
    case C_READING:
        if (c->request_start_ms) /* a head is arriving: it must finish in time (slowloris) */
            return c->request_start_ms + s->timeout_ms;
        return c->last_progress_ms + s->timeout_ms; /* idle keep-alive */
    case C_WRITING:
    default:
        return c->last_progress_ms + s->timeout_ms; /* a client that stopped reading */
    }
}

/* Every TIMER_TICK_MS: close every connection past its deadline. A walk
 * over the list costs microseconds even for 10,000 connections. */
static void expire_connections(struct server *s)
{
    long long now = now_ms();
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (now >= conn_deadline(s, c)) {
            if (c->state == C_WRITING) { /* nginx: reset_timedout_connection */
                struct linger lg = {1, 0};
                setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            conn_close(s, c);
        }
    }
    if (s->accept_paused_until_ms && now >= s->accept_paused_until_ms && s->listen_fd >= 0) {
        s->accept_paused_until_ms = 0;
        ev_watch(&s->ev, s->listen_fd, EV_READ, 0);
    }
}

/* SIGTERM: no new connections; idle ones close now; the others finish
 * the response in flight and then close (keep_alive is off from here). */
static void start_drain(struct server *s)
{
    ev_forget(&s->ev, s->listen_fd);
    close(s->listen_fd);
    s->listen_fd = -1;
    s->drain_deadline_ms = now_ms() + DRAIN_GRACE_S * 1000;
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        c->keep_alive = 0;
        if (c->state == C_READING && c->in_len == 0)
            conn_close(s, c); /* idle: nothing in flight */
    }
}

/* Returns 0 after a clean stop, -1 if waiting for events failed. */
static int run_loop(struct server *s)
{
    struct ready ready[MAX_EVENTS];
    long long last_scan = now_ms();
    for (;;) {
        if (stop_requested && s->listen_fd >= 0)
            start_drain(s);
        if (s->listen_fd < 0 && (s->nconns == 0 || now_ms() >= s->drain_deadline_ms))
            break;
        int n = ev_wait(&s->ev, ready, MAX_EVENTS, TIMER_TICK_MS);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, PROG ": wait: %s\n", strerror(errno));
            while (s->conns)
                conn_close(s, s->conns);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            if (ready[i].fd == s->listen_fd) {
                accept_clients(s);
                continue;
            }
            /* A connection closed earlier in this batch is gone: NULL. */
            struct conn *c = s->by_fd[ready[i].fd];
            if (c && (ready[i].writable || ready[i].error) && c->state == C_WRITING)
                conn_on_writable(s, c);
            c = s->by_fd[ready[i].fd];
            if (c && (ready[i].readable || ready[i].error))
                conn_on_readable(s, c);
        }
        if (now_ms() - last_scan >= TIMER_TICK_MS) {
            expire_connections(s);
            last_scan = now_ms();
        }
    }
    while (s->conns)
        conn_close(s, s->conns);
    return 0;
}

/*** setting up ***/

static int open_listener(const char *addr, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(addr, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s: %s\n", addr, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    const char *failed = "socket";
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0 ||
            set_nonblocking(fd) < 0) {
            failed = "bind";
            int e = errno;
            close(fd);
            errno = e;
            fd = -1;
        }
    }
    int saved = errno;
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, PROG ": %s: %s\n", failed, strerror(saved));
    return fd;
}

static int print_listening(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
    }
    printf("listening on %s:%u\n", ip, port);
    return fflush(stdout) == EOF ? -1 : 0;
}

/* As many descriptors as the hard limit allows: each connection is one. */
static int raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1 << 20) ? (1 << 20) : rl.rlim_max;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > (1 << 20) ? (1 << 20) : (int)rl.rlim_cur;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: %s [-p PORT] [-b ADDR] [-t SECONDS] [-c MAXCONN] [-v]\n"
                "  -p PORT     port to listen on (8080; 0: any free port)\n"
                "  -b ADDR     address to listen on (127.0.0.1)\n"
                "  -t SECONDS  header, idle and send timeout (%d)\n"
                "  -c MAXCONN  connections at once; more get 503 (%d)\n"
                "  -v          log each request to stderr\n",
            PROG, DEFAULT_TIMEOUT_S, DEFAULT_MAX_CONNS);
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *port = "8080", *addr = "127.0.0.1";
    long timeout_s = DEFAULT_TIMEOUT_S, max_conns = DEFAULT_MAX_CONNS, num;
    int verbose = 0, opt;
    while ((opt = getopt(argc, argv, "p:b:t:c:vh")) != -1) {
        switch (opt) {
        case 'p':
            if (parse_int(optarg, 0, 65535, &num) < 0) {
                fprintf(stderr, "usage: %s: -p needs a port number 0-65535, not '%s'\n", PROG, optarg);
                return 2;
            }
            port = optarg;
            break;
        case 'b': addr = optarg; break;
        case 't':
            if (parse_int(optarg, 1, 86400, &timeout_s) < 0) {
                fprintf(stderr, "usage: %s: -t needs seconds, 1-86400\n", PROG);
                return 2;
            }
            break;
        case 'c':
            if (parse_int(optarg, 1, 1 << 20, &max_conns) < 0) {
                fprintf(stderr, "usage: %s: -c needs a count, 1-1048576\n", PROG);
                return 2;
            }
            break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    struct server s = {.timeout_ms = (int)timeout_s * 1000, .verbose = verbose};
    s.store.next_id = 1;
    s.max_fds = raise_fd_limit();
    s.max_conns = (int)(max_conns < s.max_fds - FD_RESERVE ? max_conns : s.max_fds - FD_RESERVE);
    s.by_fd = calloc((size_t)s.max_fds, sizeof *s.by_fd);
    if (!s.by_fd || ev_open(&s.ev, s.max_fds) < 0) {
        fprintf(stderr, PROG ": setup: %s\n", strerror(errno));
        return 1;
    }

    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: the wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.listen_fd = open_listener(addr, port);
    if (s.listen_fd < 0 || ev_watch(&s.ev, s.listen_fd, EV_READ, 1) < 0 || print_listening(s.listen_fd) < 0)
        return 1;

    int status = run_loop(&s) < 0 ? 1 : 0;

    if (s.listen_fd >= 0)
        close(s.listen_fd);
    store_free(&s.store);
    ev_close(&s.ev);
    free(s.by_fd);
    return status;
}
