/*
 * tcp_connect - lesson 02: turn a name into addresses, connect to one.
 *
 * Looks HOST up with getaddrinfo(), which may return several addresses
 * (IPv6 and IPv4, or a name with many servers behind it), tries each in
 * the order given until one accepts, and prints both ends of the new
 * connection as the kernel sees them:
 *     connected to 127.0.0.1 port 8080 from 127.0.0.1 port 41236
 * Then it closes the connection.
 *
 *     tcp_connect HOST PORT     e.g. tcp_connect localhost 8080
 *     tcp_connect -h            usage
 *
 * Exit status: 0 connected, 1 could not (unknown host, refused, ...),
 * 2 usage error (including a PORT that is not a number 1-65535).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "tcp_connect"
#define USAGE "usage: " PROG " HOST PORT"
#define MAX_PORT 65535
/* Room for any numeric address inet_ntop() can write, IPv6 included. */
#define IP_TEXT_SIZE INET6_ADDRSTRLEN

/*** arguments ***/

/* Is s a port number, 1 to 65535, in plain decimal digits? We check it
 * ourselves because getaddrinfo() would also accept a service name such
 * as "http" (looked up in /etc/services) and, on some systems, "0". */
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

/*** names ***/

/* Looks host up for a TCP connection to port. Returns the list of
 * addresses (free it with freeaddrinfo), or NULL after printing
 * "tcp_connect: HOST: why". */
static struct addrinfo *resolve(const char *host, const char *port)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);   /* every field we do not set is 0 */
    hints.ai_family = AF_UNSPEC;       /* IPv4 or IPv6, whatever the name has */
    hints.ai_socktype = SOCK_STREAM;   /* TCP: one entry per address, not three */
    hints.ai_flags = AI_NUMERICSERV;   /* port is a number: no /etc/services */

    struct addrinfo *list;
    int rc = getaddrinfo(host, port, &hints, &list);
    if (rc != 0) {
        /* getaddrinfo() does not set errno; it returns its own code, which
         * gai_strerror() turns into words. EAI_SYSTEM is the exception:
         * "a system error", and then errno says which. */
        fprintf(stderr, PROG ": %s: %s\n", host,
                rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return NULL;
    }
    return list;
}

/*** connecting ***/

/* Tries every address in list, in order, until one connects. Returns
 * the connected socket, or -1 with errno from the last failure (the
 * caller reports it: usually ECONNREFUSED, nobody listens there). */
static int connect_any(const struct addrinfo *list)
{
    int last_errno = EADDRNOTAVAIL;   /* what to say if the list is empty */
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        /* Each address may be a different family, so each needs its own
         * socket: family, type and protocol come straight from the list. */
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;   /* e.g. no IPv6 here: try the next one */
            continue;
        }
        /* We install no signal handlers, so connect() cannot fail with
         * EINTR. A program that does must not simply call connect()
         * again: the attempt goes on in the background (connect(2)). */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            return fd;
        last_errno = errno;
        close(fd);   /* a failed socket cannot be reused: a new one per try */
    }
    errno = last_errno;
    return -1;
}

/*** both ends of the connection ***/

/* Writes the numeric IP and the port of an IPv4 or IPv6 socket address.
 * Returns 0, or -1 with errno set (EAFNOSUPPORT for another family). */
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

/* Prints "connected to IP port P from IP port LP" for a connected
 * socket, from what the kernel says: getpeername() is the other end,
 * getsockname() ours (the kernel chose our port during connect()).
 * Returns 0, or -1 after printing an error. */
static int print_connection(int fd)
{
    struct sockaddr_storage peer, self;   /* big enough for any family */
    socklen_t peer_len = sizeof peer, self_len = sizeof self;
    char peer_ip[IP_TEXT_SIZE], self_ip[IP_TEXT_SIZE];
    unsigned peer_port, self_port;

    if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0) {
        fprintf(stderr, PROG ": getpeername: %s\n", strerror(errno));
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)&self, &self_len) < 0) {
        fprintf(stderr, PROG ": getsockname: %s\n", strerror(errno));
        return -1;
    }
    if (format_address(&peer, peer_ip, sizeof peer_ip, &peer_port) < 0 ||
        format_address(&self, self_ip, sizeof self_ip, &self_port) < 0) {
        fprintf(stderr, PROG ": inet_ntop: %s\n", strerror(errno));
        return -1;
    }
    printf("connected to %s port %u from %s port %u\n", peer_ip, peer_port, self_ip, self_port);
    return 0;
}

/*** main ***/

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "-h") == 0) {
        printf(USAGE "\n"
               "Looks HOST up, connects to the first of its addresses that accepts\n"
               "a TCP connection on PORT (1-65535), prints both ends, and closes.\n");
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

    struct addrinfo *list = resolve(host, port);
    if (!list)
        return 1;
    int fd = connect_any(list);
    int saved_errno = errno;
    freeaddrinfo(list);   /* on every path: we are done with the addresses */
    if (fd < 0) {
        fprintf(stderr, PROG ": connect to %s port %s: %s\n", host, port, strerror(saved_errno));
        return 1;
    }

    int status = print_connection(fd) < 0 ? 1 : 0;
    if (close(fd) < 0) {
        fprintf(stderr, PROG ": close: %s\n", strerror(errno));
        status = 1;
    }
    /* stdout may be a pipe or a file: a write error shows up here. */
    if (fflush(stdout) == EOF) {
        fprintf(stderr, PROG ": stdout: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}
