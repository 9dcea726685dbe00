/*
 * chat_server - lesson 08: one thread, poll(), every client at once.
 *
 * A line-based chat room. Each client gets an ID, in connection order
 * starting at 1 (never reused while the server runs), and one welcome
 * line:
 *     welcome, you are [3]
 * Every complete line a client sends goes to every OTHER client as
 *     [3] the line
 * A partial line waits in its sender's input buffer until its newline
 * arrives. A line longer than MAX_LINE bytes gets its sender
 *     error: line too long
 * and a disconnect. A client that does not read what it is sent gets up
 * to MAX_QUEUE bytes queued for it and is then dropped: a slow reader
 * never slows anybody else down. Past the client cap, a newcomer gets
 *     error: server full
 * and is closed.
 *
 *     chat_server [-p PORT] [-b ADDR]     defaults: 8080, 127.0.0.1
 *     nc 127.0.0.1 8080                   in two terminals, then type
 *
 * One thread, one poll() loop, non-blocking sockets, a struct per client
 * with its own input buffer and output queue: the shape of darkhttpd and
 * smallchat, in POSIX (no epoll).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "chat_server"
#define DEFAULT_PORT "8080"
#define DEFAULT_ADDR "127.0.0.1"
#define MAX_LINE 4096            /* longest line a client may send, '\n' not counted */
#define MAX_QUEUE (64 * 1024)    /* bytes queued for one client before we drop it */
#define MAX_CLIENTS 1000         /* the cap; lowered at start-up to fit the fd limit */
#define FD_RESERVE 10            /* fds kept for stdio, the listener, a refusal, libc */
#define PREFIX_MAX 32            /* room for "[ID] " with any unsigned long ID */
#define POLL_TIMEOUT_MS 1000     /* wake up at least this often: see serve() */

/* The one global: set by the signal handler, read by the loop. */
static volatile sig_atomic_t stop_requested;

enum client_state {
    CLIENT_OPEN,     /* reading and writing */
    CLIENT_CLOSING,  /* reads no more: its queue is flushed, then it is closed */
    CLIENT_GONE,     /* closed and freed at the end of this turn of the loop */
};

struct client {
    int fd;
    unsigned long id;
    enum client_state state;
    char in[MAX_LINE + 1];   /* the line being received: MAX_LINE bytes and its '\n' */
    size_t in_len;
    char *out;               /* bytes waiting to be sent: out[out_sent .. out_len) */
    size_t out_len, out_sent, out_cap;
};

struct server {
    int listen_fd;
    size_t max_clients;      /* MAX_CLIENTS, or fewer if the fd limit says so */
    int accept_paused;       /* accept() ran out of fds: wait until a client leaves */
    unsigned long next_id;
    size_t nclients;
    struct client *clients[MAX_CLIENTS];
    struct pollfd pfds[MAX_CLIENTS + 1];   /* [0] the listener, [i + 1] clients[i] */
};

/*** start-up ***/

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;   /* only this: a handler may interrupt anything */
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    /* No SA_RESTART: poll() must fail with EINTR so the loop sees the flag. */
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        return -1;
    /* A send() to a client that has gone must be an EPIPE error we can
     * handle for that client, not a signal that kills the whole server. */
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* Every socket in the loop must be non-blocking: one recv() or send()
 * that waits would freeze every other client. Returns 0, or -1 and errno. */
static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* How many clients fit in the fd table (one fd each). Raises the soft
 * limit towards the hard one if it must: see getrlimit(2). */
static size_t fit_fd_limit(void)
{
    struct rlimit rl;
    const rlim_t want = MAX_CLIENTS + FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, PROG ": getrlimit: %s\n", strerror(errno));
        return MAX_CLIENTS;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl = raised;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return MAX_CLIENTS;
    size_t room = rl.rlim_cur > FD_RESERVE ? (size_t)(rl.rlim_cur - FD_RESERVE) : 0;
    fprintf(stderr, PROG ": the fd limit (%lu) leaves room for %zu clients\n",
            (unsigned long)rl.rlim_cur, room);
    return room;
}

/* One address from getaddrinfo() to a listening socket. Returns the fd,
 * or -1 with errno and *what naming the call that failed. */
static int listen_on(const struct addrinfo *ai, const char **what)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        *what = "socket";
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        *what = "setsockopt";
    else if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        *what = "bind";
    else if (listen(fd, SOMAXCONN) < 0)   /* a burst of 200 connects must not overflow it */
        *what = "listen";
    else if (set_nonblocking(fd) < 0)     /* accept() until EAGAIN, never wait in it */
        *what = "fcntl";
    else
        return fd;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* Prints "listening on ADDR:PORT" with the port the kernel chose. */
static int announce(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    const void *addr;
    unsigned port;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        addr = &s6->sin6_addr;
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        addr = &s4->sin_addr;
        port = ntohs(s4->sin_port);
    }
    if (!inet_ntop(ss.ss_family, addr, ip, sizeof ip))
        return -1;
    printf("listening on %s:%u\n", ip, port);
    return fflush(stdout) == EOF ? -1 : 0;   /* the tests wait for this line */
}

/* Returns the listening fd, or -1 with the reason printed. */
static int open_listener(const char *addr, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(addr, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s: %s\n", addr, gai_strerror(rc));
        return -1;
    }
    const char *what = "getaddrinfo";
    int fd = -1;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = listen_on(ai, &what);
    if (fd < 0)
        fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
    freeaddrinfo(res);
    if (fd >= 0 && announce(fd) < 0) {
        fprintf(stderr, PROG ": announce: %s\n", strerror(errno));
        close(fd);
        fd = -1;
    }
    return fd;
}

/*** one client's output queue ***/

/* Queues len bytes for c. Returns 0, or -1 if that would put more than
 * MAX_QUEUE bytes in its queue (or memory ran out): drop the client. */
static int queue_append(struct client *c, const char *buf, size_t len)
{
    size_t pending = c->out_len - c->out_sent;
    if (pending + len > MAX_QUEUE)
        return -1;   /* this reader is too slow: no waiting, no unbounded growth */
    if (c->out_sent > 0) {   /* slide the unsent bytes to the front */
        memmove(c->out, c->out + c->out_sent, pending);
        c->out_len = pending;
        c->out_sent = 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 1024;
        while (cap < c->out_len + len)
            cap *= 2;
        char *grown = realloc(c->out, cap);
        if (!grown)
            return -1;
        c->out = grown;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, buf, len);
    c->out_len += len;
    return 0;
}

static int has_output(const struct client *c)
{
    return c->out_sent < c->out_len;
}

/* Sends as much of c's queue as its socket takes right now. Returns 0
 * (all sent, or the socket is full: poll() says when to go on), or -1 if
 * the connection is broken. */
static int queue_flush(struct client *c)
{
    while (has_output(c)) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;   /* never wait here: the rest goes on the next POLLOUT */
            return -1;
        }
        c->out_sent += (size_t)n;
    }
    c->out_sent = c->out_len = 0;
    return 0;
}

/*** clients ***/

/* Marks c for closing at the end of this turn, and says why on stderr
 * (with strerror(err) unless err is 0). */
static void client_drop(struct client *c, const char *why, int err)
{
    if (err)
        fprintf(stderr, PROG ": [%lu] %s: %s\n", c->id, why, strerror(err));
    else
        fprintf(stderr, PROG ": [%lu] %s\n", c->id, why);
    c->state = CLIENT_GONE;
}

/* Sends "[ID] line\n" from `from` to every other open client. A client
 * whose queue overflows is dropped: nobody ever waits for anybody. */
static void broadcast_line(struct server *srv, const struct client *from,
                           const char *line, size_t len)
{
    char msg[PREFIX_MAX + MAX_LINE + 1];
    int n = snprintf(msg, PREFIX_MAX, "[%lu] ", from->id);
    if (n < 0 || n >= PREFIX_MAX)
        return;   /* cannot happen: PREFIX_MAX fits any unsigned long */
    memcpy(msg + n, line, len);
    msg[(size_t)n + len] = '\n';
    for (size_t i = 0; i < srv->nclients; i++) {
        struct client *c = srv->clients[i];
        if (c == from || c->state != CLIENT_OPEN)
            continue;
        if (queue_append(c, msg, (size_t)n + len + 1) < 0)
            client_drop(c, "dropped: reads too slowly, its output queue is full", 0);
    }
}

/* Broadcasts every complete line in c's input buffer and keeps the
 * partial one (if any) at the front for the next read. */
static void take_lines(struct server *srv, struct client *c)
{
    size_t start = 0;
    char *nl;
    /* Simplification: we rescan the partial line from its start on each
     * read; for lines of at most MAX_LINE bytes that costs nothing. */
    while ((nl = memchr(c->in + start, '\n', c->in_len - start)) != NULL) {
        size_t end = (size_t)(nl - c->in);
        broadcast_line(srv, c, c->in + start, end - start);
        start = end + 1;
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
}

/* One recv() for c: at most one buffer a turn, so a client that talks
 * without pause still leaves the others their turn. */
static void client_read(struct server *srv, struct client *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        client_drop(c, "left", errno);
        return;
    }
    if (n == 0) {   /* EOF. Simplification: an unfinished last line is lost. */
        client_drop(c, "left", 0);
        return;
    }
    c->in_len += (size_t)n;
    take_lines(srv, c);
    if (c->in_len == sizeof c->in) {
        /* MAX_LINE + 1 bytes and still no newline: tell the sender, stop
         * reading it, and close once the error line has gone out.
         * Simplification: if it still has bytes in flight, our close()
         * makes its kernel answer with a reset; a "lingering close"
         * (shutdown(SHUT_WR), read until EOF, close) would avoid that. */
        static const char err[] = "error: line too long\n";
        fprintf(stderr, PROG ": [%lu] sent a line over %d bytes: disconnecting\n", c->id, MAX_LINE);
        c->in_len = 0;
        c->state = CLIENT_CLOSING;
        if (queue_append(c, err, sizeof err - 1) < 0)
            client_drop(c, "dropped: its output queue is full", 0);
    }
}

/* Politely turns a newcomer away when every slot is taken. */
static void refuse(int fd)
{
    static const char msg[] = "error: server full\n";
    /* One try: a new socket's send buffer is empty, so 19 bytes fit and
     * send() does not wait. If it fails anyway, closing says enough. */
    if (send(fd, msg, sizeof msg - 1, 0) < 0)
        fprintf(stderr, PROG ": refusing a client: %s\n", strerror(errno));
    close(fd);
}

/* Takes a fresh connection into the table and queues its welcome. */
static void client_add(struct server *srv, int fd)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c || set_nonblocking(fd) < 0) {
        fprintf(stderr, PROG ": new client: %s\n", strerror(errno));
        free(c);
        close(fd);
        return;
    }
    char hello[64];
    c->fd = fd;
    c->id = srv->next_id++;
    c->state = CLIENT_OPEN;
    int n = snprintf(hello, sizeof hello, "welcome, you are [%lu]\n", c->id);
    srv->clients[srv->nclients++] = c;
    fprintf(stderr, PROG ": [%lu] joined\n", c->id);
    if (n < 0 || (size_t)n >= sizeof hello || queue_append(c, hello, (size_t)n) < 0)
        client_drop(c, "dropped: cannot queue its welcome", 0);
}

/* Accepts every connection waiting in the backlog (the listener is
 * non-blocking: EAGAIN means there are no more). */
static void accept_clients(struct server *srv)
{
    for (;;) {
        int fd = accept(srv->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;   /* a signal, or a client that left before we got to it */
            if (errno == EMFILE || errno == ENFILE) {
                /* The listener stays readable: polling it now would spin. */
                fprintf(stderr, PROG ": accept: %s: pausing until a client leaves\n", strerror(errno));
                srv->accept_paused = 1;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
            }
            return;
        }
        if (srv->nclients >= srv->max_clients)
            refuse(fd);
        else
            client_add(srv, fd);
    }
}

/*** the loop ***/

/* Fills srv->pfds for this turn. Returns how many entries to poll. */
static nfds_t build_pollfds(struct server *srv)
{
    srv->pfds[0].fd = srv->listen_fd;
    srv->pfds[0].events = srv->accept_paused ? 0 : POLLIN;
    for (size_t i = 0; i < srv->nclients; i++) {
        const struct client *c = srv->clients[i];
        struct pollfd *p = &srv->pfds[i + 1];
        p->fd = c->fd;
        p->events = 0;
        if (c->state == CLIENT_OPEN)
            p->events |= POLLIN;
        /* POLLOUT only when something waits to go out: an idle socket is
         * always writable, and asking anyway makes poll() return at once,
         * every time, and the loop spin at 100% CPU. */
        if (has_output(c))
            p->events |= POLLOUT;
    }
    return (nfds_t)srv->nclients + 1;
}

/* Acts on what poll() reported for one client. */
static void handle_client(struct server *srv, struct client *c, short revents)
{
    if (c->state == CLIENT_GONE)
        return;   /* dropped earlier in this turn by someone's broadcast */
    if (revents & POLLNVAL) {
        client_drop(c, "dropped: invalid fd", 0);
        return;
    }
    /* POLLHUP and POLLERR come without asking: a read says what happened. */
    if (c->state == CLIENT_OPEN && (revents & (POLLIN | POLLHUP | POLLERR)))
        client_read(srv, c);
    if (c->state != CLIENT_GONE && (revents & (POLLOUT | POLLHUP | POLLERR)) && has_output(c)) {
        if (queue_flush(c) < 0)
            client_drop(c, "left", errno);
    }
}

static void client_free(struct client *c)
{
    if (close(c->fd) < 0)
        fprintf(stderr, PROG ": [%lu] close: %s\n", c->id, strerror(errno));
    free(c->out);
    free(c);
}

/* Closes and forgets every client that is gone, or closing with nothing
 * left to send. Only here does the table change: the loop above can
 * index clients[] and pfds[] side by side. */
static void sweep_clients(struct server *srv)
{
    size_t i = 0;
    while (i < srv->nclients) {
        struct client *c = srv->clients[i];
        if (c->state == CLIENT_OPEN || (c->state == CLIENT_CLOSING && has_output(c))) {
            i++;
            continue;
        }
        client_free(c);
        srv->clients[i] = srv->clients[--srv->nclients];   /* order does not matter */
        srv->accept_paused = 0;   /* an fd came free */
    }
}

/* Runs until SIGINT or SIGTERM. Returns 0, or 1 if poll() itself failed. */
static int serve(struct server *srv)
{
    while (!stop_requested) {
        nfds_t nfds = build_pollfds(srv);
        size_t polled = srv->nclients;
        /* The timeout covers a race: a signal that lands after the check
         * above but before poll() starts would otherwise go unnoticed
         * until the next client speaks. (ppoll/pselect close it fully.) */
        if (poll(srv->pfds, nfds, POLL_TIMEOUT_MS) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
            return 1;
        }
        /* Newcomers first: a client connected before a line arrived hears it. */
        if (srv->pfds[0].revents & POLLIN)
            accept_clients(srv);
        for (size_t i = 0; i < polled; i++)
            handle_client(srv, srv->clients[i], srv->pfds[i + 1].revents);
        sweep_clients(srv);
    }
    return 0;
}

/*** main ***/

static void usage(FILE *to)
{
    fprintf(to, "usage: %s [-p PORT] [-b ADDR]\n", PROG);
}

/* Accepts 0..65535 written in decimal digits only. */
static int valid_port(const char *s)
{
    char *end;
    if (*s < '0' || *s > '9')
        return 0;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno == 0 && *end == '\0' && v <= 65535;
}

int main(int argc, char **argv)
{
    const char *port = DEFAULT_PORT, *addr = DEFAULT_ADDR;
    int opt;
    opterr = 0;   /* our own one-line usage error instead of getopt's */
    while ((opt = getopt(argc, argv, "p:b:h")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 'b': addr = optarg; break;
        case 'h':
            usage(stdout);
            printf("A chat room: every line a client sends goes to every other client\n"
                   "as \"[ID] line\". -p 0 picks a free port. Defaults: -p %s -b %s\n",
                   DEFAULT_PORT, DEFAULT_ADDR);
            return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !valid_port(port)) {
        usage(stderr);
        return 2;
    }

    struct server srv = {.listen_fd = -1, .next_id = 1};
    srv.max_clients = fit_fd_limit();
    if (install_signals() < 0) {
        fprintf(stderr, PROG ": sigaction: %s\n", strerror(errno));
        return 1;
    }
    srv.listen_fd = open_listener(addr, port);
    if (srv.listen_fd < 0)
        return 1;

    int status = serve(&srv);

    /* Close and free everything: valgrind and ASan should find nothing. */
    for (size_t i = 0; i < srv.nclients; i++)
        client_free(srv.clients[i]);
    srv.nclients = 0;
    if (close(srv.listen_fd) < 0) {
        fprintf(stderr, PROG ": close: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}
