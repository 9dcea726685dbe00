/*
 * fuzz_request.c - libFuzzer target for lesson 14's request parser.
 *
 *     make fuzz                  fuzz for FUZZ_SECONDS (60) from the seeds
 *     make fuzz FUZZ_SECONDS=600
 *
 * It compiles the solution itself (its main renamed away) and feeds
 * http_parse_request() and resolve_path() arbitrary bytes, checking what
 * they promise: a complete request never claims more bytes than it was
 * given, its fields point inside the input, an error is a real HTTP
 * status, and a resolved path is relative with no ".." segment left.
 * Any input that breaks a promise, or that AddressSanitizer or UBSan
 * catches, is saved under build/fuzz/; copy it into tests/fuzz/corpus/
 * and it is replayed by every `make test` from then on.
 */
#define main http_server_main
#include "../../solutions/14-event-server/http_server.c"
#undef main

#include <assert.h>

static void check_path(const char *target, size_t len)
{
    char rel[MAX_PATH_BYTES];
    int dir_form;
    if (resolve_path(target, len, rel, sizeof rel, &dir_form) != 0)
        return;
    assert(rel[0] != '/' && rel[0] != '\0');
    /* No segment of the result may be "..": it would climb out of DIR. */
    for (const char *seg = rel; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL)
        assert(!(seg[0] == '.' && seg[1] == '.' && (seg[2] == '/' || seg[2] == '\0')));
    assert(strchr(rel, '\\') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct request req;
    size_t used = 0;
    int status = http_parse_request(buf, size, &req, &used);
    if (status == 0) {
        assert(used > 0 && used <= size);
        assert(req.method >= buf && req.method + req.method_len <= buf + used);
        assert(req.target >= buf && req.target + req.target_len <= buf + used);
        assert(req.target_len > 0 && req.target[0] == '/');
        assert(req.minor == 0 || req.minor == 1);
        if (req.ims)
            (void)parse_http_date(req.ims, req.ims_len);
        check_path(req.target, req.target_len);
    } else {
        assert(status == PARSE_AGAIN || status == 400 || status == 414 || status == 431 ||
               status == 501 || status == 505);
    }
    /* The path code on its own, with the raw bytes as a target. */
    if (size > 0 && size < 4096 && buf[0] == '/')
        check_path(buf, size);
    return 0;
}
