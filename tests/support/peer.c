/*
 * peer.c - the scriptable test peer every lesson's tests talk to.
 *
 * It plays the other end of a TCP connection and behaves exactly as a
 * test asks: record what arrives, send a file in small pieces with
 * pauses, wait for EOF before replying, close or reset after N bytes,
 * read slowly or not at all. It is never the lesson's own solution, so
 * a test can never pass because two copies of the same bug agree.
 *
 *   peer [options]                 listen (127.0.0.1, port 0 by default)
 *   peer [options] -C HOST PORT    connect out instead
 *
 * It reports on stdout, one line per event, flushed at once:
 *   listening on ADDR:PORT
 *   accepted from IP port PORT          (listen mode)
 *   connected to IP port PORT from IP port PORT   (connect mode)
 *   done: received N bytes, sent N bytes, HOW
 * where HOW is eof (the other side closed), closed (we closed after -c),
 * reset (we sent RST: -R, -x or -X), peer-reset (we got RST), peer-closed
 * (EPIPE while sending), no-eof (-E ran out) or timeout (-t ran out).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CHUNK 65536
#define DEFAULT_IDLE_MS 10000

struct options {
    const char *bind_addr, *bind_port;     /* listen mode */
    const char *host, *port;               /* connect mode (-C) */
    long conns;                            /* -n: 0 = forever */
    const char *record_path;               /* -r */
    const char *send_path;                 /* -s */
    size_t send_chunk, read_chunk;         /* -k, -K */
    long send_delay_ms, read_delay_ms;     /* -d, -w */
    int wait_eof;                          /* -e */
    long eof_wait_ms;                      /* -E: 0 = forever */
    long close_after, reset_after;         /* -c, -R: -1 = never */
    int reset_at_end;                      /* -x */
    int reset_after_send;                  /* -X */
    int never_read;                        /* -W */
    int hold_open;                         /* -H: no shutdown(SHUT_WR) */
    long idle_ms;                          /* -t: 0 = forever */
};

struct payload {
    char *data;
    size_t len;
};

/*** small utilities ***/

static void die(const char *what)
{
    fprintf(stderr, "peer: %s: %s\n", what, strerror(errno));
    exit(1);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long parse_num(const char *s, const char *flag)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "usage: peer: %s needs a number >= 0, not '%s'\n", flag, s);
        exit(2);
    }
    return v;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void describe(const struct sockaddr *sa, char *ip, size_t iplen, unsigned *port)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(s4->sin_port);
    }
}

static struct payload load_file(const char *path)
{
    struct payload p = {NULL, 0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        die(path);
    p.len = (size_t)st.st_size;
    p.data = malloc(p.len ? p.len : 1);
    if (!p.data)
        die("malloc");
    size_t got = 0;
    while (got < p.len) {
        ssize_t n = read(fd, p.data + got, p.len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die(path);
        got += (size_t)n;
    }
    close(fd);
    return p;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("write record file");
        buf += n;
        len -= (size_t)n;
    }
}

static void abort_connection(int fd)
{
    /* SO_LINGER with a zero timeout makes close() send RST, not FIN. */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/*** one connection ***/

struct conn {
    int fd;
    long long received, sent;
    int read_done, write_done, eof_seen;
    long long next_read_at, next_send_at, last_activity, eof_deadline;
    size_t chunk_left;  /* bytes left in the current send chunk */
};

/* Returns NULL while the connection goes on, or how it ended. */
static const char *on_readable(struct conn *c, const struct options *o, int record_fd)
{
    char buf[DEFAULT_CHUNK];
    size_t want = o->read_chunk < sizeof buf ? o->read_chunk : sizeof buf;
    /* Stop exactly at the -c/-R limit, so "after N bytes" means N. */
    long long limit = o->close_after >= 0 ? o->close_after : o->reset_after;
    if (o->reset_after >= 0 && o->reset_after < limit)
        limit = o->reset_after;
    if (limit >= 0 && (long long)want > limit - c->received)
        want = (size_t)(limit - c->received);
    if (want == 0)
        want = 1;
    ssize_t n = recv(c->fd, buf, want, 0);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return NULL;
        return errno == ECONNRESET ? "peer-reset" : "recv-error";
    }
    if (n == 0) {
        c->read_done = c->eof_seen = 1;
        return NULL;
    }
    if (record_fd >= 0)
        write_all(record_fd, buf, (size_t)n);
    c->received += n;
    c->last_activity = now_ms();
    if (o->read_delay_ms)
        c->next_read_at = now_ms() + o->read_delay_ms;
    if (o->reset_after >= 0 && c->received >= o->reset_after) {
        abort_connection(c->fd);
        c->fd = -1;
        return "reset";
    }
    if (o->close_after >= 0 && c->received >= o->close_after) {
        close(c->fd);
        c->fd = -1;
        return "closed";
    }
    return NULL;
}

static const char *on_writable(struct conn *c, const struct options *o, const struct payload *p)
{
    if (c->chunk_left == 0)
        c->chunk_left = o->send_chunk;
    size_t left = p->len - (size_t)c->sent;
    size_t want = left < c->chunk_left ? left : c->chunk_left;
    ssize_t n = send(c->fd, p->data + c->sent, want, 0);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return NULL;
        if (errno == EPIPE)
            return "peer-closed";
        return errno == ECONNRESET ? "peer-reset" : "send-error";
    }
    c->sent += n;
    c->chunk_left -= (size_t)n;
    c->last_activity = now_ms();
    if (c->chunk_left == 0 && o->send_delay_ms)
        c->next_send_at = now_ms() + o->send_delay_ms;
    if ((size_t)c->sent == p->len) {
        c->write_done = 1;
        if (o->reset_after_send) {
            abort_connection(c->fd);
            c->fd = -1;
            return "reset";
        }
        if (!o->hold_open)
            shutdown(c->fd, SHUT_WR);
    }
    return NULL;
}

static int sending_allowed(const struct conn *c, const struct options *o)
{
    return !c->write_done && (!o->wait_eof || c->eof_seen);
}

/* Builds the poll request; returns the poll timeout in ms (-1 = none). */
static int plan_wait(const struct conn *c, const struct options *o, struct pollfd *pfd)
{
    long long now = now_ms(), deadline = -1;
    pfd->fd = c->fd;
    pfd->events = 0;
    if (!c->read_done && !o->never_read) {
        if (now >= c->next_read_at)
            pfd->events |= POLLIN;
        else
            deadline = c->next_read_at;
    }
    if (sending_allowed(c, o)) {
        if (now >= c->next_send_at)
            pfd->events |= POLLOUT;
        else if (deadline < 0 || c->next_send_at < deadline)
            deadline = c->next_send_at;
    }
    if (o->idle_ms) {
        long long idle_at = c->last_activity + o->idle_ms;
        if (deadline < 0 || idle_at < deadline)
            deadline = idle_at;
    }
    if (c->eof_deadline >= 0 && !c->eof_seen && (deadline < 0 || c->eof_deadline < deadline))
        deadline = c->eof_deadline;
    if (deadline < 0)
        return -1;
    return deadline > now ? (int)(deadline - now) : 0;
}

static const char *check_deadlines(const struct conn *c, const struct options *o)
{
    long long now = now_ms();
    if (o->wait_eof && !c->eof_seen && c->eof_deadline >= 0 && now >= c->eof_deadline)
        return "no-eof";
    if (o->idle_ms && now >= c->last_activity + o->idle_ms)
        return "timeout";
    return NULL;
}

static const char *run_connection(struct conn *c, const struct options *o,
                                  const struct payload *p, int record_fd)
{
    const char *how = NULL;
    if (p->len == 0 && !o->wait_eof) {
        c->write_done = 1;
        if (!o->hold_open && o->send_path)
            shutdown(c->fd, SHUT_WR);
    }
    while (!how) {
        int reading = !c->read_done && !o->never_read;
        if (!reading && c->write_done && !o->never_read)
            return "eof";
        struct pollfd pfd;
        int wait = plan_wait(c, o, &pfd);
        if (poll(&pfd, 1, wait) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
            how = reading ? on_readable(c, o, record_fd) : NULL;
        if (!how && c->fd >= 0 && (pfd.revents & (POLLOUT | POLLERR)) && sending_allowed(c, o))
            how = on_writable(c, o, p);
        if (!how && (pfd.revents & POLLERR) && !reading)
            how = "peer-reset";
        if (!how)
            how = check_deadlines(c, o);
        if (!how && o->wait_eof && c->eof_seen && p->len == 0 && !c->write_done)
            c->write_done = 1;
    }
    return how;
}

static void serve(int fd, const struct options *o, const struct payload *p, int record_fd)
{
    struct conn c = {.fd = fd, .eof_deadline = -1};
    c.last_activity = now_ms();
    if (o->wait_eof && o->eof_wait_ms)
        c.eof_deadline = c.last_activity + o->eof_wait_ms;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        die("fcntl");
    const char *how = run_connection(&c, o, p, record_fd);
    if (c.fd >= 0) {
        if (o->reset_at_end && strcmp(how, "eof") == 0) {
            abort_connection(c.fd);
            how = "reset";
        } else {
            close(c.fd);
        }
    }
    say("done: received %lld bytes, sent %lld bytes, %s", c.received, c.sent, how);
}

/*** setting up ***/

static int listen_on(const struct options *o)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(o->bind_addr, o->bind_port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "peer: %s: %s\n", o->bind_addr, gai_strerror(rc));
        exit(1);
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        die("bind");
    freeaddrinfo(res);
    if (listen(fd, 128) < 0)
        die("listen");
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        die("getsockname");
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    describe((struct sockaddr *)&ss, ip, sizeof ip, &port);
    say("listening on %s:%u", ip, port);
    return fd;
}

static int connect_to(const struct options *o)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "peer: %s: %s\n", o->host, gai_strerror(rc));
        exit(1);
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0)
        die("connect");
    freeaddrinfo(res);
    struct sockaddr_storage me, them;
    socklen_t ml = sizeof me, tl = sizeof them;
    getsockname(fd, (struct sockaddr *)&me, &ml);
    getpeername(fd, (struct sockaddr *)&them, &tl);
    char mip[INET6_ADDRSTRLEN], tip[INET6_ADDRSTRLEN];
    unsigned mport, tport;
    describe((struct sockaddr *)&me, mip, sizeof mip, &mport);
    describe((struct sockaddr *)&them, tip, sizeof tip, &tport);
    say("connected to %s port %u from %s port %u", tip, tport, mip, mport);
    return fd;
}

static void usage(FILE *to)
{
    fputs("usage: peer [options]                listen and serve connections\n"
          "       peer [options] -C HOST PORT   connect out instead\n"
          "  -b ADDR    listen address (127.0.0.1)     -p PORT  listen port (0: any)\n"
          "  -n N       connections to serve, one after another (1; 0: until killed)\n"
          "  -r FILE    record every byte received to FILE\n"
          "  -s FILE    send FILE                      -k N     in chunks of N bytes\n"
          "  -d MS      pause MS between chunks        -e       send only after EOF\n"
          "  -E MS      with -e, give up waiting for EOF after MS\n"
          "  -c N       close after receiving N bytes  -R N     reset after N bytes\n"
          "  -x         reset instead of closing at the end\n"
          "  -X         reset as soon as FILE is sent (no FIN, no wait for EOF)\n"
          "  -K N       read at most N bytes at a time -w MS    pause MS between reads\n"
          "  -W         never read                     -H       no shutdown after sending\n"
          "  -t MS      give up on a silent connection after MS (10000; 0: never)\n",
          to);
}

static void parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.bind_addr = "127.0.0.1", .bind_port = "0", .conns = 1,
                          .send_chunk = DEFAULT_CHUNK, .read_chunk = DEFAULT_CHUNK,
                          .close_after = -1, .reset_after = -1, .idle_ms = DEFAULT_IDLE_MS};
    int ch;
    while ((ch = getopt(argc, argv, "b:p:n:r:s:k:d:eE:c:R:xXK:w:WHt:Ch")) != -1) {
        switch (ch) {
        case 'b': o->bind_addr = optarg; break;
        case 'p': o->bind_port = optarg; break;
        case 'n': o->conns = parse_num(optarg, "-n"); break;
        case 'r': o->record_path = optarg; break;
        case 's': o->send_path = optarg; break;
        case 'k': o->send_chunk = (size_t)parse_num(optarg, "-k"); break;
        case 'd': o->send_delay_ms = parse_num(optarg, "-d"); break;
        case 'e': o->wait_eof = 1; break;
        case 'E': o->eof_wait_ms = parse_num(optarg, "-E"); break;
        case 'c': o->close_after = parse_num(optarg, "-c"); break;
        case 'R': o->reset_after = parse_num(optarg, "-R"); break;
        case 'x': o->reset_at_end = 1; break;
        case 'X': o->reset_after_send = 1; break;
        case 'K': o->read_chunk = (size_t)parse_num(optarg, "-K"); break;
        case 'w': o->read_delay_ms = parse_num(optarg, "-w"); break;
        case 'W': o->never_read = 1; break;
        case 'H': o->hold_open = 1; break;
        case 't': o->idle_ms = parse_num(optarg, "-t"); break;
        case 'C': o->host = ""; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (o->host) {
        if (argc - optind != 2) {
            usage(stderr);
            exit(2);
        }
        o->host = argv[optind];
        o->port = argv[optind + 1];
    } else if (optind != argc) {
        usage(stderr);
        exit(2);
    }
    if (o->send_chunk == 0 || o->read_chunk == 0) {
        fputs("usage: peer: -k and -K need a size above 0\n", stderr);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);

    struct payload p = {NULL, 0};
    if (o.send_path)
        p = load_file(o.send_path);
    int record_fd = -1;
    if (o.record_path) {
        record_fd = open(o.record_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (record_fd < 0)
            die(o.record_path);
    }

    if (o.host) {
        serve(connect_to(&o), &o, &p, record_fd);
    } else {
        int lfd = listen_on(&o);
        for (long served = 0; o.conns == 0 || served < o.conns; served++) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            int fd = accept(lfd, (struct sockaddr *)&ss, &len);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) {
                    served--;
                    continue;
                }
                die("accept");
            }
            char ip[INET6_ADDRSTRLEN];
            unsigned port;
            describe((struct sockaddr *)&ss, ip, sizeof ip, &port);
            say("accepted from %s port %u", ip, port);
            serve(fd, &o, &p, record_fd);
        }
        close(lfd);
    }
    if (record_fd >= 0)
        close(record_fd);
    free(p.data);
    return 0;
}
