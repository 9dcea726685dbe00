/*
 * echo_server - lesson 07: the lesson 06 echo server, many clients at once.
 *
 * Same contract as lesson 06: listens on ADDR:PORT, prints
 *     listening on 127.0.0.1:8080
 * and echoes every byte each client sends until that client closes; but
 * now every client gets a thread of its own, so a client that stalls
 * (never sends, never reads) holds up nobody else. The main thread only
 * accepts. SIGINT or SIGTERM: stop accepting, close every client's
 * connection, wait for their threads to finish, exit 0.
 *
 *     echo_server [-p PORT] [-b ADDR]   defaults: -p 8080 -b 127.0.0.1
 *     echo_server -h                    usage
 *
 * Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot start, 2 usage
 * error.
 *
 * Why threads and not fork(): both give each client its own flow of
 * control. A thread shares our memory, so the main thread can keep a
 * table of live connections and shut them all down on SIGTERM, and a
 * finished thread leaves no zombie behind. fork() gives isolation (a
 * crash in one child kills only that client) but each child must be
 * reaped (SIGCHLD, waitpid) and found again at shutdown. The README
 * compares the two.
 *
 * YOUR JOB: the three TODOs below, in order; lessons/07-concurrent/README.md
 * walks through them. The echo code is lesson 06's, done for you. Build
 * and grade with
 *     make check LESSON=07
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "echo_server"
#define USAGE "usage: " PROG " [-h] [-p PORT] [-b ADDR]"
#define DEFAULT_PORT "8080"
#define DEFAULT_ADDR "127.0.0.1"
#define MAX_PORT 65535
/* How many finished handshakes the kernel queues until we accept() them.
 * Our accept loop never stops to serve anyone, so this rarely fills. */
#define LISTEN_BACKLOG 128
/* Clients served at once. One more is turned away (closed at once):
 * every client costs a descriptor and a thread, and both run out. */
#define MAX_CLIENTS 512
/* One recv() at most. It lives on each thread's stack. */
#define ECHO_BUF_SIZE 16384
/* "IP port N" for any IPv4 or IPv6 address. */
#define PEER_NAME_SIZE (INET6_ADDRSTRLEN + sizeof " port 65535")

/* The one global: set by the signal handler, read by the main thread. */
static volatile sig_atomic_t stop_requested;

/*** signals ***/

/* A signal handler may run between any two instructions of the program,
 * so it does the least it can: set a flag (see signal-safety(7)). */
static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SIGINT/SIGTERM set the flag; SIGPIPE is ignored so that writing to a
 * client that has gone away is an EPIPE error we handle, not our death.
 * Returns 0, or -1 with errno set. */
static int install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    /* No SA_RESTART: a signal makes a blocked accept() or recv() fail
     * with EINTR, so the loop gets to look at stop_requested. With
     * SA_RESTART the kernel would quietly go back to waiting. */
    sa.sa_flags = 0;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/*** arguments ***/

struct options {
    const char *addr, *port;
};

/* Is s a port number, 0 to 65535, in plain decimal digits? 0 asks the
 * kernel for any free port. We check it ourselves: getaddrinfo() would
 * also take a service name such as "http". */
static int is_valid_port(const char *s)
{
    long value = 0;
    if (*s == '\0')
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        value = value * 10 + (*s - '0');
        if (value > MAX_PORT)   /* stop before a long string overflows */
            return 0;
    }
    return 1;
}

/* Fills o from the command line. Returns -1 to go on, or the exit status
 * (0 after -h, 2 after a usage error, already reported). */
static int parse_options(int argc, char **argv, struct options *o)
{
    o->addr = DEFAULT_ADDR;
    o->port = DEFAULT_PORT;
    opterr = 0;   /* we print our own one-line usage error */
    int ch;
    while ((ch = getopt(argc, argv, "hp:b:")) != -1) {
        switch (ch) {
        case 'h':
            printf(USAGE "\n"
                   "Echoes every byte each client sends back to it, many clients at once.\n"
                   "  -p PORT  port to listen on, 0-65535 (default " DEFAULT_PORT "; 0: any free port)\n"
                   "  -b ADDR  address to listen on (default " DEFAULT_ADDR "; ::1 for IPv6)\n"
                   "Prints 'listening on ADDR:PORT' once ready; SIGINT/SIGTERM stop it.\n");
            return 0;
        case 'p':
            o->port = optarg;
            break;
        case 'b':
            o->addr = optarg;
            break;
        default:
            fprintf(stderr, USAGE "\n");
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, USAGE " (unexpected argument '%s')\n", argv[optind]);
        return 2;
    }
    if (!is_valid_port(o->port)) {
        fprintf(stderr, USAGE " (port must be a number 0-65535, not '%s')\n", o->port);
        return 2;
    }
    return -1;
}

/*** addresses ***/

/* Writes the numeric IP and the port of an IPv4 or IPv6 socket address.
 * Returns 0, or -1 with errno set. */
static int format_address(const struct sockaddr_storage *ss, char *ip, size_t ip_size,
                          unsigned *port)
{
    const void *addr;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        addr = &sin->sin_addr;
        *port = ntohs(sin->sin_port);   /* ports travel in network byte order */
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        addr = &sin6->sin6_addr;
        *port = ntohs(sin6->sin6_port);
    } else {
        errno = EAFNOSUPPORT;
        return -1;
    }
    return inet_ntop(ss->ss_family, addr, ip, (socklen_t)ip_size) ? 0 : -1;
}

/* "IP port N", for messages about one client. */
static void describe_peer(const struct sockaddr_storage *ss, char *out, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    if (format_address(ss, ip, sizeof ip, &port) < 0)
        snprintf(out, size, "a client");
    else
        snprintf(out, size, "%s port %u", ip, port);
}

/*** listening ***/

/* Makes one listening socket for one address from getaddrinfo(). Returns
 * the socket, or -1 with errno set and *failed naming the call. */
static int listen_on(const struct addrinfo *ai, const char **failed)
{
    *failed = "socket";
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        return -1;
    /* SO_REUSEADDR lets us bind a port that still has connections of
     * ours in TIME_WAIT from a run that just ended. Without it a restart
     * fails with "Address already in use" for a minute or two. It does
     * NOT let two servers listen on the same port. */
    int one = 1;
    *failed = "setsockopt SO_REUSEADDR";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0) {
        *failed = "bind";
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            *failed = "listen";
            if (listen(fd, LISTEN_BACKLOG) == 0)
                return fd;
        }
    }
    int saved = errno;   /* close() must not overwrite the reason */
    close(fd);
    errno = saved;
    return -1;
}

/* Resolves addr:port for a server (AI_PASSIVE) and listens on the first
 * address that works. Returns the listening socket, or -1 after printing
 * "echo_server: bind: Address already in use" or the like. */
static int open_listener(const char *addr, const char *port)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;       /* "127.0.0.1" gives IPv4, "::1" IPv6 */
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;   /* an address to bind, not to connect to */

    struct addrinfo *list;
    int rc = getaddrinfo(addr, port, &hints, &list);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s: %s\n", addr,
                rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_errno = EADDRNOTAVAIL;
    const char *failed = "bind";
    for (const struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = listen_on(ai, &failed);
        if (fd < 0)
            last_errno = errno;
    }
    freeaddrinfo(list);
    if (fd < 0)
        fprintf(stderr, PROG ": %s: %s\n", failed, strerror(last_errno));
    return fd;
}

/* Prints "listening on IP:PORT" with the address the kernel really bound
 * (with -p 0 only getsockname() knows the port), and flushes it: stdout
 * to a pipe or file is block-buffered, and whoever waits for this line
 * would wait forever. Returns 0, or -1 after printing an error. */
static int announce(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        format_address(&ss, ip, sizeof ip, &port) < 0) {
        fprintf(stderr, PROG ": getsockname: %s\n", strerror(errno));
        return -1;
    }
    printf("listening on %s:%u\n", ip, port);
    if (fflush(stdout) == EOF) {
        fprintf(stderr, PROG ": stdout: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/*** echoing one client (lesson 06's code, unchanged) ***/

/* Sends all len bytes: send() may take fewer than we offer (a short
 * write), so we loop. Returns 0, or -1 with errno set. Client threads
 * block every signal, so EINTR never reaches them; the check is for a
 * caller that does get signals. */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, 0);
        if (n < 0) {
            if (errno == EINTR && !stop_requested)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Echoes until the client closes its side (recv() returns 0). Returns 0
 * then, or -1 with errno set and *failed naming the call. */
static int echo_bytes(int fd, const char **failed)
{
    char buf[ECHO_BUF_SIZE];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0)
            return 0;   /* EOF: the client will send nothing more */
        if (n < 0) {
            if (errno == EINTR && !stop_requested)
                continue;
            *failed = "recv";
            return -1;
        }
        if (send_all(fd, buf, (size_t)n) < 0) {
            *failed = "send";
            return -1;
        }
    }
}

/*** the table of connected clients ***/

/* What the main thread and the client threads share. Every field after
 * `lock` is read and written only with `lock` held. */
struct server {
    pthread_mutex_t lock;
    pthread_cond_t emptied;   /* signalled when count drops to 0 */
    int fds[MAX_CLIENTS];     /* each client's socket; -1: a free slot */
    int count;                /* slots in use */
    int stopping;             /* set by server_stop(): errors now are ours */
};

/* Returns 0, or an error number (pthread functions return one; they do
 * not set errno). */
static int server_init(struct server *srv)
{
    int rc = pthread_mutex_init(&srv->lock, NULL);
    if (rc != 0)
        return rc;
    rc = pthread_cond_init(&srv->emptied, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&srv->lock);
        return rc;
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        srv->fds[i] = -1;
    srv->count = 0;
    srv->stopping = 0;
    return 0;
}

static void server_destroy(struct server *srv)
{
    pthread_cond_destroy(&srv->emptied);
    pthread_mutex_destroy(&srv->lock);
}

/* Records a new client's socket. Returns its slot, or -1 when all
 * MAX_CLIENTS slots are taken. (Locking a mutex we initialised cannot
 * fail, so here and below we do not check it.) */
static int server_join(struct server *srv, int fd)
{
    /* TODO 1: with srv->lock held (pthread_mutex_lock(3)), find a free
     * slot (fds[i] == -1), put fd there, count one more client; release
     * the lock and return the slot, or -1 if none was free. Every path
     * out must unlock: read server_leave() below for the pattern. */
    (void)srv;
    (void)fd;
    return -1;
}

/* Closes the client in slot and frees the slot. */
static void server_leave(struct server *srv, int slot)
{
    pthread_mutex_lock(&srv->lock);
    /* Close while holding the lock: the moment it is closed, its number
     * can come back from the main thread's next accept(), and
     * server_stop() must never shut down that new client by mistake. */
    if (close(srv->fds[slot]) < 0)
        fprintf(stderr, PROG ": close: %s\n", strerror(errno));
    srv->fds[slot] = -1;
    if (--srv->count == 0)
        pthread_cond_signal(&srv->emptied);
    pthread_mutex_unlock(&srv->lock);
}

static int server_is_stopping(struct server *srv)
{
    pthread_mutex_lock(&srv->lock);
    int stopping = srv->stopping;
    pthread_mutex_unlock(&srv->lock);
    return stopping;
}

/* Ends every connection and waits until every client thread has left.
 * shutdown() (not close()) wakes a thread blocked on that socket: its
 * recv() returns 0, its send() fails; the thread then leaves the table
 * and closes the socket itself. */
static void server_stop(struct server *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->stopping = 1;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        /* ENOTCONN: that client already reset the connection. */
        if (srv->fds[i] >= 0 && shutdown(srv->fds[i], SHUT_RDWR) < 0 && errno != ENOTCONN)
            fprintf(stderr, PROG ": shutdown: %s\n", strerror(errno));
    }
    /* cond_wait unlocks while it sleeps, so the threads can get in to
     * leave; it wakes up with the lock held again. Always in a loop:
     * a wake-up is a hint to look again, not a promise. */
    while (srv->count > 0)
        pthread_cond_wait(&srv->emptied, &srv->lock);
    pthread_mutex_unlock(&srv->lock);
}

/*** one thread per client ***/

/* What a client thread gets: its own copy, on the heap, freed by the
 * thread. Never a pointer to the main thread's local variables: by the
 * time the thread reads them, the next accept() has changed them. */
struct client {
    struct server *srv;
    int slot, fd;
    struct sockaddr_storage peer;
};

/* The body of a client thread: echo, log a failure, leave, free. */
static void *client_thread(void *arg)
{
    struct client *c = arg;
    /* TODO 3: echo this client with echo_bytes(c->fd, &failed). If it
     * fails, save errno at once; then, unless server_is_stopping(c->srv),
     * print "echo_server: IP port N: FAILED: <strerror>" (describe_peer()
     * writes "IP port N" from c->peer; FAILED is what echo_bytes() put in
     * failed). Then let the code below leave the table (it closes the
     * socket) and free c. */
    (void)echo_bytes;
    (void)server_is_stopping;
    server_leave(c->srv, c->slot);
    free(c);
    return NULL;   /* a detached thread's end frees its stack: nothing to join */
}

/* Starts a detached thread running client_thread(c). Returns 0, or an
 * error number (EAGAIN: too many threads). */
static int start_client_thread(struct client *c)
{
    /* A signal sent to the process goes to any one thread that does not
     * block it. Ours must reach the main thread, the one in accept():
     * so block every signal while creating the thread, which inherits
     * that mask, then restore ours. */
    /* TODO 2: block every signal (sigfillset(3), pthread_sigmask(3)
     * with SIG_BLOCK, keeping the old mask); create a DETACHED thread
     * running client_thread(c) (pthread_attr_init(3),
     * pthread_attr_setdetachstate(3), pthread_create(3),
     * pthread_attr_destroy(3)); restore the old mask (SIG_SETMASK) on
     * every path. Return 0, or the first error number a call returned. */
    (void)c;
    (void)client_thread;
    return ENOSYS;
}

/*** the accept loop ***/

/* Does this accept() error concern only the one connection we tried to
 * take (or a passing shortage), so that the server should go on? */
static int accept_error_is_transient(int err)
{
    switch (err) {
    case ECONNABORTED: case EPROTO: case EPERM:   /* that connection died or was refused */
    case ENETDOWN: case ENETUNREACH: case EHOSTUNREACH: case ENOPROTOOPT: case ETIMEDOUT:
    case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:   /* out of resources, for now */
        return 1;
    default:
        return 0;
    }
}

/* Gives a new connection a slot and a thread of its own, or turns it
 * away (closes it) if we cannot. Either way the main thread goes
 * straight back to accept(). */
static void take_client(struct server *srv, int fd, const struct sockaddr_storage *peer)
{
    char name[PEER_NAME_SIZE];
    int slot = server_join(srv, fd);
    if (slot < 0) {
        describe_peer(peer, name, sizeof name);
        fprintf(stderr, PROG ": %s: turned away, %d clients already\n", name, MAX_CLIENTS);
        close(fd);
        return;
    }
    struct client *c = malloc(sizeof *c);
    int rc = ENOMEM;
    if (c) {
        *c = (struct client){.srv = srv, .slot = slot, .fd = fd, .peer = *peer};
        rc = start_client_thread(c);
    }
    if (rc != 0) {
        describe_peer(peer, name, sizeof name);
        fprintf(stderr, PROG ": %s: pthread_create: %s\n", name, strerror(rc));
        free(c);
        server_leave(srv, slot);
    }
}

/* Accepts clients until SIGINT/SIGTERM and hands each to a thread.
 * Returns the exit status: 0 when asked to stop, 1 when accept() broke. */
static int serve_forever(int listen_fd, struct server *srv)
{
    while (!stop_requested) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept(listen_fd, (struct sockaddr *)&peer, &len);
        if (fd < 0) {
            int err = errno;   /* fprintf() may change errno */
            if (err == EINTR)
                continue;   /* a signal: the loop condition decides */
            fprintf(stderr, PROG ": accept: %s\n", strerror(err));
            /* Simplification: on EMFILE this retries at once and may
             * spin until a client leaves; MAX_CLIENTS keeps us below
             * the usual limit of 1024 descriptors. */
            if (accept_error_is_transient(err))
                continue;
            return 1;
        }
        take_client(srv, fd, &peer);
    }
    return 0;
}

/*** main ***/

int main(int argc, char **argv)
{
    struct options opts;
    int status = parse_options(argc, argv, &opts);
    if (status >= 0)
        return status;

    if (install_signal_handlers() < 0) {
        fprintf(stderr, PROG ": sigaction: %s\n", strerror(errno));
        return 1;
    }
    struct server srv;
    int rc = server_init(&srv);
    if (rc != 0) {
        fprintf(stderr, PROG ": pthread_mutex_init: %s\n", strerror(rc));
        return 1;
    }
    int listen_fd = open_listener(opts.addr, opts.port);
    if (listen_fd < 0) {
        server_destroy(&srv);
        return 1;
    }
    status = announce(listen_fd) < 0 ? 1 : serve_forever(listen_fd, &srv);
    /* Stop taking new clients first (those still in the queue are
     * reset), then end the connections we have. */
    if (close(listen_fd) < 0) {
        fprintf(stderr, PROG ": close: %s\n", strerror(errno));
        status = 1;
    }
    server_stop(&srv);
    server_destroy(&srv);
    return status;
}
