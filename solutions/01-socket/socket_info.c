/*
 * socket_info - lesson 01: create a socket, ask the kernel what it is.
 *
 * Creates a TCP/IPv4, a TCP/IPv6 and a UDP/IPv4 socket and, for each,
 * prints one line such as
 *     TCP/IPv4 fd=3
 * where TCP/UDP comes from asking the kernel (getsockopt SO_TYPE) and
 * IPv4/IPv6 from getsockname(), not from what we meant to create. Then it
 * closes them.
 *
 *     socket_info        run it
 *     socket_info -h     usage
 *
 * A socket is a file descriptor: the same small integer open() returns,
 * taken from the same per-process table. So when that table is full,
 * socket() fails with EMFILE exactly as open() would; try
 *     (ulimit -n 4; socket_info)
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "socket_info"

/*** what a socket is ***/

/* The kernel's answer to "what type is this socket?", as a word. */
static const char *type_name(int fd)
{
    int type;
    socklen_t len = sizeof type;
    /* SO_TYPE is an int option: the kernel writes SOCK_STREAM or
     * SOCK_DGRAM into `type`. len is in/out: it must start as the size
     * of our buffer. */
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return NULL;
    switch (type) {
    case SOCK_STREAM: return "TCP";
    case SOCK_DGRAM:  return "UDP";
    default:          return "other";
    }
}

/* The socket's address family, as a word. An unbound socket still has
 * one: getsockname() fills in an all-zero address of its family. */
static const char *family_name(int fd)
{
    struct sockaddr_storage ss;   /* big enough for any address family */
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return NULL;
    switch (ss.ss_family) {
    case AF_INET:  return "IPv4";
    case AF_INET6: return "IPv6";
    default:       return "other";
    }
}

/*** main ***/

/* Creates one socket, prints its line. Returns the fd, or -1 with a
 * message already printed. */
static int open_and_describe(int family, int type)
{
    int fd = socket(family, type, 0);   /* 0: the usual protocol for type */
    if (fd < 0) {
        fprintf(stderr, PROG ": socket: %s\n", strerror(errno));
        return -1;
    }
    const char *t = type_name(fd), *f = family_name(fd);
    if (!t || !f) {
        fprintf(stderr, PROG ": %s: %s\n", t ? "getsockname" : "getsockopt", strerror(errno));
        close(fd);
        return -1;
    }
    printf("%s/%s fd=%d\n", t, f, fd);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n"
               "Creates a TCP/IPv4, a TCP/IPv6 and a UDP/IPv4 socket, prints what\n"
               "the kernel says each one is, and closes them.\n", PROG);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: %s [-h]\n", PROG);
        return 2;
    }

    static const struct { int family, type; } wanted[] = {
        {AF_INET, SOCK_STREAM},
        {AF_INET6, SOCK_STREAM},
        {AF_INET, SOCK_DGRAM},
    };
    enum { N = sizeof wanted / sizeof wanted[0] };
    int fds[N];
    int status = 0, opened = 0;

    for (; opened < N; opened++) {
        fds[opened] = open_and_describe(wanted[opened].family, wanted[opened].type);
        if (fds[opened] < 0) {
            status = 1;
            break;
        }
    }
    /* Close what we opened, even on failure: a descriptor is a finite
     * resource, and in a long-running server a leaked one is a bug. */
    for (int i = 0; i < opened; i++) {
        if (close(fds[i]) < 0) {
            fprintf(stderr, PROG ": close: %s\n", strerror(errno));
            status = 1;
        }
    }
    /* stdout may be a pipe or a file: a write error shows up here. */
    if (fflush(stdout) == EOF) {
        fprintf(stderr, PROG ": stdout: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}
