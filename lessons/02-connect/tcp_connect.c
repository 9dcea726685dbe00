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
 *
 * YOUR JOB: the three TODOs below, in order. Build and grade with
 *     make check LESSON=02
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
    /* TODO 1: call getaddrinfo(3) for host and port. First fill in a
     * struct addrinfo of hints, zeroed, then: any address family (IPv4 or
     * IPv6), stream sockets (TCP), and a flag saying port is numeric.
     * On failure print "tcp_connect: HOST: <reason>" and return NULL;
     * the reason comes from gai_strerror(3), not strerror(errno): read
     * getaddrinfo(3), RETURN VALUE (and what EAI_SYSTEM means). */
    (void)port;
    fprintf(stderr, PROG ": %s: TODO 1: resolve() is not written yet\n", host);
    return NULL;
}

/*** connecting ***/

/* Tries every address in list, in order, until one connects. Returns
 * the connected socket, or -1 with errno from the last failure (the
 * caller reports it: usually ECONNREFUSED, nobody listens there). */
static int connect_any(const struct addrinfo *list)
{
    /* TODO 2: walk the list (ai_next) and, for each address, make a
     * socket(2) from its ai_family, ai_socktype and ai_protocol and
     * connect(2) it to ai_addr/ai_addrlen. Return the first socket that
     * connects. A socket whose connect() failed cannot be reused: close
     * it and make a new one for the next address. If none connects,
     * return -1 with errno as the last failure left it (connect(2),
     * ERRORS). */
    (void)list;
    errno = ENOSYS;
    return -1;
}

/*** both ends of the connection ***/

/* Writes the numeric IP and the port of an IPv4 or IPv6 socket address.
 * Returns 0, or -1 with errno set (EAFNOSUPPORT for another family). */
static int format_address(const struct sockaddr_storage *ss, char *ip, size_t ip_size,
                          unsigned *port)
{
    /* TODO 3: look at ss->ss_family. For AF_INET the storage holds a
     * struct sockaddr_in, for AF_INET6 a struct sockaddr_in6 (ip(7),
     * ipv6(7)): cast to the right one, turn its address into text with
     * inet_ntop(3), and its port into a host number (byteorder(3)).
     * Any other family: errno = EAFNOSUPPORT, return -1. */
    (void)ss;
    (void)ip;
    (void)ip_size;
    (void)port;
    errno = ENOSYS;
    return -1;
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
