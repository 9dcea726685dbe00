/*
 * tcp_recv - lesson 04: receive until the other side is done.
 *
 * Connects to HOST PORT, receives everything the server sends until the
 * server closes its side of the connection, copies every byte to stdout
 * unchanged (text or binary, NUL bytes included), and then says on stderr
 * how many bytes came:
 *     $ tcp_recv 127.0.0.1 8080 > reply.bin
 *     received 10485760 bytes
 *
 *     tcp_recv HOST PORT     e.g. tcp_recv localhost 8080
 *     tcp_recv -h            usage
 *
 * Exit status: 0 when the whole stream arrived (the server closed
 * normally), 1 on any failure (refused, reset by the server, stdout
 * not writable), 2 on a usage error.
 *
 * TCP is a byte stream, not a message service: what the server wrote
 * with one send() may arrive here in many recv()s, and many sends may
 * arrive in one. The only boundary TCP keeps is the end: recv() returns
 * 0 once the server has closed and we have read everything before it.
 *
 * YOUR JOB: the two TODOs below (connecting is done: it is lesson 02).
 * Build and grade with
 *     make check LESSON=04
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define PROG "tcp_recv"
#define USAGE "usage: " PROG " HOST PORT"
#define MAX_PORT 65535
/* How much one recv() may hand us. Any size is correct, because the
 * loop below copes with whatever arrives; 64 KiB means few system calls
 * per megabyte. */
#define RECV_CHUNK 65536

/*** arguments ***/

/* Is s a port number, 1 to 65535, in plain decimal digits? (getaddrinfo
 * would also take a service name such as "http".) */
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
    return value >= 1;
}

/*** connecting (lesson 02) ***/

/* Looks host up and tries each of its addresses in turn until one
 * accepts ("localhost" may be both ::1 and 127.0.0.1, and the server may
 * listen on only one of them). Returns the connected socket, or -1 after
 * printing why. */
static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;       /* IPv4 or IPv6, whatever the name has */
    hints.ai_socktype = SOCK_STREAM;   /* TCP */
    hints.ai_flags = AI_NUMERICSERV;   /* port is a number: no /etc/services */

    struct addrinfo *list;
    int rc = getaddrinfo(host, port, &hints, &list);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s: %s\n", host,
                rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_errno = EADDRNOTAVAIL;   /* what to say if the list is empty */
    for (const struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;   /* e.g. no IPv6 here: try the next one */
            continue;
        }
        /* No signal handler is installed, so connect() cannot fail with
         * EINTR here. */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            last_errno = errno;
            close(fd);   /* a failed socket cannot be reused: a new one per try */
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0)
        fprintf(stderr, PROG ": connect to %s port %s: %s\n", host, port, strerror(last_errno));
    return fd;
}

/*** receiving ***/

/* Writes all len bytes of buf to fd. write() may take fewer bytes than
 * it was given (a pipe with little room left, a signal): carry on from
 * where it stopped. Returns 0, or -1 with errno set. */
static int write_all(int fd, const char *buf, size_t len)
{
    /* TODO 2: write(2) until all len bytes are out. write() returns how
     * many bytes it took, which may be fewer than len: go on from there.
     * A -1 with errno EINTR means a signal came first: just try again.
     * Any other -1: return -1 (errno already says why). Until you do,
     * this pretends write() failed. */
    (void)fd;
    (void)buf;
    (void)len;
    errno = ENOSYS;
    return -1;
}

/* Copies everything that arrives on sock to out until the server closes
 * its side. Adds the bytes received to *total. Returns 0 at end of
 * stream, or -1 with errno set and *what naming the call that failed. */
static int copy_stream(int sock, int out, long long *total, const char **what)
{
    char buf[RECV_CHUNK];
    /* TODO 1: receive into buf with recv(2) (flags 0), again and again,
     * until the stream ends. Read RETURN VALUE in recv(2): each call
     * gives you one of three answers, and each needs its own action.
     *   - Some bytes (how many is up to TCP, not the sender): write
     *     exactly that many to out with write_all() (TODO 2) and add
     *     them to *total. If writing fails: *what = "stdout", return -1.
     *   - The end of the stream: return 0.
     *   - An error: errno EINTR means "try again"; anything else
     *     (ECONNRESET: the server aborted) sets *what = "recv" and
     *     returns -1.
     * Until you do, this pretends recv() failed. */
    (void)sock;
    (void)out;
    (void)buf;
    (void)total;
    (void)write_all;   /* yours to call in the loop */
    *what = "recv";
    errno = ENOSYS;
    return -1;
}

/*** main ***/

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "-h") == 0) {
        printf(USAGE "\n"
               "Connects to HOST PORT, copies everything the server sends to stdout\n"
               "until it closes the connection, then prints \"received N bytes\" to stderr.\n");
        return 0;
    }
    if (argc != 3 || argv[1][0] == '-') {
        fprintf(stderr, USAGE "\n");
        return 2;
    }
    const char *host = argv[1], *port = argv[2];
    if (!is_valid_port(port)) {
        fprintf(stderr, USAGE " (port must be a number 1-65535, not '%s')\n", port);
        return 2;
    }
    /* When stdout is a pipe whose reader has quit (tcp_recv ... | head -c 10),
     * write() would raise SIGPIPE and kill us without a word. Ignored, it
     * fails with EPIPE instead, which we report like any other error. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, PROG ": signal: %s\n", strerror(errno));
        return 1;
    }

    int sock = connect_to(host, port);
    if (sock < 0)
        return 1;

    long long total = 0;
    const char *what = NULL;
    int status = 0;
    if (copy_stream(sock, STDOUT_FILENO, &total, &what) < 0) {
        fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
        status = 1;
    }
    if (close(sock) < 0 && status == 0) {
        fprintf(stderr, PROG ": close: %s\n", strerror(errno));
        status = 1;
    }
    if (status == 0)
        fprintf(stderr, "received %lld bytes\n", total);
    return status;
}
