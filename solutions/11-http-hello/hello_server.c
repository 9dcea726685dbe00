/*
 * hello_server - lesson 11: the origin's HTTP server, done right.
 *
 * Answers every GET, whatever the path, with
 *     HTTP/1.1 200 OK
 *     Content-Type: text/html
 *     Content-Length: 13
 *     Connection: close
 *
 *     Hello, world!
 * and HEAD with the same head and no body. Anything else gets the right
 * error: 400 malformed, 413 body too large, 414 request line too long,
 * 431 headers too large, 501 unknown method, 505 unknown HTTP version.
 *
 *     hello_server                  listen on 127.0.0.1:8080
 *     hello_server -p 0 -b ::1      any free port, IPv6 loopback
 *     hello_server -t 2             give each client 2 s to send its request
 *     hello_server -h               usage
 *     curl -i http://127.0.0.1:8080/anything
 *
 * Once listening it prints "listening on ADDR:PORT". It serves one client
 * at a time (iterative) and closes every connection after one response;
 * each client gets TIMEOUT seconds (-t) to send its request, so a silent
 * one delays the next by that much at most. SIGINT or SIGTERM: exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "hello_server"
#define DEFAULT_PORT "8080"
#define DEFAULT_ADDR "127.0.0.1"
#define BACKLOG 16
#define DEFAULT_TIMEOUT_S 5          /* -t: time a client has to send its request */
#define MAX_TIMEOUT_S 3600
#define MAX_REQUEST_LINE 8192        /* request line (and empty lines before it); else 414 */
#define MAX_FIELD_LINE 8192          /* one header line; else 431 */
#define MAX_FIELDS_BYTES (32 * 1024) /* all header lines together; else 431 */
#define REQUEST_BUF (MAX_REQUEST_LINE + MAX_FIELDS_BYTES + 16)
#define MAX_RESPONSE_HEAD 512
#define LINGER_MAX_BYTES (256 * 1024)  /* unread input we drain before closing */
#define MAX_CONTENT_LENGTH (1LL << 50)  /* refuse bigger: no overflow in the sum */
#define MAX_BODY_BYTES (1024 * 1024)    /* a request body we would accept; else 413 */
#define HELLO_BODY "Hello, world!"

/* Set by the SIGINT/SIGTERM handler; the accept loop checks it. */
static volatile sig_atomic_t stop_requested;

/* What we learnt from a request. Pointers point into the request buffer. */
struct request {
    char buf[REQUEST_BUF];
    size_t len;                    /* bytes in buf */
    const char *method, *target;   /* NUL-terminated in buf once parsed */
    int minor;                     /* HTTP/1.<minor> */
    int hosts;                     /* how many Host headers */
    long long content_length;      /* -1: none */
    int chunked;                   /* Transfer-Encoding: chunked */
};

/*** time ***/

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*** reading with a deadline ***/

/* Receives up to len bytes, waiting no later than deadline (a now_ms()
 * time). Returns the bytes received, 0 at EOF, or -1 with errno set:
 * ETIMEDOUT when the deadline passed first.
 *
 * Why a deadline and not SO_RCVTIMEO: SO_RCVTIMEO limits each recv(), so
 * a client sending one byte every few seconds ("slowloris") would hold
 * this one-client-at-a-time server for hours. A deadline for the whole
 * request cannot be stretched. */
static ssize_t recv_before(int fd, char *buf, size_t len, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)left);   /* at most MAX_TIMEOUT_S: fits */
        if (n < 0 && errno != EINTR)
            return -1;
        if (n <= 0)
            continue;              /* interrupted, or not yet: look again */
        ssize_t got = recv(fd, buf, len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        return got;
    }
}

/*** parsing the request ***/

/* RFC 9110 section 5.6.2: the characters of a method or a header name. */
static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* Parses "METHOD SP TARGET SP HTTP/1.1" (the line is NUL-terminated, its
 * line end removed). Returns 0, or the status to answer with. Exactly one
 * space between the parts: "GET  / HTTP/1.1" is malformed. */
static int parse_request_line(struct request *rq, char *line)
{
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' '))
        return 400;
    *sp1 = *sp2 = '\0';
    const char *method = line, *target = sp1 + 1, *version = sp2 + 1;
    /* The target is "/path" (origin-form) or "http://host/path" (absolute-
     * form, RFC 9112 3.2.2; a scheme's case does not matter); "index.html"
     * is neither, so malformed. */
    if (!is_token(method) || (*target != '/' && strncasecmp(target, "http://", 7) != 0 &&
                              strncasecmp(target, "https://", 8) != 0))
        return 400;
    for (const char *p = target; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)   /* control bytes: never in a URI */
            return 400;
    /* "HTTP/" DIGIT "." DIGIT: any other shape is malformed; another
     * number is well formed but not ours to speak. */
    if (strncmp(version, "HTTP/", 5) != 0 || version[5] < '0' || version[5] > '9' ||
        version[6] != '.' || version[7] < '0' || version[7] > '9' || version[8] != '\0')
        return 400;
    if (version[5] != '1' || version[7] > '1')
        return 505;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return 501;
    rq->method = method;
    rq->target = target;
    rq->minor = version[7] - '0';
    return 0;
}

/* Checks one header line ("Name: value", NUL-terminated) and notes the
 * headers that matter here. Returns 0, or the status to answer with. */
static int parse_field_line(struct request *rq, char *line)
{
    /* The name must be a token right up to the colon: a space before
     * the colon is how request smuggling hides a header from one server
     * but not the next (RFC 9112 section 5.1 says reject it). */
    char *colon = strchr(line, ':');
    if (!colon)
        return 400;
    *colon = '\0';
    if (!is_token(line))
        return 400;
    char *v = colon + 1, *end = v + strlen(v);
    while (*v == ' ' || *v == '\t')
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    for (const char *p = v; *p; p++)
        if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
            return 400;
    if (strcasecmp(line, "Host") == 0) {
        rq->hosts++;
    } else if (strcasecmp(line, "Content-Length") == 0) {
        long long n = 0;
        if (*v == '\0')
            return 400;
        for (const char *p = v; *p; p++) {
            if (*p < '0' || *p > '9' || n > MAX_CONTENT_LENGTH)
                return 400;            /* not a number, or absurdly big */
            n = n * 10 + (*p - '0');
        }
        if (rq->content_length >= 0 && rq->content_length != n)
            return 400;
        rq->content_length = n;
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        if (strcasecmp(v, "chunked") != 0)
            return 501;            /* a coding we do not know */
        rq->chunked = 1;
    }
    return 0;
}

/* The checks that need the whole head. Returns 0 or a status. */
static int check_head(const struct request *rq)
{
    if (rq->hosts > 1 || (rq->minor == 1 && rq->hosts == 0))
        return 400;                /* HTTP/1.1 requires exactly one Host */
    if (rq->content_length >= 0 && rq->chunked)
        return 400;                /* which one frames the body? a smuggling trick */
    if (rq->content_length > MAX_BODY_BYTES)
        return 413;                /* we never read it, but say no before it comes */
    return 0;
}

/* Handles one complete line buf[start..nl] (nl: the index of its LF).
 * Returns 0 to go on, 1 when the head is complete, or a status. */
static int take_line(struct request *rq, size_t start, size_t nl, size_t *fields_bytes)
{
    char *line = rq->buf + start;
    size_t len = nl - start;
    if (len > 0 && line[len - 1] == '\r')
        len--;                     /* CRLF, or a bare LF: both end a line */
    if (memchr(line, '\0', len) || memchr(line, '\r', len))
        return 400;                /* NUL or a lone CR inside a line */
    line[len] = '\0';
    if (!rq->method) {
        if (len == 0)
            return 0;              /* empty lines before the request line: skip */
        return parse_request_line(rq, line);
    }
    if (len == 0)
        return 1;                  /* the blank line: the head is complete */
    if (len > MAX_FIELD_LINE)
        return 431;
    *fields_bytes += nl + 1 - start;
    if (*fields_bytes > MAX_FIELDS_BYTES)
        return 431;
    if (line[0] == ' ' || line[0] == '\t')
        return 400;                /* obs-fold: a continuation line, RFC 9112 5.2 */
    return parse_field_line(rq, line);
}

/* Reads and checks one request head. Returns 0 when a good head has
 * arrived, an HTTP status (400, 413, 414, 431, 501, 505) to answer with, or -1
 * when the client closed, failed or ran out of time (errno says which):
 * then there is nobody to answer.
 *
 * This is where CS:APP's Tiny loops forever: its loop waits for the
 * blank line and never asks whether the client has gone. Every read
 * here can end the loop: EOF, an error, the deadline, or a limit. */
static int read_request(int fd, struct request *rq, long long deadline)
{
    size_t line_start = 0, scanned = 0, fields_bytes = 0;
    for (;;) {
        /* Handle every complete line we have. */
        char *nl;
        while ((nl = memchr(rq->buf + scanned, '\n', rq->len - scanned)) != NULL) {
            size_t end = (size_t)(nl - rq->buf);
            if (!rq->method && end + 1 > MAX_REQUEST_LINE)
                return 414;
            int rc = take_line(rq, line_start, end, &fields_bytes);
            if (rc != 0)
                return rc == 1 ? check_head(rq) : rc;
            line_start = scanned = end + 1;
        }
        scanned = rq->len;
        /* An unfinished line is already too long: say so now, do not
         * wait for the rest of it. */
        size_t partial = rq->len - line_start;
        if (!rq->method && rq->len >= MAX_REQUEST_LINE)
            return 414;
        if (rq->method && (partial > MAX_FIELD_LINE + 1 || fields_bytes + partial > MAX_FIELDS_BYTES + 2))
            return 431;
        if (rq->len == sizeof rq->buf)
            return 431;            /* cannot happen with the limits above */
        ssize_t n = recv_before(fd, rq->buf + rq->len, sizeof rq->buf - rq->len, deadline);
        if (n <= 0) {
            if (n == 0)
                errno = 0;         /* EOF before the blank line */
            return -1;
        }
        rq->len += (size_t)n;
    }
}

/*** responding ***/

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default:  return "Error";
    }
}

/* Sends all len bytes; send() may take fewer. Returns 0 or -1 (errno). */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Builds the whole response in one buffer and sends it at once: the
 * head, then the body unless this is HEAD. Every response says how long
 * its body is and that we are about to close. Returns 0 or -1 (errno). */
static int send_response(int fd, int status, int head_only)
{
    char body[64];
    if (status == 200)
        snprintf(body, sizeof body, "%s", HELLO_BODY);
    else
        snprintf(body, sizeof body, "%d %s\n", status, reason_phrase(status));
    /* Date is required of a server with a clock (RFC 9110 6.6.1). */
    char date[64];
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        date[0] = '\0';
    char buf[MAX_RESPONSE_HEAD + sizeof body];
    int n = snprintf(buf, MAX_RESPONSE_HEAD,
                     "HTTP/1.1 %d %s\r\n"
                     "Date: %s\r\n"
                     "Server: " PROG "\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     status, reason_phrase(status), date,
                     status == 200 ? "text/html" : "text/plain", strlen(body));
    if (n < 0)
        return -1;
    if (n >= MAX_RESPONSE_HEAD) {
        errno = EOVERFLOW;
        return -1;
    }
    size_t len = (size_t)n;
    if (!head_only) {
        memcpy(buf + len, body, strlen(body));
        len += strlen(body);
    }
    return send_all(fd, buf, len);
}

/* Closes a connection without losing our response. If the client has
 * sent bytes we never read, close() makes the kernel send RST, and an RST
 * can destroy our response before the client reads it. So: send FIN
 * (shutdown), read and discard until the client closes too, within the
 * deadline and LINGER_MAX_BYTES, and only then close. nginx calls this
 * "lingering close". */
static void close_gently(int fd, long long deadline)
{
    char sink[4096];
    size_t drained = 0;
    if (shutdown(fd, SHUT_WR) == 0) {
        ssize_t n;
        while (drained < LINGER_MAX_BYTES && (n = recv_before(fd, sink, sizeof sink, deadline)) > 0)
            drained += (size_t)n;
    }
    close(fd);
}

/* Serves one connection: read a request, answer it, close. Logs one line
 * a request on stderr. Nothing a client does can end the server. */
static void serve_client(int fd, const char *who, long timeout_ms)
{
    struct request rq = {.len = 0, .content_length = -1};
    long long deadline = now_ms() + timeout_ms;
    int status = read_request(fd, &rq, deadline);
    if (status < 0) {
        fprintf(stderr, PROG ": %s: %s\n", who,
                errno == 0 ? "closed before the end of the request"
                : errno == ETIMEDOUT ? "no complete request in time"
                                     : strerror(errno));
        close(fd);
        return;
    }
    if (status == 0)
        status = 200;
    /* A response to HEAD never has a body, not even an error's. */
    int head_only = rq.method && strcmp(rq.method, "HEAD") == 0;
    if (send_response(fd, status, head_only) < 0)
        fprintf(stderr, PROG ": %s: response: %s\n", who, strerror(errno));
    else if (status == 200)
        fprintf(stderr, PROG ": %s: %s %s -> 200\n", who, rq.method, rq.target);
    else
        fprintf(stderr, PROG ": %s: -> %d %s\n", who, status, reason_phrase(status));
    close_gently(fd, now_ms() + timeout_ms);
}

/*** the listening socket ***/

static int listen_on(const char *addr, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(addr, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s port %s: %s\n", addr, port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0) {
        fprintf(stderr, PROG ": socket: %s\n", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    /* Restart at once on the same port, even with old connections in
     * TIME_WAIT. */
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, BACKLOG) < 0) {
        fprintf(stderr, PROG ": bind %s port %s: %s\n", addr, port, strerror(errno));
        freeaddrinfo(res);
        close(fd);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Formats a socket address as "IP" and its port. */
static void describe(const struct sockaddr_storage *ss, char *ip, size_t iplen, unsigned *port)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(s4->sin_port);
    }
}

/*** main ***/

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct options {
    const char *addr, *port;
    long timeout_ms;   /* -t, in milliseconds */
};

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.addr = DEFAULT_ADDR, .port = DEFAULT_PORT, .timeout_ms = DEFAULT_TIMEOUT_S * 1000L};
    int ch;
    opterr = 0;   /* our own usage line, not getopt's message */
    while ((ch = getopt(argc, argv, "p:b:t:h")) != -1) {
        switch (ch) {
        case 'p': o->port = optarg; break;
        case 'b': o->addr = optarg; break;
        case 't': {
            char *end;
            errno = 0;
            double t = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(t >= 0.001 && t <= MAX_TIMEOUT_S)) {
                fprintf(stderr, "usage: %s: -t needs seconds from 0.001 to %d, not '%s'\n",
                        PROG, MAX_TIMEOUT_S, optarg);
                return 2;
            }
            o->timeout_ms = (long)(t * 1000 + 0.5);
            break;
        }
        case 'h':
            printf("usage: %s [-p PORT] [-b ADDR] [-t SECONDS]\n"
                   "Answers every GET with 200 and \"%s\" as text/html.\n"
                   "  -p PORT     port to listen on (%s; 0: any free port)\n"
                   "  -b ADDR     address to listen on (%s)\n"
                   "  -t SECONDS  time each client has to send its request (%d; 0.5 is fine)\n",
                   PROG, HELLO_BODY, DEFAULT_PORT, DEFAULT_ADDR, DEFAULT_TIMEOUT_S);
            return -1;
        default:
            fprintf(stderr, "usage: %s [-p PORT] [-b ADDR] [-t SECONDS]\n", PROG);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "usage: %s [-p PORT] [-b ADDR] [-t SECONDS]\n", PROG);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;

    /* A client that closes before reading our answer must give send()
     * EPIPE, not kill the server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    /* SIGINT/SIGTERM stay blocked except inside pselect(), which unblocks
     * them atomically while it waits: a signal can never slip in between
     * checking the flag and going to sleep. */
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigset_t stop_set, wait_mask;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
        sigprocmask(SIG_BLOCK, &stop_set, &wait_mask) < 0) {
        fprintf(stderr, PROG ": signals: %s\n", strerror(errno));
        return 1;
    }
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);

    int lfd = listen_on(o.addr, o.port);
    if (lfd < 0)
        return 1;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    if (getsockname(lfd, (struct sockaddr *)&ss, &sslen) < 0) {
        fprintf(stderr, PROG ": getsockname: %s\n", strerror(errno));
        close(lfd);
        return 1;
    }
    describe(&ss, ip, sizeof ip, &port);
    printf("listening on %s:%u\n", ip, port);
    fflush(stdout);

    while (!stop_requested) {
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(lfd, &readable);
        if (pselect(lfd + 1, &readable, NULL, NULL, NULL, &wait_mask) < 0) {
            if (errno == EINTR)
                continue;          /* a signal: the loop condition decides */
            fprintf(stderr, PROG ": pselect: %s\n", strerror(errno));
            close(lfd);
            return 1;
        }
        sslen = sizeof ss;
        int cfd = accept(lfd, (struct sockaddr *)&ss, &sslen);
        if (cfd < 0) {
            /* A client that vanished, or no descriptors left: the next
             * client may do better. Never a reason to stop serving. */
            fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000}, NULL);  /* do not spin */
            continue;
        }
        describe(&ss, ip, sizeof ip, &port);
        serve_client(cfd, ip, o.timeout_ms);
    }
    close(lfd);
    return 0;
}
