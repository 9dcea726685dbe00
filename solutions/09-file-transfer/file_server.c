/*
 * file_server - lesson 09: send and store files over a length-prefixed
 * binary protocol, one forked process per client.
 *
 *     file_server -d DIR [-p PORT] [-b ADDR]
 *     file_server -h
 *
 * One request per connection. A request is one header line, for PUT
 * followed by exactly `size` bytes; the reply is one line, for GET
 * followed by exactly `size` bytes:
 *
 *     GET name\n                 ->  OK size\n  + size bytes
 *     PUT name size\n + bytes    ->  OK\n
 *     anything wrong             ->  ERR text\n
 *
 * Because every byte count is announced up front, a file may hold any
 * bytes at all (NUL, '\n', nothing): the framing never looks inside it.
 *
 * A name is a plain file name in DIR: 1 to MAX_NAME_LEN bytes, no '/',
 * not starting with '.', no control characters. Anything else is
 * refused before the file system is touched. An upload goes to a
 * temporary file in DIR (mkstemp) and is rename()d to its name only
 * once every byte has arrived, so a cut-off upload never leaves a
 * half file behind a real name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "file_server"
#define DEFAULT_PORT "8080"
#define DEFAULT_ADDR "127.0.0.1"
#define BACKLOG 64
#define MAX_NAME_LEN 255          /* NAME_MAX on Linux, the BSDs, macOS */
/* The longest valid header is "PUT " + 255-byte name + " " + 19 digits:
 * 279 bytes. Anything longer than this limit is refused unread. */
#define MAX_HEADER_LEN 512
#define IO_BUF_SIZE 65536
#define IO_TIMEOUT_S 30           /* a client silent this long is dropped */
#define LINGER_TIMEOUT_S 2        /* see linger_close() */
#define LINGER_MAX_BYTES (1024 * 1024)
#define TEMP_TEMPLATE ".upload-XXXXXX"   /* starts with '.': no GET reaches it */

/* The one global: set by SIGINT/SIGTERM, read by the loops. */
static volatile sig_atomic_t stop_requested;

/*** signals ***/

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Does nothing: its only job is to interrupt accept() so the loop reaps. */
static void on_child(int sig)
{
    (void)sig;
}

/* No SA_RESTART: a signal makes a blocking accept()/read() fail with
 * EINTR, which is how the loops notice stop_requested. */
static int install_handlers(void)
{
    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        return -1;
    sa.sa_handler = on_child;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        return -1;
    /* A client that vanishes mid-reply must cost us EPIPE, not our life. */
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* Collects every finished child, so none lingers as a zombie. Keeps
 * errno: the caller may still be looking at accept()'s. */
static void reap_children(void)
{
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

/*** reading and writing whole things ***/

/* Writes all len bytes (a socket or a file). Returns 0, or -1 with errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
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

/* A buffered reader over any descriptor. The header line and the first
 * body bytes usually arrive in the same read(): whatever the line
 * reader does not consume stays here for the body. */
struct reader {
    int fd;
    size_t start, end;            /* unread bytes: buf[start..end) */
    char buf[IO_BUF_SIZE];
};

/* Makes sure unread bytes are buffered. Returns 1, 0 at end of file,
 * or -1 with errno (EAGAIN when SO_RCVTIMEO ran out). */
static int reader_fill(struct reader *r)
{
    if (r->start < r->end)
        return 1;
    for (;;) {
        ssize_t n = read(r->fd, r->buf, sizeof r->buf);
        if (n >= 0) {
            r->start = 0;
            r->end = (size_t)n;
            return n > 0;
        }
        if (errno != EINTR || stop_requested)
            return -1;
    }
}

enum { LINE_EOF = -1, LINE_CUT = -2, LINE_TOO_LONG = -3, LINE_ERROR = -4 };

/* Reads one line ending in '\n' into line[max + 1], without the '\n',
 * NUL-terminated. The line may itself contain NUL bytes: the caller
 * gets the real length. Returns that length, or LINE_EOF (closed before
 * the first byte), LINE_CUT (closed mid-line), LINE_TOO_LONG (no '\n'
 * within max bytes), LINE_ERROR (errno says why). */
static long read_line(struct reader *r, char *line, size_t max)
{
    size_t len = 0;
    for (;;) {
        int rc = reader_fill(r);
        if (rc < 0)
            return LINE_ERROR;
        if (rc == 0)
            return len == 0 ? LINE_EOF : LINE_CUT;
        while (r->start < r->end) {
            char c = r->buf[r->start++];
            if (c == '\n') {
                line[len] = '\0';
                return (long)len;
            }
            if (len == max)
                return LINE_TOO_LONG;
            line[len++] = c;
        }
    }
}

enum copy_result { COPY_OK, COPY_SHORT, COPY_READ_ERROR, COPY_WRITE_ERROR };

/* Copies exactly size bytes from r to out, the buffered ones first.
 * Never reads past size: what follows is not ours. *copied says how far
 * it got. COPY_SHORT: the input ended early; the errors leave errno. */
static enum copy_result copy_exact(struct reader *r, int out, off_t size, off_t *copied)
{
    *copied = 0;
    while (*copied < size) {
        int rc = reader_fill(r);
        if (rc <= 0)
            return rc == 0 ? COPY_SHORT : COPY_READ_ERROR;
        size_t n = r->end - r->start;
        if ((off_t)n > size - *copied)
            n = (size_t)(size - *copied);
        if (write_all(out, r->buf + r->start, n) < 0)
            return COPY_WRITE_ERROR;
        r->start += n;
        *copied += (off_t)n;
    }
    return COPY_OK;
}

/*** the protocol ***/

struct request {
    int is_put;
    const char *name;
    off_t size;                   /* PUT only */
};

/* Parses a size: one or more ASCII digits and nothing else (no sign, no
 * space, no "0x"), checked for overflow before every step. Returns 0,
 * or -1 if s is not such a number or does not fit in an off_t. */
static int parse_size(const char *s, off_t *out)
{
    long long v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        int d = *s - '0';
        if (v > (LLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = (off_t)v;
    return (long long)*out == v ? 0 : -1;    /* off_t may be narrower */
}

/* Decides whether name may be used as a file in DIR. Returns NULL if
 * so, else the reason to send back. This is the whole defence against
 * path traversal, so it allows rather than forbids: one plain name,
 * nothing that the file system would read as a path. */
static const char *check_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0)
        return "empty name";
    if (len > MAX_NAME_LEN)
        return "name too long";
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '/')
            return "bad name: contains '/'";
        if (c < 0x20 || c == 0x7f)
            return "bad name: control character";
    }
    /* A leading '.' rules out ".", "..", hidden files and our temporaries. */
    if (name[0] == '.')
        return "bad name: starts with '.'";
    return NULL;
}

/* Splits a header line (len bytes, NUL-terminated) into req. Returns
 * NULL, or the reason to send back. Points req->name into line. */
static const char *parse_request(char *line, size_t len, struct request *req)
{
    /* A NUL inside the line would silently cut every C string function
     * short: "GET a.txt\0../x" must not become "GET a.txt". */
    if (memchr(line, '\0', len))
        return "bad request: NUL byte";
    if (strncmp(line, "GET ", 4) == 0) {
        req->is_put = 0;
        req->name = line + 4;
    } else if (strncmp(line, "PUT ", 4) == 0) {
        char *space = strrchr(line + 4, ' ');   /* the size is the last word */
        if (!space)
            return "bad request: PUT needs a size";
        *space = '\0';
        if (parse_size(space + 1, &req->size) < 0)
            return "bad size";
        req->is_put = 1;
        req->name = line + 4;
    } else {
        return "unknown command";
    }
    return check_name(req->name);
}

/*** answering ***/

/* Closes a connection whose request we refused. Closing a socket that
 * still has unread input makes the kernel send RST, and a RST can reach
 * the client before it has read our ERR line, which it then never sees.
 * So: send FIN (shutdown), read and drop what is still coming, for a
 * bounded time and amount, then close. Apache calls this a lingering
 * close. */
static void linger_close(int fd)
{
    struct timeval tv = {LINGER_TIMEOUT_S, 0};
    char buf[4096];
    long dropped = 0;
    if (shutdown(fd, SHUT_WR) == 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0) {
        while (dropped < LINGER_MAX_BYTES && !stop_requested) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n > 0)
                dropped += n;
            else if (n == 0 || errno != EINTR)
                break;             /* EOF, reset or the time is up */
        }
    }
    close(fd);
}

/* Sends "ERR reason\n" (a client that is gone anyway makes this fail,
 * which is fine) and closes. Returns 1, the child's exit status. */
static int refuse(int fd, const char *reason)
{
    char line[MAX_HEADER_LEN];
    int n = snprintf(line, sizeof line, "ERR %s\n", reason);
    if (n > 0 && (size_t)n < sizeof line)
        (void)write_all(fd, line, (size_t)n);
    fprintf(stderr, PROG ": refused: %s\n", reason);
    linger_close(fd);
    return 1;
}

/* GET: "OK size\n", then exactly size bytes of the file. Closes cfd. */
static int handle_get(int cfd, const char *name)
{
    /* O_NOFOLLOW: a symlink planted in DIR is not followed out of it.
     * O_NONBLOCK: opening a FIFO must not hang us (no effect on files). */
    int fd = open(name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        int missing = errno == ENOENT;
        fprintf(stderr, PROG ": %s: %s\n", name, strerror(errno));
        return refuse(cfd, missing ? "no such file" : "cannot open file");
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return refuse(cfd, "not a regular file");
    }
    char head[64];
    int n = snprintf(head, sizeof head, "OK %lld\n", (long long)st.st_size);
    struct reader file = {.fd = fd};
    off_t sent = 0;
    enum copy_result res = COPY_WRITE_ERROR;
    if (write_all(cfd, head, (size_t)n) == 0)
        res = copy_exact(&file, cfd, st.st_size, &sent);
    if (res == COPY_OK)
        fprintf(stderr, PROG ": GET %s: sent %lld bytes\n", name, (long long)sent);
    else    /* after "OK size" there is no way to say ERR: just close */
        fprintf(stderr, PROG ": GET %s: stopped after %lld of %lld bytes: %s\n", name,
                (long long)sent, (long long)st.st_size,
                res == COPY_SHORT ? "the file shrank" : strerror(errno));
    close(fd);
    close(cfd);
    return res == COPY_OK ? 0 : 1;
}

/* PUT: exactly size bytes into a temporary in DIR, renamed to name once
 * complete, then "OK\n". On any failure the temporary is removed before
 * the connection is closed. Closes cfd. */
static int handle_put(int cfd, struct reader *in, const char *name, off_t size)
{
    char tmp[] = TEMP_TEMPLATE;
    int fd = mkstemp(tmp);     /* a new, unique file: never someone else's */
    if (fd < 0) {
        fprintf(stderr, PROG ": mkstemp: %s\n", strerror(errno));
        return refuse(cfd, "cannot store file");
    }
    off_t got = 0;
    enum copy_result res = copy_exact(in, fd, size, &got);
    int saved = errno;
    /* close() can report a failed write (NFS, a full disk): check it. */
    if (close(fd) < 0 && res == COPY_OK) {
        res = COPY_WRITE_ERROR;
        saved = errno;
    }
    if (res == COPY_OK && rename(tmp, name) < 0) {
        res = COPY_WRITE_ERROR;
        saved = errno;
    }
    if (res != COPY_OK) {
        unlink(tmp);
        fprintf(stderr, PROG ": PUT %s: stopped after %lld of %lld bytes: %s\n", name,
                (long long)got, (long long)size,
                res == COPY_SHORT ? "the client closed early" : strerror(saved));
        if (res == COPY_READ_ERROR) {    /* reset, timed out, SIGTERM: no one to tell */
            close(cfd);
            return 1;
        }
        return refuse(cfd, res == COPY_SHORT ? "upload incomplete" : "cannot store file");
    }
    fprintf(stderr, PROG ": PUT %s: stored %lld bytes\n", name, (long long)size);
    int rc = write_all(cfd, "OK\n", 3);
    close(cfd);
    return rc < 0 ? 1 : 0;
}

/* The whole life of one connection, in the child. Closes cfd. Returns
 * the child's exit status. */
static int serve_client(int cfd)
{
    /* Never wait forever for a client that stalls. */
    struct timeval tv = {IO_TIMEOUT_S, 0};
    if (setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
        fprintf(stderr, PROG ": setsockopt: %s\n", strerror(errno));
        close(cfd);
        return 1;
    }
    struct reader in = {.fd = cfd};
    char line[MAX_HEADER_LEN + 1];
    struct request req = {0};
    const char *bad = NULL;
    int status = 1;
    long len = read_line(&in, line, MAX_HEADER_LEN);
    if (len == LINE_EOF) {
        close(cfd);                /* connected and left: nothing to say */
    } else if (len == LINE_ERROR) {
        fprintf(stderr, PROG ": reading request: %s\n", strerror(errno));
        close(cfd);
    } else if (len == LINE_CUT || len == LINE_TOO_LONG) {
        status = refuse(cfd, len == LINE_CUT ? "incomplete request line" : "request line too long");
    } else if ((bad = parse_request(line, (size_t)len, &req)) != NULL) {
        status = refuse(cfd, bad);
    } else if (req.is_put) {
        status = handle_put(cfd, &in, req.name, req.size);
    } else {
        status = handle_get(cfd, req.name);
    }
    return status;
}

/*** listening ***/

/* Binds and listens on addr:port, trying every address getaddrinfo
 * gives. Returns the socket, or -1 with a message printed. */
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
    int fd = -1, err = 0;
    const char *what = "socket";
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;   /* restart at once, even with old connections in TIME_WAIT */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
            what = "setsockopt";
        else if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            what = "bind";
        else if (listen(fd, BACKLOG) < 0)
            what = "listen";
        else
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, PROG ": %s: %s\n", what, strerror(err));
    return fd;
}

/* Prints "listening on ADDR:PORT" with the port the kernel chose. */
static int print_listening(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        fprintf(stderr, PROG ": getsockname: %s\n", strerror(errno));
        return -1;
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
    }
    printf("listening on %s:%u\n", ip, port);
    if (fflush(stdout) == EOF) {
        fprintf(stderr, PROG ": stdout: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* One process per client: the child serves it and exits, the parent
 * goes straight back to accept(). Returns when SIGINT/SIGTERM came. */
static void accept_loop(int lfd)
{
    /* Simplification: a signal that lands between this test and the
     * accept() call is only seen at the next connection. pselect() or
     * the self-pipe trick close that gap (lesson 14). */
    while (!stop_requested) {
        int cfd = accept(lfd, NULL, NULL);
        reap_children();
        if (cfd < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
            continue;
        }
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
            close(cfd);
        } else if (pid == 0) {
            close(lfd);            /* the child serves one client, nothing else */
            exit(serve_client(cfd));
        } else {
            close(cfd);            /* the child has its own copy */
        }
    }
}

/*** main ***/

static void usage(FILE *to)
{
    fprintf(to, "usage: %s -d DIR [-p PORT] [-b ADDR] [-h]\n", PROG);
    if (to == stdout)
        fputs("Serves the files in DIR and stores uploads there, one request per connection:\n"
              "  GET name\\n                ->  OK size\\n + size bytes\n"
              "  PUT name size\\n + bytes   ->  OK\\n\n"
              "  anything wrong            ->  ERR text\\n\n"
              "  -d DIR   the directory to serve (required)\n"
              "  -p PORT  port to listen on (default " DEFAULT_PORT "; 0: any free port)\n"
              "  -b ADDR  address to listen on (default " DEFAULT_ADDR ")\n",
              to);
}

/* A port is 0..65535 in decimal digits, nothing else. */
static int valid_port(const char *s)
{
    size_t len = strlen(s);
    return len >= 1 && len <= 5 && strspn(s, "0123456789") == len &&
           atoi(s) <= 65535;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *port = DEFAULT_PORT, *addr = DEFAULT_ADDR;
    int ch;
    opterr = 0;                    /* our usage line, not getopt's message */
    while ((ch = getopt(argc, argv, "d:p:b:h")) != -1) {
        switch (ch) {
        case 'd': dir = optarg; break;
        case 'p': port = optarg; break;
        case 'b': addr = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !dir || !valid_port(port)) {
        usage(stderr);
        return 2;
    }
    /* Working inside DIR makes every accepted name relative to it. */
    if (chdir(dir) < 0) {
        fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (install_handlers() < 0) {
        fprintf(stderr, PROG ": sigaction: %s\n", strerror(errno));
        return 1;
    }
    int lfd = open_listener(addr, port);
    if (lfd < 0)
        return 1;
    if (print_listening(lfd) < 0) {
        close(lfd);
        return 1;
    }
    accept_loop(lfd);
    /* Children finish the transfers they have; we stop taking new ones. */
    close(lfd);
    reap_children();
    return 0;
}
