/*
 * tcp_send - lesson 03: send every byte of stdin over a TCP connection.
 *
 * Connects to HOST PORT the way lesson 02 does, copies stdin to the
 * socket until end of file (any bytes, NULs included, any amount), closes
 * the connection and says how much it handed over, on stderr:
 *     $ tcp_send localhost 8080 < photo.jpg
 *     sent 482133 bytes
 *
 *     tcp_send HOST PORT     send stdin to HOST PORT
 *     tcp_send -h            usage
 *
 * Exit status: 0 everything sent, 1 a failure (unknown host, refused, a
 * peer that closed or reset before taking it all, a read error), 2 usage.
 *
 * Two things make this harder than one send() call: send() may take only
 * part of what you give it, and sending to a peer that has gone away
 * raises SIGPIPE, which kills a program by default.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define PROG "tcp_send"
#define USAGE "usage: " PROG " HOST PORT"
#define MAX_PORT 65535
/* How much of stdin we read, then send, at a time. Any size works; a
 * bigger one means fewer system calls. */
#define CHUNK_SIZE 65536

/*** arguments ***/

/* Is s a port number, 1 to 65535, in plain decimal digits? */
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

/*** connecting (as in lesson 02) ***/

/* Tries every address in list, in order, until one connects. Returns
 * the connected socket, or -1 with errno from the last failure. */
static int connect_any(const struct addrinfo *list)
{
    int last_errno = EADDRNOTAVAIL;   /* what to say if the list is empty */
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            return fd;
        last_errno = errno;
        close(fd);
    }
    errno = last_errno;
    return -1;
}

/* Looks host up and connects to the first of its addresses that
 * accepts. Returns the socket, or -1 after printing why not. */
static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;       /* IPv4 or IPv6 */
    hints.ai_socktype = SOCK_STREAM;   /* TCP */
    hints.ai_flags = AI_NUMERICSERV;   /* port is a number */

    struct addrinfo *list;
    int rc = getaddrinfo(host, port, &hints, &list);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s: %s\n", host,
                rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    int fd = connect_any(list);
    int saved_errno = errno;   /* freeaddrinfo() may change errno */
    freeaddrinfo(list);
    if (fd < 0)
        fprintf(stderr, PROG ": connect to %s port %s: %s\n", host, port, strerror(saved_errno));
    return fd;
}

/*** sending ***/

/* Sends all len bytes of buf, however many send() calls it takes.
 * Returns 0, or -1 with errno set (EPIPE, ECONNRESET: the peer is gone).
 *
 * send() returns how many bytes the kernel took, which may be fewer
 * than we asked for: when the socket's send buffer is nearly full and a
 * signal arrives, or on a non-blocking socket. The rest is still ours to
 * send. This is Beej's sendall() and CS:APP's rio_writen(). */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)   /* a signal came before any byte went: again */
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copies stdin to fd until end of file, adding what was sent to *total.
 * Returns 0, or -1 after printing the error. */
static int send_stdin(int fd, unsigned long long *total)
{
    char buf[CHUNK_SIZE];
    for (;;) {
        /* read() returns whatever is there, up to CHUNK_SIZE: from a pipe
         * or a terminal that can be a few bytes. Only 0 means the end. */
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, PROG ": read stdin: %s\n", strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0;
        if (send_all(fd, buf, (size_t)n) < 0) {
            fprintf(stderr, PROG ": send: %s\n", strerror(errno));
            return -1;
        }
        *total += (unsigned long long)n;
    }
}

/*** main ***/

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "-h") == 0) {
        printf(USAGE "\n"
               "Connects to HOST PORT (1-65535), sends everything it reads from stdin,\n"
               "closes, and prints \"sent N bytes\" on stderr.\n");
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

    /* Sending on a connection the peer has closed raises SIGPIPE, whose
     * default action kills us without a word. Ignored, it becomes an
     * ordinary error: send() fails with EPIPE and we can say so. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, PROG ": signal: %s\n", strerror(errno));
        return 1;
    }

    int fd = connect_to(host, port);
    if (fd < 0)
        return 1;
    unsigned long long total = 0;
    int status = send_stdin(fd, &total) < 0 ? 1 : 0;
    /* close() hands what is still in our send buffer to the kernel, which
     * delivers it and then the FIN (end of file) on its own. */
    if (close(fd) < 0) {
        fprintf(stderr, PROG ": close: %s\n", strerror(errno));
        status = 1;
    }
    if (status == 0)
        fprintf(stderr, "sent %llu bytes\n", total);
    return status;
}
