/* shortio.c - test equipment: makes one program's socket writes short.
 *
 * The kernel may take fewer bytes than a send() or write() offers (a
 * signal arrives while the send buffer is full; a non-blocking socket has
 * only a little room), and a non-blocking socket may refuse with EAGAIN.
 * On loopback, with a peer that reads, that almost never happens, so a
 * program with no full-send loop passes every honest test. Preloaded, this
 * library makes it happen on every call:
 *
 *     LD_PRELOAD=build/support/shortio.so SHORTIO_PROG=echo_server \
 *         SHORTIO_MAX=7 SHORTIO_EAGAIN=30 build/lessons/06-echo-server/echo_server
 *
 *   SHORTIO_PROG    only the program of this name (the basename of
 *                   /proc/self/exe) is affected; others pass through.
 *                   Unset: every program that loads the library.
 *   SHORTIO_MAX     each write to a socket passes 1..MAX bytes (default 7).
 *   SHORTIO_EAGAIN  percent of writes to a NON-blocking socket that fail
 *                   with EAGAIN before writing anything (default 0). Never
 *                   on a blocking socket: there it would be a lie.
 *
 * Both behaviours are ones POSIX allows, so a correct program still sends
 * every byte; it only takes more calls. Covered: write, send, sendto,
 * sendmsg, writev, and sendfile (Linux). Only sockets are touched: files,
 * pipes and terminals pass through.
 *
 * Build: cc -shared -fPIC -o shortio.so shortio.c -ldl (Linux). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sendfile.h>
#endif

static int active = -1;      /* -1: not decided yet */
static size_t max_bytes = 7;
static unsigned eagain_percent;
static unsigned long rng = 88172645463325252UL;

static void decide(void)
{
    const char *want = getenv("SHORTIO_PROG"), *s;
    active = 1;
    if (want && *want) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n < 0)
            active = 0;
        else {
            exe[n] = '\0';
            const char *base = strrchr(exe, '/');
            active = strcmp(base ? base + 1 : exe, want) == 0;
        }
    }
    if ((s = getenv("SHORTIO_MAX")) && atol(s) > 0)
        max_bytes = (size_t)atol(s);
    if ((s = getenv("SHORTIO_EAGAIN")))
        eagain_percent = (unsigned)atoi(s);
    rng ^= (unsigned long)getpid() << 16;
}

static unsigned long next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* How many of len bytes this call may pass, or 0 with errno EAGAIN for a
 * refused call. Returns len itself when fd is not ours to shorten. */
static size_t allowance(int fd, size_t len, int flags)
{
    struct stat st;
    if (active < 0)
        decide();
    if (!active || len == 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return len;
    int fl = fcntl(fd, F_GETFL);
    int nonblocking = (fl >= 0 && (fl & O_NONBLOCK)) || (flags & MSG_DONTWAIT);
    if (nonblocking && eagain_percent && next_random() % 100 < eagain_percent) {
        errno = EAGAIN;
        return 0;
    }
    size_t n = 1 + next_random() % max_bytes;
    return n < len ? n : len;
}

#define REAL(name) static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t len)
{
    REAL(write);
    size_t n = allowance(fd, len, 0);
    return n ? real_write(fd, buf, n) : (len ? -1 : real_write(fd, buf, len));
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    REAL(send);
    size_t n = allowance(fd, len, flags);
    return n ? real_send(fd, buf, n, flags) : (len ? -1 : real_send(fd, buf, len, flags));
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags,
               const struct sockaddr *to, socklen_t tolen)
{
    REAL(sendto);
    size_t n = allowance(fd, len, flags);
    return n ? real_sendto(fd, buf, n, flags, to, tolen)
             : (len ? -1 : real_sendto(fd, buf, len, flags, to, tolen));
}

/* writev and sendmsg pass only the first n bytes of their vectors. */
static int shorten_iov(const struct iovec *iov, int cnt, size_t n, struct iovec *out)
{
    int k = 0;
    for (int i = 0; i < cnt && n > 0 && k < 64; i++) {
        out[k].iov_base = iov[i].iov_base;
        out[k].iov_len = iov[i].iov_len < n ? iov[i].iov_len : n;
        n -= out[k].iov_len;
        k++;
    }
    return k;
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t t = 0;
    for (int i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev);
    size_t len = iov_total(iov, cnt), n = allowance(fd, len, 0);
    if (n == len)
        return real_writev(fd, iov, cnt);
    if (n == 0)
        return -1;
    struct iovec v[64];
    return real_writev(fd, v, shorten_iov(iov, cnt, n, v));
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    REAL(sendmsg);
    size_t len = iov_total(msg->msg_iov, (int)msg->msg_iovlen), n = allowance(fd, len, flags);
    if (n == len)
        return real_sendmsg(fd, msg, flags);
    if (n == 0)
        return -1;
    struct iovec v[64];
    struct msghdr m = *msg;
    m.msg_iov = v;
    m.msg_iovlen = (size_t)shorten_iov(msg->msg_iov, (int)msg->msg_iovlen, n, v);
    return real_sendmsg(fd, &m, flags);
}

#ifdef __linux__
ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
    REAL(sendfile);
    size_t n = allowance(out, count, 0);
    return n ? real_sendfile(out, in, off, n) : (count ? -1 : real_sendfile(out, in, off, count));
}
#endif
