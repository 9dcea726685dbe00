/*
 * http_server - lesson 14, the capstone: a single-threaded event-loop
 * HTTP/1.1 file server.
 *
 *     http_server [-p PORT] [-b ADDR] [-d DIR] [-t SECONDS] [-c MAXCONN] [-S] [-v]
 *
 * One thread serves every connection. The loop asks the kernel which
 * sockets are ready (poll, or epoll on Linux), does what each one allows
 * without ever blocking, and goes back to waiting. It serves what lesson 12
 * serves (files with MIME types, index.html, escaped listings, 301/403/
 * 404, HEAD, If-Modified-Since) and adds what a production server needs:
 *
 *   keep-alive      HTTP/1.1 by default, HTTP/1.0 with Connection: keep-alive
 *   pipelining      requests already buffered are answered in order
 *   sendfile        the kernel copies file to socket (Linux); pread+send elsewhere
 *   limits          request line 8 KiB (414), header line 8 KiB and all
 *                   headers 32 KiB (431), any request body (413)
 *   timeouts (-t)   a request head must arrive within SECONDS of its first
 *                   byte (slowloris), an idle keep-alive connection and a
 *                   client that stops reading are closed after SECONDS
 *   a cap (-c)      beyond MAXCONN connections, new ones get 503 at once
 *   drain           SIGTERM/SIGINT: stop accepting, finish responses in
 *                   flight, close idle connections, exit 0
 *   -v              one access-log line per request on stderr
 *
 * Linux-only parts (epoll, sendfile) sit behind #ifdef USE_EPOLL, set on
 * Linux, with portable fallbacks (poll, pread+send): build with -DUSE_POLL
 * to run the portable version, the one macOS gets, on Linux too.
 *
 * The request parser, http_parse_request(), touches no socket and no
 * global: the fuzzer (make fuzz) calls it directly on random bytes.
 *
 * YOUR JOB: the parser, the paths, the responses and the event backend
 * are done (you wrote their like in lessons 08, 11 and 12). The TODOs are
 * what makes a server production-grade: sending without blocking
 * (TODO 1, 2), pipelining (TODO 3), deadlines (TODO 4), a connection cap
 * (TODO 5) and a graceful drain (TODO 6). Grade with
 *     make check LESSON=14
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
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
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && !defined(USE_POLL)
#define USE_EPOLL 1
#include <sys/epoll.h>
#endif
#ifdef USE_EPOLL /* Linux, and not -DUSE_POLL */
#include <sys/sendfile.h>
#endif

#define PROG "http_server"

/*** limits (DESIGN.md, "HTTP rules every server lesson follows") ***/

#define MAX_REQUEST_LINE   8192         /* longer: 414 */
#define MAX_HEADER_LINE    8192         /* one header line longer: 431 */
#define MAX_HEADERS        (32 * 1024)  /* all header lines together: 431 */
#define IN_BUF_SIZE        (2 * MAX_REQUEST_LINE + MAX_HEADERS + 1024) /* + leading empty lines */
#define MAX_PATH_BYTES     4096         /* a decoded path longer: 414 */
#define SMALL_FILE_BYTES         (64 * 1024)  /* read into the response, one write */
#define DEFAULT_TIMEOUT_S  15           /* -t: header, idle and send timeouts */
#define LINGER_MS          2000         /* reading leftovers before a close */
#define DEFAULT_MAX_CONNS  20000        /* -c, clamped to the fd limit */
#define FD_RESERVE         16           /* fds kept for files and the listener */
#define MAX_EVENTS         512          /* readiness reports per wait */
#define DRAIN_GRACE_S      10           /* SIGTERM: longest wait for responses */
#define TIMER_TICK_MS      250          /* how often deadlines are checked */

/*** types ***/

/* A growable byte buffer: responses are built here, then sent. */
struct buf {
    char *data;
    size_t len, cap;
};

/* What http_parse_request() found. Pointers point into the caller's
 * buffer and stay valid while it is not moved. */
struct request {
    const char *method, *target, *ims; /* ims: If-Modified-Since value or NULL */
    size_t method_len, target_len, ims_len;
    int minor;                          /* HTTP/1.minor */
    int keep_alive;                     /* what the client asked for */
    long long content_length;           /* -1: none */
    int chunked;                        /* Transfer-Encoding: chunked */
};

enum conn_state {
    C_READING,   /* waiting for (the rest of) a request head */
    C_WRITING,   /* sending a response: header/buffer, then maybe a file */
    C_LINGERING, /* response sent, write side shut: draining input, then close */
};

struct conn {
    int fd;
    enum conn_state state;
    char *in;                    /* IN_BUF_SIZE bytes, allocated on first use */
    size_t in_len;
    struct buf out;              /* response head (and small bodies) */
    size_t out_off;              /* bytes of out already sent */
    int file_fd;                 /* a large body still to send, or -1 */
    off_t file_off, file_end;
    int keep_alive;              /* after this response: keep the connection */
    long long request_start_ms;  /* first byte of the current request head */
    long long last_progress_ms;  /* last byte in or out */
    long long linger_until_ms;
    size_t line_start;           /* in[] offset after its last line end */
    int watching;                /* EV_READ/EV_WRITE as the backend knows it */
    char peer[INET6_ADDRSTRLEN];
    struct conn *prev, *next;    /* every open connection, for the timer scan */
};

struct events {
#ifdef USE_EPOLL
    int epfd;
#else
    struct pollfd *pfds;         /* one slot per watched fd */
    int *slot_of;                /* fd -> index in pfds, -1 if not watched */
    int n, max_fds;
    int first;                   /* where ev_wait's next scan starts */
#endif
};

struct ready {
    int fd;
    int readable, writable, error;
};

struct server {
    int listen_fd;
    int root_fd;                 /* DIR, opened once: paths resolve beneath it */
    int timeout_ms;
    int max_conns, nconns;
    int verbose;
    int no_symlinks;             /* -S: refuse every symlink (403) */
    struct conn **by_fd;         /* fd -> connection */
    int max_fds;
    struct conn *conns;          /* list of every connection */
    long long drain_deadline_ms; /* 0 until SIGTERM */
    struct events ev;
    time_t date_second;          /* the Date header, remade once a second */
    char date[40];
    long long accept_paused_until_ms;
};

/* The only global: set by the signal handler, read by the loop. */
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

/* Makes room for n more bytes without changing the contents. */
static int buf_reserve(struct buf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return 0;
    char *p = realloc(b->data, b->len + n);
    if (!p)
        return -1;
    b->data = p;
    b->cap = b->len + n;
    return 0;
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

/*** the request parser (pure: no I/O, no globals; the fuzz target) ***/

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
    } else if (ci_equal(name, name_len, "if-modified-since")) {
        req->ims = value;
        req->ims_len = vlen;
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

/*** paths: from the request target to a name beneath DIR ***/

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Turns the target's path into a relative name for openat(root, ...):
 * percent-decoded exactly once, then normalised ("." and empty segments
 * dropped, ".." removes the previous segment). Refused with 400 before
 * the file system is touched: a malformed escape, a decoded NUL, a
 * backslash, and a ".." that would climb above the root. *dir_form is set
 * when the path ends in "/" (a directory was asked for as one).
 * Returns 0 or the HTTP status.
 */
static int resolve_path(const char *target, size_t len, char *out, size_t outsz, int *dir_form)
{
    char decoded[MAX_PATH_BYTES];
    size_t dn = 0;
    for (size_t i = 0; i < len && target[i] != '?' && target[i] != '#'; i++) {
        char c = target[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_value(target[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(target[i + 2]) : -1;
            if (lo < 0)
                return 400;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        /* A NUL would end the C string early: "..%00x" would become "..".
         * The parser already refuses a raw one; this function must not
         * depend on that (the fuzzer found it did). */
        if (c == '\0' || c == '\\')
            return 400;
        if (dn + 1 >= sizeof decoded)
            return 414;
        decoded[dn++] = c;
    }
    *dir_form = dn > 0 && decoded[dn - 1] == '/';

    /* Normalise segment by segment into out. */
    size_t on = 0;
    size_t i = 0;
    while (i < dn) {
        while (i < dn && decoded[i] == '/')
            i++;
        size_t start = i;
        while (i < dn && decoded[i] != '/')
            i++;
        size_t seg = i - start;
        if (seg == 0 || (seg == 1 && decoded[start] == '.'))
            continue;
        if (seg == 2 && decoded[start] == '.' && decoded[start + 1] == '.') {
            if (on == 0)
                return 400; /* above the root */
            while (on > 0 && out[on - 1] != '/')
                on--;
            if (on > 0)
                on--; /* the slash before the removed segment */
            continue;
        }
        if (on + seg + 2 > outsz)
            return 414;
        if (on > 0)
            out[on++] = '/';
        memcpy(out + on, decoded + start, seg);
        on += seg;
    }
    if (on == 0)
        out[on++] = '.';
    out[on] = '\0';
    return 0;
}

static const char *mime_type(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {"html", "text/html"}, {"htm", "text/html"}, {"css", "text/css"},
        {"js", "text/javascript"}, {"mjs", "text/javascript"}, {"json", "application/json"},
        {"txt", "text/plain"}, {"md", "text/plain"}, {"c", "text/plain"}, {"xml", "application/xml"},
        {"png", "image/png"}, {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"},
        {"gif", "image/gif"}, {"svg", "image/svg+xml"}, {"ico", "image/x-icon"},
        {"webp", "image/webp"}, {"pdf", "application/pdf"}, {"wasm", "application/wasm"},
        {"mp4", "video/mp4"}, {"woff2", "font/woff2"},
    };
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash + 1 : name, '.');
    if (dot) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (ci_equal(dot + 1, strlen(dot + 1), types[i].ext))
                return types[i].type;
    }
    return "application/octet-stream";
}

/*** dates (RFC 9110 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT") ***/

static void format_http_date(time_t t, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    /* We never call setlocale(), so %a and %b are the English names. */
    strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm): timegm()
 * is not POSIX, and mktime() would apply the local time zone. */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int two_digits(const char *s)
{
    return isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) ? (s[0] - '0') * 10 + s[1] - '0' : -1;
}

/* Parses an IMF-fixdate; returns -1 if it is not one (then the header is
 * ignored, as RFC 9110 13.1.3 says). */
static long long parse_http_date(const char *s, size_t n)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -1;
    const char *m = NULL;
    for (int i = 0; i < 12 && !m; i++)
        if (memcmp(s + 8, months + 3 * i, 3) == 0)
            m = months + 3 * i;
    int day = two_digits(s + 5), hi = two_digits(s + 12), lo = two_digits(s + 14);
    int hh = two_digits(s + 17), mm = two_digits(s + 20), ss = two_digits(s + 23);
    if (!m || day < 1 || day > 31 || hi < 0 || lo < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60)
        return -1;
    long long days = days_from_civil(hi * 100 + lo, (int)((m - months) / 3) + 1, day);
    return days * 86400 + hh * 3600 + mm * 60 + ss;
}

/*** building responses ***/

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default:  return "Unknown";
    }
}

/* The Date header changes once a second: format it once a second. */
static const char *current_date(struct server *s)
{
    time_t t = time(NULL);
    if (t != s->date_second) {
        s->date_second = t;
        format_http_date(t, s->date, sizeof s->date);
    }
    return s->date;
}

/* Status line and the headers every response has. The caller adds its
 * own headers, then the blank line. */
static int response_head(struct server *s, struct conn *c, int status, const char *type,
                         long long length)
{
    int rc = buf_printf(&c->out, "HTTP/1.1 %d %s\r\nServer: sockets-lab\r\nDate: %s\r\n", status,
                        reason_phrase(status), current_date(s));
    if (!rc && type)
        rc = buf_printf(&c->out, "Content-Type: %s\r\n", type);
    if (!rc && length >= 0)
        rc = buf_printf(&c->out, "Content-Length: %lld\r\n", length);
    if (!rc)
        rc = buf_printf(&c->out, "Connection: %s\r\n", c->keep_alive ? "keep-alive" : "close");
    return rc;
}

/* A short HTML error page. Errors about the request itself (4xx from
 * the parser) also close the connection: after a bad head we cannot
 * know where the next request would start. */
static int respond_error(struct server *s, struct conn *c, int status, int is_head, const char *extra)
{
    char body[160];
    int n = snprintf(body, sizeof body, "<!DOCTYPE html>\n<title>%d %s</title>\n<h1>%d %s</h1>\n",
                     status, reason_phrase(status), status, reason_phrase(status));
    if (response_head(s, c, status, "text/html", n) || (extra && buf_append(&c->out, extra, strlen(extra))) ||
        buf_append(&c->out, "\r\n", 2) || (!is_head && buf_append(&c->out, body, (size_t)n)))
        return -1;
    return 0;
}

/* Appends text with the five HTML-special characters escaped: a file
 * named <script>.txt must show up as text, not run. */
static int append_html_escaped(struct buf *b, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        switch (*s) {
        case '&': rc = buf_append(b, "&amp;", 5); break;
        case '<': rc = buf_append(b, "&lt;", 4); break;
        case '>': rc = buf_append(b, "&gt;", 4); break;
        case '"': rc = buf_append(b, "&quot;", 6); break;
        case '\'': rc = buf_append(b, "&#39;", 5); break;
        default: rc = buf_append(b, s, 1);
        }
    }
    return rc;
}

/* Appends s percent-encoded for a URL path: unreserved characters (and
 * the characters in keep) as they are, every other byte as %XX. */
static int append_encoded(struct buf *b, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("-._~", c) || strchr(keep, c)) {
            rc = buf_append(b, s, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = buf_append(b, esc, 3);
        }
    }
    return rc;
}

/* One name in a link: a "/" in it is data, not a separator. */
static int append_url_encoded(struct buf *b, const char *s)
{
    return append_encoded(b, s, "");
}

/* A path below DIR: its "/" separate segments. */
static int append_path_encoded(struct buf *b, const char *s)
{
    return append_encoded(b, s, "/");
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a directory's entry names, sorted. Returns the count or -1. */
static int read_dir_names(int dir_fd, char ***names_out)
{
    int fd = dup(dir_fd); /* closedir() will close the fd it is given */
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **p = realloc(names, (size_t)cap * sizeof *p);
            if (!p)
                break;
            names = p;
        }
        if (!(names[n] = strdup(e->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, (size_t)n, sizeof *names, compare_names);
    *names_out = names;
    return n;
}

/* An HTML page listing the directory (shown_path: its name below DIR,
 * "" for DIR itself), every name escaped twice over: percent-encoded in
 * the link, HTML-escaped in the text. */
static int build_listing(int dir_fd, const char *shown_path, struct buf *page)
{
    char **names;
    int n = read_dir_names(dir_fd, &names);
    if (n < 0)
        return -1;
    int rc = buf_printf(page, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of /") ||
             append_html_escaped(page, shown_path) ||
             buf_printf(page, "%s</title></head>\n<body><h1>Index of /", *shown_path ? "/" : "") ||
             append_html_escaped(page, shown_path) ||
             buf_printf(page, "%s</h1>\n<ul>\n", *shown_path ? "/" : "");
    for (int i = 0; i < n; i++) {
        struct stat st;
        int is_dir = fstatat(dir_fd, names[i], &st, 0) == 0 && S_ISDIR(st.st_mode);
        if (!rc)
            rc = buf_printf(page, "<li><a href=\"") || append_url_encoded(page, names[i]) ||
                 buf_printf(page, "%s\">", is_dir ? "/" : "") || append_html_escaped(page, names[i]) ||
                 buf_printf(page, "%s</a></li>\n", is_dir ? "/" : "");
        free(names[i]);
    }
    free(names);
    return rc || buf_printf(page, "</ul>\n</body></html>\n");
}

/* Reads a small file whole into the response, so head and body leave in
 * one send(). Returns 0, or -1 if the file could not be read. */
static int append_file(struct buf *b, int fd, off_t size)
{
    size_t want = (size_t)size, got = 0;
    if (buf_reserve(b, want))
        return -1;
    while (got < want) {
        ssize_t n = pread(fd, b->data + b->len + got, want - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1; /* an error, or the file shrank under us */
        got += (size_t)n;
    }
    b->len += want;
    return 0;
}

/* Answers a directory: 301 to add the slash, or a listing; or, when it
 * holds an index.html, returns 0 with *index_fd open on it for the caller
 * to serve as a file. rel: the normalised name from resolve_path().
 * Takes ownership of dir_fd. */
static int serve_directory(struct server *s, struct conn *c, const char *rel, int dir_fd,
                           int dir_form, int is_head, long long *body, int *index_fd)
{
    const char *shown = strcmp(rel, ".") == 0 ? "" : rel;
    if (!dir_form && *shown) { /* "/." and "/sub/.." are DIR itself: no "Location: //" */
        /* "/docs" -> "/docs/": relative links in the page need the slash.
         * Built from the normalised name, never echoed from the request:
         * "//evil.example/../docs" must not become "Location: //evil...",
         * which a browser reads as another host (an open redirect). */
        struct buf location = {0};
        int rc = buf_append(&location, "Location: /", 11) || append_path_encoded(&location, shown) ||
                 buf_append(&location, "/\r\n", 4) || buf_append(&location, "", 1);
        close(dir_fd);
        rc = rc || respond_error(s, c, 301, is_head, location.data);
        buf_free(&location);
        return rc ? -1 : 301;
    }
    *index_fd = openat(dir_fd, "index.html", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (*index_fd >= 0 && fstat(*index_fd, &st) == 0 && S_ISREG(st.st_mode)) {
        close(dir_fd);
        return 0;
    }
    if (*index_fd >= 0)
        close(*index_fd);
    *index_fd = -1;

    struct buf page = {0};
    int rc = build_listing(dir_fd, shown, &page);
    close(dir_fd);
    if (rc) {
        buf_free(&page);
        return respond_error(s, c, 500, is_head, NULL) ? -1 : 500;
    }
    *body = (long long)page.len;
    rc = response_head(s, c, 200, "text/html; charset=utf-8", (long long)page.len) ||
         buf_append(&c->out, "\r\n", 2) || (!is_head && buf_append(&c->out, page.data, page.len));
    buf_free(&page);
    return rc ? -1 : 200;
}

/* Answers a regular file: 304, or 200 with the body inline (small) or
 * queued for sendfile (large). Takes ownership of fd. */
static int serve_file(struct server *s, struct conn *c, const struct request *req, int fd,
                      const struct stat *st, const char *name, int is_head, long long *body)
{
    char modified[40];
    format_http_date(st->st_mtime, modified, sizeof modified);
    long long since = req->ims ? parse_http_date(req->ims, req->ims_len) : -1;
    if (since >= 0 && (long long)st->st_mtime <= since) {
        close(fd);
        int rc = buf_printf(&c->out, "HTTP/1.1 304 Not Modified\r\nServer: sockets-lab\r\nDate: %s\r\n"
                                     "Last-Modified: %s\r\nConnection: %s\r\n\r\n",
                            current_date(s), modified, c->keep_alive ? "keep-alive" : "close");
        return rc ? -1 : 304;
    }
    if (response_head(s, c, 200, mime_type(name), (long long)st->st_size) ||
        buf_printf(&c->out, "Last-Modified: %s\r\n\r\n", modified)) {
        close(fd);
        return -1;
    }
    if (is_head || st->st_size == 0) {
        close(fd);
    } else if (st->st_size <= SMALL_FILE_BYTES) {
        int rc = append_file(&c->out, fd, st->st_size);
        close(fd);
        if (rc)
            return -1;
        *body = (long long)st->st_size;
    } else {
        c->file_fd = fd;
        c->file_off = 0;
        c->file_end = st->st_size;
        *body = (long long)st->st_size;
    }
    return 200;
}

/* -S: opens rel (from resolve_path) beneath root_fd one component at a
 * time with O_NOFOLLOW, so that no symlink is followed anywhere on the
 * way (nginx: disable_symlinks on). Returns the fd, or -1 with errno
 * (ELOOP: a symlink was in the way). */
static int open_no_symlinks(int root_fd, const char *rel)
{
    char part[MAX_PATH_BYTES];
    int dir = root_fd;
    for (;;) {
        const char *slash = strchr(rel, '/');
        size_t n = slash ? (size_t)(slash - rel) : strlen(rel);
        memcpy(part, rel, n);
        part[n] = '\0';
        int fd = openat(dir, part, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | (slash ? O_DIRECTORY : 0));
        int e = errno;
        struct stat st; /* with O_DIRECTORY, Linux says ENOTDIR for a symlink */
        if (fd < 0 && e == ENOTDIR && fstatat(dir, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            e = ELOOP;
        if (dir != root_fd)
            close(dir);
        errno = e;
        if (fd < 0 || !slash)
            return fd;
        dir = fd;
        rel = slash + 1;
    }
}

static int is_known_method(const char *m, size_t n)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                        "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == n && memcmp(m, known[i], n) == 0)
            return 1;
    return 0;
}

/*
 * Answers one parsed request into c->out (and c->file_fd for a large
 * body). Returns the status for the access log, or -1 when out of memory
 * (then the connection is closed). *body: the body bytes sent.
 */
static int handle_request(struct server *s, struct conn *c, const struct request *req, long long *body)
{
    int is_get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
    int is_head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    c->keep_alive = req->keep_alive && s->listen_fd >= 0; /* no listener: draining */
    *body = 0;

    /* This server takes no request bodies. Not reading one means not
     * knowing where the next request starts: answer, then close. */
    if (req->content_length > 0 || req->chunked) {
        c->keep_alive = 0;
        return respond_error(s, c, 413, is_head, NULL) ? -1 : 413;
    }
    if (!is_get && !is_head) {
        if (!is_known_method(req->method, req->method_len)) {
            c->keep_alive = 0;
            return respond_error(s, c, 501, 0, NULL) ? -1 : 501;
        }
        return respond_error(s, c, 405, 0, "Allow: GET, HEAD\r\n") ? -1 : 405;
    }

    char rel[MAX_PATH_BYTES];
    int dir_form;
    int status = resolve_path(req->target, req->target_len, rel, sizeof rel, &dir_form);
    if (status)
        return respond_error(s, c, status, is_head, NULL) ? -1 : status;

    /* O_NONBLOCK: opening a FIFO someone planted in DIR must not block the
     * whole server; it has no effect on regular files.
     * Like nginx's default (disable_symlinks off), a symlink inside DIR is
     * followed, even one that points out of DIR: DIR's owner put it there.
     * No request can climb out by itself (resolve_path refused every ".."
     * above the root). With -S no symlink is followed (403), at one system
     * call per path component (open_no_symlinks). */
    int fd = s->no_symlinks ? open_no_symlinks(s->root_fd, rel)
                            : openat(s->root_fd, rel, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        status = s->no_symlinks && e == ELOOP                                   ? 403
                 : (e == ENOENT || e == ENOTDIR || e == ELOOP || e == ENAMETOOLONG) ? 404
                 : (e == EACCES || e == EPERM)                                  ? 403
                 : (e == EMFILE || e == ENFILE)                                 ? 503
                                                                                : 500;
        return respond_error(s, c, status, is_head, NULL) ? -1 : status;
    }
    if (dir_form && !S_ISDIR(st.st_mode)) { /* "/hello.txt/": a file is not a directory */
        close(fd);
        return respond_error(s, c, 404, is_head, NULL) ? -1 : 404;
    }
    const char *name = rel;
    if (S_ISDIR(st.st_mode)) {
        status = serve_directory(s, c, rel, fd, dir_form, is_head, body, &fd);
        if (status != 0)
            return status;
        if (fstat(fd, &st) < 0) { /* fd: its index.html */
            close(fd);
            return respond_error(s, c, 500, is_head, NULL) ? -1 : 500;
        }
        name = "index.html";
    }
    if (!S_ISREG(st.st_mode)) { /* a FIFO, socket or device: never */
        close(fd);
        return respond_error(s, c, 403, is_head, NULL) ? -1 : 403;
    }
    return serve_file(s, c, req, fd, &st, name, is_head, body);
}

/*** connections ***/

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SIGPIPE is ignored process-wide anyway */
#endif
#ifndef MSG_MORE
#define MSG_MORE 0 /* elsewhere: no such hint; TCP_NODELAY already set */
#endif

enum send_result { SENT_ALL, SEND_BLOCKED, CONN_GONE };

/* Tells the event backend what we wait for, only when it changes: one
 * system call saved per request on a busy keep-alive connection. */
static void conn_want(struct server *s, struct conn *c, int want)
{
    if (c->watching != want && ev_watch(&s->ev, c->fd, want, 0) == 0)
        c->watching = want;
}

static void conn_close(struct server *s, struct conn *c)
{
    ev_forget(&s->ev, c->fd);
    close(c->fd);
    if (c->file_fd >= 0)
        close(c->file_fd);
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

/*
 * Closing right after an error response is a trap: if the client's
 * request (or the rest of an oversized one) is still unread in our
 * receive buffer, close() sends RST, and the client's kernel may throw
 * away our response before the client reads it. So: shut down our
 * sending side (the client sees EOF after the response), read and discard
 * what still arrives for a moment, then close. nginx calls this
 * "lingering close".
 */
static void conn_linger(struct server *s, struct conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->state = C_LINGERING;
    c->linger_until_ms = now_ms() + LINGER_MS;
    c->in_len = 0;
    conn_want(s, c, EV_READ);
}

/* One piece of a large body: sendfile() where the kernel has it (no copy
 * through our memory), pread() + send() elsewhere. */
static ssize_t send_file_chunk(struct conn *c)
{
    /* TODO 2: send the next piece of the file c->file_fd, from c->file_off
     * up to c->file_end, and advance c->file_off by what was sent. Under
     * #ifdef USE_EPOLL (Linux), sendfile(2) does it without copying through
     * our memory (it advances the offset for you); #else pread(2) a chunk,
     * then send(2) it: the portable path, which -DUSE_POLL builds on Linux
     * too. Return what send/sendfile returned (0: the file shrank). */
    (void)c;
    errno = ENOSYS;
    return -1;
}

/* Sends as much of the response as the socket takes now. */
static enum send_result conn_send(struct server *s, struct conn *c)
{
    /* TODO 1: send the response without ever blocking:
     *   - first c->out.data from c->out_off to c->out.len (send(2) with
     *     MSG_NOSIGNAL, and MSG_MORE while a file follows), advancing
     *     c->out_off; then the file, with send_file_chunk();
     *   - after any progress, c->last_progress_ms = now_ms();
     *   - EINTR: try again. EAGAIN/EWOULDBLOCK: the socket buffer is full:
     *     conn_want(s, c, EV_WRITE) and return SEND_BLOCKED (the loop calls
     *     us again when it drains). Any other error: conn_close(), CONN_GONE;
     *   - all sent: close c->file_fd (set it to -1), empty c->out (free it
     *     if it grew past 4 * SMALL_FILE_BYTES), then either conn_linger()
     *     and return CONN_GONE (no keep-alive), or c->state = C_READING and
     *     return SENT_ALL.
     * Read send(2), and sendfile(2) for the "file" half. */
    (void)send_file_chunk;
    (void)conn_linger;
    conn_close(s, c);
    return CONN_GONE;
}

/* One access-log line: who, what, how it ended, how many body bytes. */
static void log_request(const struct conn *c, const struct request *req, int status, long long body)
{
    if (req)
        fprintf(stderr, "%s \"%.*s %.*s HTTP/1.%d\" %d %lld\n", c->peer, (int)req->method_len,
                req->method, (int)(req->target_len > 200 ? 200 : req->target_len), req->target,
                req->minor, status, body);
    else
        fprintf(stderr, "%s \"-\" %d 0\n", c->peer, status);
}

static size_t last_line_start(const char *buf, size_t len)
{
    while (len > 0 && buf[len - 1] != '\n')
        len--;
    return len;
}

/*
 * Answers every complete request in c->in, in order (pipelining), for as
 * long as each response leaves at once. Stops when a response has to wait
 * for the socket, more bytes are needed, or the connection ends.
 */
static void conn_process(struct server *s, struct conn *c)
{
    while (c->state == C_READING) {
        struct request req;
        size_t used = 0;
        int status = c->in_len ? http_parse_request(c->in, c->in_len, &req, &used) : PARSE_AGAIN;
        if (status == PARSE_AGAIN) {
            if (c->in_len == 0) { /* idle between requests: hold no buffer */
                free(c->in);
                c->in = NULL;
                c->request_start_ms = 0;
            }
            conn_want(s, c, EV_READ);
            return;
        }
        long long body = 0;
        if (status > 0) {
            /* A bad head: we cannot know where the next request starts. */
            c->keep_alive = 0;
            if (respond_error(s, c, status, is_head_request(c->in, c->in_len), NULL)) {
                conn_close(s, c);
                return;
            }
            if (s->verbose)
                log_request(c, NULL, status, 0);
            c->in_len = 0;
        } else {
            status = handle_request(s, c, &req, &body);
            if (status < 0) {
                conn_close(s, c);
                return;
            }
            if (s->verbose)
                log_request(c, &req, status, body);
            /* TODO 3: pipelining. The request just answered is the first
             * `used` bytes of c->in; the bytes after it may already hold
             * the next request(s). Drop the answered bytes and keep the
             * rest at the start of c->in (memmove(3)), so the loop answers
             * them next, in order. */
            (void)used;
            c->in_len = 0;
        }
        c->line_start = last_line_start(c->in, c->in_len);
        c->request_start_ms = c->in_len ? now_ms() : 0;
        c->state = C_WRITING;
        if (conn_send(s, c) != SENT_ALL)
            return;
    }
}

/*
 * Parsing from the start of the head again on every recv() is quadratic:
 * a client sending one short header line per packet would make us parse
 * 32 KiB hundreds of times. So we parse only when the head may be
 * complete (the new bytes, with the 3 before them, hold an empty line),
 * when the line still open grew past its limit, or when the buffer is full
 * (then the parser answers 414 or 431). Tracks where the last line starts.
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
    if (!c->in && !(c->in = malloc(IN_BUF_SIZE))) {
        conn_close(s, c);
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, IN_BUF_SIZE - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) { /* EOF or reset: a half-received request goes unanswered */
        conn_close(s, c);
        return;
    }
    long long now = now_ms();
    if (c->in_len == 0)
        c->request_start_ms = now;
    c->last_progress_ms = now;
    size_t old_len = c->in_len;
    c->in_len += (size_t)n;
    if (head_may_be_complete(c, old_len) || c->in_len - c->line_start > MAX_HEADER_LINE ||
        c->in_len == IN_BUF_SIZE)
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
    c->file_fd = -1;
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
        /* TODO 5: the cap. With s->max_conns connections open already (or an
         * fd beyond our table, s->max_fds), do not take this one on:
         * refuse_busy() answers it 503 and closes it. */
        (void)refuse_busy;
        if (fd >= s->max_fds) {
            close(fd);
            continue;
        }
        conn_open(s, fd, &ss);
    }
}

/* When must this connection be closed, whatever else happens? */
static long long conn_deadline(const struct server *s, const struct conn *c)
{
    /* TODO 4: when must this connection be closed? All in ms (now_ms()):
     *   lingering:  c->linger_until_ms
     *   reading a request head (c->request_start_ms != 0): its start plus
     *               s->timeout_ms. Counting from the head's FIRST byte, not
     *               the last, is what stops slowloris: a client trickling
     *               one byte a second never finishes, and must not live on.
     *   reading, idle between requests: c->last_progress_ms + s->timeout_ms
     *   writing:    c->last_progress_ms + s->timeout_ms (a client that
     *               stopped reading its response). */
    (void)s;
    (void)c;
    return LLONG_MAX;
}

/* Every TIMER_TICK_MS: close every connection past its deadline. A walk
 * over the list costs microseconds even for 10,000 connections. */
static void expire_connections(struct server *s)
{
    long long now = now_ms();
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (now >= conn_deadline(s, c)) {
            /* A client that stopped reading may have megabytes queued in
             * our socket buffer: reset instead of leaving the kernel to
             * deliver them (nginx: reset_timedout_connection). */
            if (c->state == C_WRITING) {
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
    /* TODO 6: a graceful drain.
     *   - stop accepting: ev_forget() the listener, close it, set
     *     s->listen_fd = -1 (run_loop then exits once s->nconns is 0);
     *   - s->drain_deadline_ms = now_ms() + DRAIN_GRACE_S * 1000;
     *   - every connection: keep_alive = 0 (it closes after its response);
     *     one that is idle (C_READING with nothing in c->in) closes now.
     * Walk s->conns saving c->next first: conn_close() frees c. */
    while (s->conns)
        conn_close(s, s->conns);
    ev_forget(&s->ev, s->listen_fd);
    close(s->listen_fd);
    s->listen_fd = -1;
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
    fprintf(to, "usage: %s [-p PORT] [-b ADDR] [-d DIR] [-t SECONDS] [-c MAXCONN] [-S] [-v]\n"
                "  -p PORT     port to listen on (8080; 0: any free port)\n"
                "  -b ADDR     address to listen on (127.0.0.1)\n"
                "  -d DIR      directory to serve (.)\n"
                "  -t SECONDS  header, idle and send timeout (%d)\n"
                "  -c MAXCONN  connections at once; more get 503 (%d)\n"
                "  -S          follow no symlink in DIR (403); by default they are followed\n"
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
    const char *port = "8080", *addr = "127.0.0.1", *dir = ".";
    long timeout_s = DEFAULT_TIMEOUT_S, max_conns = DEFAULT_MAX_CONNS, num;
    int verbose = 0, no_symlinks = 0, opt;
    while ((opt = getopt(argc, argv, "p:b:d:t:c:Svh")) != -1) {
        switch (opt) {
        case 'p':
            if (parse_int(optarg, 0, 65535, &num) < 0) {
                fprintf(stderr, "usage: %s: -p needs a port number 0-65535, not '%s'\n", PROG, optarg);
                return 2;
            }
            port = optarg;
            break;
        case 'b': addr = optarg; break;
        case 'd': dir = optarg; break;
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
        case 'S': no_symlinks = 1; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    struct server s = {.timeout_ms = (int)timeout_s * 1000, .verbose = verbose, .no_symlinks = no_symlinks};
    s.root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s.root_fd < 0) {
        fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
        return 1;
    }
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
    close(s.root_fd);
    ev_close(&s.ev);
    free(s.by_fd);
    return status;
}
