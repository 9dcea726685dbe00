/*
 * hello_client - lesson 05: the origin's client, finished properly.
 *
 * Connects to HOST PORT, sends MESSAGE (default "Hello, world!": 13
 * bytes, no newline, no NUL), tells the server "that is all" with
 * shutdown(SHUT_WR), copies the whole reply to stdout until the server
 * closes, and closes the socket:
 *     $ hello_client localhost 8080
 *     ...the server's reply, byte for byte...
 *
 *     hello_client HOST PORT [MESSAGE]
 *     hello_client -h            usage
 *
 * Exit status: 0 when the whole reply arrived, 1 on any failure
 * (refused, reset, stdout not writable), 2 on a usage error.
 *
 * The introductory text this lab starts from has this client in a dozen
 * lines: connect to localhost:8080, send "Hello, world!", one
 * recv(sock, buf, 1024, 0), print buf, close. It has two bugs that hide
 * on a quiet machine: one recv() returns whatever has arrived so far
 * (part of a reply, and never more than 1024 bytes), and the server is
 * never told that the message is complete, so a server that reads until
 * EOF never answers. This version loops until EOF and half-closes.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define PROG "hello_client"
#define USAGE "usage: " PROG " HOST PORT [MESSAGE]"
#define DEFAULT_MESSAGE "Hello, world!"
#define MAX_PORT 65535
/* How much one recv() may hand us. Any size is correct, because we loop
 * until EOF; the origin's single recv() into 1024 bytes is the bug. */
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

/* Prints "hello_client: WHAT: <strerror(errno)>". Returns -1, so that a
 * failing step can say `return report("send");`. */
static int report(const char *what)
{
    fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
    return -1;
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

/*** sending (lesson 03) ***/

/* Sends all len bytes of buf: send() may take only part of them.
 * Returns 0, or -1 after printing the error. */
static int send_all(int sock, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(sock, buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return report("send");   /* EPIPE, not SIGPIPE: see main */
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/*** closing ***/

/* Tells the server we have nothing more to send: shutdown(SHUT_WR)
 * sends a FIN after the bytes already queued, and the server's recv()
 * returns 0 once it has read them. Unlike close(), it leaves our socket
 * open for reading, so the reply can still arrive: a half-close.
 * Returns 0, or -1 after printing the error. */
static int half_close(int sock)
{
    if (shutdown(sock, SHUT_WR) < 0)
        return report("shutdown");
    return 0;
}

/*** receiving (lesson 04) ***/

/* Writes all len bytes of buf to fd, carrying on after a short write.
 * Returns 0, or -1 with errno set. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copies the whole reply from sock to out: recv() until it returns 0,
 * the server's FIN. One recv() returns whatever has arrived so far, up
 * to sizeof buf, so the reply may come in any number of pieces.
 * Returns 0 at end of reply, or -1 after printing the error. */
static int copy_reply(int sock, int out)
{
    char buf[RECV_CHUNK];
    for (;;) {
        ssize_t n = recv(sock, buf, sizeof buf, 0);
        if (n == 0)
            return 0;   /* the server closed its side: the reply is complete */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return report("recv");   /* ECONNRESET: cut off, not complete */
        }
        /* Exactly n bytes: the reply may hold NUL bytes and has no
         * terminator, so never printf("%s", buf). */
        if (write_all(out, buf, (size_t)n) < 0)
            return report("stdout");
    }
}

/*** main ***/

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "-h") == 0) {
        printf(USAGE "\n"
               "Connects to HOST PORT, sends MESSAGE (default \"" DEFAULT_MESSAGE "\"),\n"
               "half-closes the connection, and prints the whole reply until the\n"
               "server closes.\n");
        return 0;
    }
    if (argc < 3 || argc > 4 || argv[1][0] == '-') {
        fprintf(stderr, USAGE "\n");
        return 2;
    }
    const char *host = argv[1], *port = argv[2];
    const char *message = argc == 4 ? argv[3] : DEFAULT_MESSAGE;
    if (!is_valid_port(port)) {
        fprintf(stderr, USAGE " (port must be a number 1-65535, not '%s')\n", port);
        return 2;
    }
    /* A server that closes before reading our message would make send()
     * raise SIGPIPE, which kills a process without a word. Ignored, send()
     * fails with EPIPE instead, and we say so. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        report("signal");
        return 1;
    }

    int sock = connect_to(host, port);
    if (sock < 0)
        return 1;

    /* strlen, not sizeof: the string's terminating NUL is C's business,
     * not part of the message. */
    int status = 0;
    if (send_all(sock, message, strlen(message)) < 0 || half_close(sock) < 0 ||
        copy_reply(sock, STDOUT_FILENO) < 0)
        status = 1;

    /* close() gives the descriptor back. The connection itself is
     * already over: our FIN went out at shutdown(), the server's made
     * recv() return 0, and the kernel acknowledged both. Because we sent
     * the first FIN, the kernel now keeps the connection in TIME_WAIT
     * for a minute (see the README); nothing for us to wait for. */
    if (close(sock) < 0 && status == 0) {
        report("close");
        status = 1;
    }
    return status;
}
