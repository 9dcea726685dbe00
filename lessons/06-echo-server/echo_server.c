/*
 * echo_server - lesson 06: bind, listen, accept; one client at a time.
 *
 * Listens on ADDR:PORT, prints
 *     listening on 127.0.0.1:8080
 * (the port the kernel really gave us), then serves clients one after
 * another: every byte a client sends comes straight back, until the
 * client closes its side. Then the next client in the queue is accepted.
 * SIGINT or SIGTERM stops it: it closes its sockets and exits 0.
 *
 *     echo_server [-p PORT] [-b ADDR]   defaults: -p 8080 -b 127.0.0.1
 *     echo_server -p 0                  any free port (read the line it prints)
 *     echo_server -b ::1                IPv6 works too
 *     echo_server -h                    usage
 *
 * Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot start (address
 * in use, unknown address), 2 usage error.
 *
 * This is an "iterative" server, like CS:APP's echoserveri: simple, and
 * one slow client holds up everybody behind it. Lesson 07 fixes that.
 *
 * YOUR JOB: the four TODOs below, in order; lessons/06-echo-server/README.md
 * walks through them. Build and grade with
 *     make check LESSON=06
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "echo_server"
#define USAGE "usage: " PROG " [-h] [-p PORT] [-b ADDR]"
#define DEFAULT_PORT "8080"
#define DEFAULT_ADDR "127.0.0.1"
#define MAX_PORT 65535
/* How many finished handshakes the kernel queues for us while we are busy
 * with another client; connections beyond it wait (or are refused). */
#define LISTEN_BACKLOG 128
/* One recv() at most; any size works, a bigger one means fewer calls. */
#define ECHO_BUF_SIZE 16384
/* "IP port N" for any IPv4 or IPv6 address. */
#define PEER_NAME_SIZE (INET6_ADDRSTRLEN + sizeof " port 65535")

/* The one global: set by the signal handler, read by the loops. */
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
    /* TODO 4: with sigaction(2) (a zeroed struct sigaction, an empty
     * sa_mask), make SIGINT and SIGTERM call on_stop_signal, and set
     * SIGPIPE to SIG_IGN. Think hard about sa_flags: a blocked accept()
     * or recv() must come back with EINTR when the signal arrives
     * (signal(7), "Interruption of system calls"). Return -1 if a call
     * fails, else 0. */
    (void)on_stop_signal;
    return 0;
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
                   "Echoes every byte each client sends back to it, one client at a time.\n"
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
    /* TODO 1: socket(2) with the family, type and protocol in *ai; then
     * setsockopt(2) SO_REUSEADDR to 1 (socket(7): why a restart needs
     * it); then bind(2) to ai->ai_addr; then listen(2) with
     * LISTEN_BACKLOG. Before each call set *failed to its name ("socket",
     * "setsockopt SO_REUSEADDR", "bind", "listen"): main prints it, as in
     * "echo_server: bind: Address already in use". On a failure after
     * socket(), close the socket without losing errno, and return -1. */
    (void)ai;
    *failed = "socket";
    errno = ENOSYS;
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

/*** one client ***/

/* Sends all len bytes: send() may take fewer than we offer (a short
 * write), so we loop. Returns 0, or -1 with errno set; EINTR only when
 * we were asked to stop (else a signal just means "try again"). */
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
 * then, or -1 with errno set and *failed naming the call (EINTR: we were
 * asked to stop). Bytes are bytes: no strings, no lines, NULs welcome. */
static int echo_bytes(int fd, const char **failed)
{
    /* TODO 3: loop: recv(2) up to ECHO_BUF_SIZE bytes into a buffer;
     * 0 means the client closed its side: return 0. On -1, EINTR while
     * stop_requested is 0 means "call it again"; any other failure sets
     * *failed = "recv" and returns -1. Send back the n bytes that arrived
     * with send_all() (*failed = "send" if it fails). */
    (void)fd;
    (void)failed;
    (void)send_all;
    return 0;
}

/* Serves one connected client to the end, then closes its socket. A
 * failure here is this client's problem only: we log it and go on. */
static void serve_client(int fd, const struct sockaddr_storage *peer)
{
    const char *failed = "recv";
    if (echo_bytes(fd, &failed) < 0 && !stop_requested) {
        char name[PEER_NAME_SIZE];
        describe_peer(peer, name, sizeof name);
        /* e.g. "recv: Connection reset by peer": the client aborted. */
        fprintf(stderr, PROG ": %s: %s: %s\n", name, failed, strerror(errno));
    }
    if (close(fd) < 0)
        fprintf(stderr, PROG ": close: %s\n", strerror(errno));
}

/*** the accept loop ***/

/* Does this accept() error concern only the one connection we tried to
 * take (or a passing shortage), so that the server should go on? Linux
 * reports a connection that died in the queue as its network error
 * (accept(2), "Error handling"); anything else means our listening
 * socket is broken, and going on would spin. */
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

/* Accepts and serves clients one at a time until SIGINT/SIGTERM. Returns
 * the exit status: 0 when asked to stop, 1 when accept() broke. */
static int serve_forever(int listen_fd)
{
    while (!stop_requested) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        /* TODO 2: accept(2) the next connection on listen_fd into fd,
         * with the client's address in peer (len is in and out). */
        (void)listen_fd;
        (void)len;
        int fd = -1;
        errno = ENOSYS;
        if (fd < 0) {
            int err = errno;   /* fprintf() may change errno */
            if (err == EINTR)
                continue;   /* a signal: the loop condition decides */
            fprintf(stderr, PROG ": accept: %s\n", strerror(err));
            /* Simplification: on EMFILE this loop retries at once and
             * may spin until a descriptor frees up. Here we hold at most
             * one client, so it cannot happen to us; lesson 14 caps its
             * connections instead. */
            if (accept_error_is_transient(err))
                continue;
            return 1;
        }
        serve_client(fd, &peer);
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
    int listen_fd = open_listener(opts.addr, opts.port);
    if (listen_fd < 0)
        return 1;
    status = announce(listen_fd) < 0 ? 1 : serve_forever(listen_fd);
    if (close(listen_fd) < 0) {
        fprintf(stderr, PROG ": close: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}
