/*
 * test_http.c — pier_sync with options.url: the built-in HTTP transport against a tiny
 * single-threaded HTTP/1.1 server inside this test (one background thread, one connection
 * at a time, "Connection: close") that forwards POST /v1/sync to an in-process pier_server
 * and can inject faults: statuses with or without an error frame, Retry-After, a reset
 * connection, a reply lost after the server applied the batch. Also: version-1 option
 * structs are still read (and only their v1 bytes: memcheck sees any over-read), and the
 * option checks (exactly one of server / transport / url).
 */
#define _GNU_SOURCE
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- Error frames (docs/PROTOCOL.md sections 2 and 5.3) ----------------------------- */

static uint32_t crc32_of(const unsigned char *p, size_t n, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static size_t put_uvarint(unsigned char *out, uint64_t v) {
    size_t n = 0;
    do {
        unsigned char b = v & 0x7f;
        v >>= 7;
        out[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

static void put_u32le(unsigned char *out, uint32_t v) {
    for (int i = 0; i < 4; i++) out[i] = (unsigned char)(v >> (8 * i));
}

/* Writes an uncompressed error frame into out (at least 64 + strlen(message) bytes). */
static size_t error_frame(unsigned char *out, int code, const char *message) {
    unsigned char payload[512];
    size_t n = put_uvarint(payload, 0);
    int64_t c = code;
    n += put_uvarint(payload + n, ((uint64_t)c << 1) ^ (uint64_t)(c >> 63));
    size_t len = strlen(message);
    n += put_uvarint(payload + n, len);
    memcpy(payload + n, message, len);
    n += len;
    memcpy(out, "PIER\x01\x03\x00\x01", 8);
    put_u32le(out + 8, (uint32_t)n);
    put_u32le(out + 12, (uint32_t)n);
    uint32_t crc = crc32_of(out, 16, 0);
    crc = crc32_of(payload, n, crc);
    put_u32le(out + 16, crc);
    memcpy(out + 20, payload, n);
    return 20 + n;
}

/* ---- The fault-injecting front -------------------------------------------------------- */

enum { FORWARD, STATUS, RESET, LOST_REPLY };

typedef struct {
    int kind;
    int status;
    const char *headers;  /* extra header lines, each ending in \r\n, or NULL */
    int frame_code;       /* nonzero: the body is an error frame with this code... */
    const char *message;  /* ...and this message; or the raw body when frame_code is 0 */
} fault;

typedef struct {
    pier_server *server;
    int listener;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    fault faults[16];
    int fault_count;
    int next_fault;
    int requests;
    int forwarded;
    char authorization[256];
    int stop;
} front;

static int read_all(int fd, unsigned char *buffer, size_t want) {
    size_t have = 0;
    while (have < want) {
        ssize_t n = recv(fd, buffer + have, want - have, 0);
        if (n <= 0) return -1;
        have += (size_t)n;
    }
    return 0;
}

static void send_all(int fd, const void *data, size_t length) {
    const char *p = data;
    while (length > 0) {
        ssize_t n = send(fd, p, length, MSG_NOSIGNAL);
        if (n <= 0) return;
        p += n;
        length -= (size_t)n;
    }
}

static void abortive_close(int fd) {
    struct linger hard = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close(fd);
}

static void send_response(int fd, int status, const char *headers, const unsigned char *body, size_t length) {
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/vnd.pier.frame\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, length, headers ? headers : "");
    send_all(fd, head, (size_t)n);
    if (length) send_all(fd, body, length);
}

/* Finds a header's value (case-insensitive name) in the NUL-terminated head. */
static const char *header_value(const char *head, const char *name) {
    size_t length = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, length) == 0 && line[2 + length] == ':') {
            const char *value = line + 3 + length;
            while (*value == ' ') value++;
            return value;
        }
    }
    return NULL;
}

static void serve_one(front *f, int fd) {
    struct timeval five = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
    char head[8192];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have + 1 >= sizeof head) { close(fd); return; }
        ssize_t n = recv(fd, head + have, sizeof head - 1 - have, 0);
        if (n <= 0) { close(fd); return; }
        have += (size_t)n;
        head[have] = 0;
        end = strstr(head, "\r\n\r\n");
    }
    size_t head_length = (size_t)(end + 4 - head);
    const char *length_text = header_value(head, "Content-Length");
    size_t length = length_text ? strtoul(length_text, NULL, 10) : 0;
    unsigned char *body = malloc(length + 1);
    size_t already = have - head_length;
    if (already > length) already = length;
    memcpy(body, head + head_length, already);
    if (read_all(fd, body + already, length - already) != 0) { free(body); close(fd); return; }

    pthread_mutex_lock(&f->lock);
    f->requests++;
    fault what = {FORWARD, 200, NULL, 0, NULL};
    if (f->next_fault < f->fault_count) what = f->faults[f->next_fault++];
    const char *auth = header_value(head, "Authorization");
    f->authorization[0] = 0;
    if (auth) {
        size_t n = strcspn(auth, "\r\n");
        if (n >= sizeof f->authorization) n = sizeof f->authorization - 1;
        memcpy(f->authorization, auth, n);
        f->authorization[n] = 0;
    }
    pthread_mutex_unlock(&f->lock);

    if (strncmp(head, "POST /v1/sync ", 14) != 0) {
        send_response(fd, 404, NULL, (const unsigned char *)"no", 2);
    } else if (what.kind == STATUS) {
        unsigned char frame[600];
        size_t n = 0;
        if (what.frame_code) n = error_frame(frame, what.frame_code, what.message);
        else if (what.message) { n = strlen(what.message); memcpy(frame, what.message, n); }
        send_response(fd, what.status, what.headers, frame, n);
    } else if (what.kind == RESET) {
        abortive_close(fd);
        free(body);
        return;
    } else {
        unsigned char *frame = NULL;
        size_t frame_length = 0;
        int rc = pier_server_handle(f->server, &frame, &frame_length, body, length, NULL);
        pthread_mutex_lock(&f->lock);
        f->forwarded++;
        pthread_mutex_unlock(&f->lock);
        if (rc != PIER_OK) {
            send_response(fd, 500, NULL, NULL, 0);
        } else if (what.kind == LOST_REPLY) {
            char headline[256];
            int n = snprintf(headline, sizeof headline,
                             "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.pier.frame\r\nContent-Length: %zu\r\n\r\n",
                             frame_length);
            send_all(fd, headline, (size_t)n);
            send_all(fd, frame, frame_length / 2);
            pier_free(frame);
            free(body);
            abortive_close(fd);
            return;
        } else {
            send_response(fd, 200, NULL, frame, frame_length);
        }
        pier_free(frame);
    }
    free(body);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void *front_main(void *argument) {
    front *f = argument;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        int stop = f->stop;
        pthread_mutex_unlock(&f->lock);
        if (stop) return NULL;
        struct pollfd p = {f->listener, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(f->listener, NULL, NULL);
        if (fd >= 0) serve_one(f, fd);
    }
}

static int front_start(front *f, pier_server *server) {
    memset(f, 0, sizeof *f);
    f->server = server;
    pthread_mutex_init(&f->lock, NULL);
    f->listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (f->listener < 0 || bind(f->listener, (struct sockaddr *)&address, size) != 0 || listen(f->listener, 16) != 0 ||
        getsockname(f->listener, (struct sockaddr *)&address, &size) != 0) {
        t_fail(__FILE__, __LINE__, "cannot listen on 127.0.0.1: %s", strerror(errno));
        return -1;
    }
    f->port = ntohs(address.sin_port);
    if (pthread_create(&f->thread, NULL, front_main, f) != 0) return -1;
    return 0;
}

static void front_stop(front *f) {
    pthread_mutex_lock(&f->lock);
    f->stop = 1;
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);
    close(f->listener);
    pthread_mutex_destroy(&f->lock);
}

static void inject(front *f, fault what) {
    pthread_mutex_lock(&f->lock);
    if (f->fault_count < 16) f->faults[f->fault_count++] = what;
    pthread_mutex_unlock(&f->lock);
}

static const char *front_url(front *f) {
    static char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    return url;
}

/* ---- Helpers ------------------------------------------------------------------------- */

/* Puts `prefix`0 .. `prefix`(n-1) with the same body; the first failure's status. */
static int put_numbered(pier_db *db, const char *collection, const char *prefix, int n, const char *json) {
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        int rc = t_put(db, collection, id, json);
        if (rc != PIER_OK) return rc;
    }
    return PIER_OK;
}

/* Lines in the server's business log. */
static int64_t log_lines(pier_server *server) {
    char *json = NULL;
    if (pier_server_log(server, &json, NULL, NULL) != PIER_OK) return -1;
    int64_t n = strtoll(t_json_eval("SELECT json_array_length(?1)", json), NULL, 10);
    pier_free(json);
    return n;
}

/* Options for quick retries against the front. */
static pier_sync_options http_options(front *f) {
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.url = front_url(f);
    options.max_attempts = 6;
    options.retry_base_delay_ms = 1;
    options.retry_max_delay_ms = 20;
    return options;
}

static int requests(front *f) {
    pthread_mutex_lock(&f->lock);
    int n = f->requests;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* ---- Tests --------------------------------------------------------------------------- */

static void test_round_trip(void) {
    pier_server *server = NULL;
    REQUIRE_RC(pier_server_open(&server, t_path("http-server"), NULL), PIER_OK);
    front f;
    REQUIRE(front_start(&f, server) == 0);
    pier_db *a = t_open("http-a");
    pier_db *b = t_open("http-b");
    REQUIRE(a && b);
    REQUIRE_RC(t_put(a, "notes", "n1", "{\"text\":\"one\"}"), PIER_OK);
    REQUIRE_RC(t_put(a, "notes", "n2", "{\"text\":\"two\"}"), PIER_OK);

    pier_sync_options options = http_options(&f);
    options.token = "s3cret";
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(a, &report, &options), PIER_OK);
    CHECK(report.pushed == 2 && report.applied == 2);
    CHECK(report.bytes_sent > 0 && report.bytes_received > 0);
    CHECK_STR(f.authorization, "Bearer s3cret");

    pier_sync_options plain = http_options(&f);
    CHECK_RC(pier_sync(b, NULL, &plain), PIER_OK);
    CHECK(t_count(b, "notes") == 2);
    CHECK_STR(f.authorization, "");

    pier_db_free(a);
    pier_db_free(b);
    front_stop(&f);
    pier_server_free(server);
}

static void test_transient_faults_converge(void) {
    pier_server *server = NULL;
    REQUIRE_RC(pier_server_open(&server, t_path("http-server"), NULL), PIER_OK);
    front f;
    REQUIRE(front_start(&f, server) == 0);
    pier_db *db = t_open("http-faults");
    REQUIRE(db);
    REQUIRE_RC(put_numbered(db, "readings", "r", 4, "{\"v\":1}"), PIER_OK);
    inject(&f, (fault){STATUS, 503, "Retry-After: 0\r\n", PIER_EBUSY, "master store unavailable"});
    inject(&f, (fault){RESET, 0, NULL, 0, NULL});
    inject(&f, (fault){LOST_REPLY, 0, NULL, 0, NULL}); /* applied on the server, reply lost */
    inject(&f, (fault){STATUS, 502, NULL, 0, "<html>bad gateway</html>"});
    pier_sync_options options = http_options(&f);
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(db, &report, &options), PIER_OK);
    CHECK(report.pushed == 4 && report.applied == 4);
    CHECK(requests(&f) >= 5);
    CHECK(log_lines(server) == 4); /* each change applied (and logged) exactly once */
    int state = -1;
    CHECK_RC(pier_db_state(db, &state, "readings", "r3"), PIER_OK);
    CHECK(state == PIER_STATE_SYNCED);
    pier_db_free(db);
    front_stop(&f);
    pier_server_free(server);
}

static void test_client_errors_are_not_retried(void) {
    pier_server *server = NULL;
    REQUIRE_RC(pier_server_open(&server, t_path("http-server"), NULL), PIER_OK);
    front f;
    REQUIRE(front_start(&f, server) == 0);
    pier_db *db = t_open("http-4xx");
    REQUIRE(db);
    REQUIRE_RC(t_put(db, "c", "x", "{}"), PIER_OK);
    pier_sync_options options = http_options(&f);

    inject(&f, (fault){STATUS, 401, "WWW-Authenticate: Bearer\r\n", PIER_EAUTH, "invalid credentials"});
    CHECK_RC(pier_sync(db, NULL, &options), PIER_EAUTH);
    CHECK_CONTAINS(pier_errmsg(), "invalid credentials");
    CHECK(requests(&f) == 1);

    inject(&f, (fault){STATUS, 403, NULL, 0, NULL});
    CHECK_RC(pier_sync(db, NULL, &options), PIER_EFORBIDDEN);
    CHECK(requests(&f) == 2);

    inject(&f, (fault){STATUS, 413, NULL, 0, "too large"});
    CHECK_RC(pier_sync(db, NULL, &options), PIER_ELIMIT);
    CHECK(requests(&f) == 3);

    inject(&f, (fault){STATUS, 400, NULL, PIER_EPROTOCOL, "bad frame"});
    CHECK_RC(pier_sync(db, NULL, &options), PIER_EPROTOCOL);
    CHECK(requests(&f) == 4);
    CHECK(f.forwarded == 0);

    /* Nothing was lost. */
    CHECK_RC(pier_sync(db, NULL, &options), PIER_OK);
    CHECK(log_lines(server) == 1);
    pier_db_free(db);
    front_stop(&f);
    pier_server_free(server);
}

static void test_exhausted_retries(void) {
    pier_server *server = NULL;
    REQUIRE_RC(pier_server_open(&server, t_path("http-server"), NULL), PIER_OK);
    front f;
    REQUIRE(front_start(&f, server) == 0);
    pier_db *db = t_open("http-exhausted");
    REQUIRE(db);
    REQUIRE_RC(t_put(db, "c", "x", "{}"), PIER_OK);
    for (int i = 0; i < 3; i++) inject(&f, (fault){STATUS, 503, "Retry-After: 0\r\n", PIER_EBUSY, "shutting down"});
    pier_sync_options options = http_options(&f);
    options.max_attempts = 3;
    CHECK_RC(pier_sync(db, NULL, &options), PIER_ENETWORK);
    CHECK_CONTAINS(pier_errmsg(), "503");
    CHECK_CONTAINS(pier_errmsg(), "3 attempts");
    CHECK(requests(&f) == 3);
    int state = -1;
    CHECK_RC(pier_db_state(db, &state, "c", "x"), PIER_OK);
    CHECK(state == PIER_STATE_PENDING);
    pier_db_free(db);
    front_stop(&f);
    pier_server_free(server);
}

static void test_unreachable(void) {
    /* A port that was free a moment ago: connection refused, retried, then PIER_ENETWORK. */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    REQUIRE(bind(probe, (struct sockaddr *)&address, size) == 0);
    REQUIRE(getsockname(probe, (struct sockaddr *)&address, &size) == 0);
    close(probe);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(address.sin_port));

    pier_db *db = t_open("http-unreachable");
    REQUIRE(db);
    REQUIRE_RC(t_put(db, "c", "x", "{}"), PIER_OK);
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.url = url;
    options.max_attempts = 2;
    options.retry_base_delay_ms = 1;
    options.connect_timeout_ms = 2000;
    CHECK_RC(pier_sync(db, NULL, &options), PIER_ENETWORK);
    CHECK_CONTAINS(pier_errmsg(), "2 attempts");
    pier_db_free(db);
}

static void test_options(void) {
    pier_server *server = NULL;
    REQUIRE_RC(pier_server_open(&server, t_path("http-server"), NULL), PIER_OK);
    pier_db *db = t_open("http-options");
    REQUIRE(db);
    REQUIRE_RC(t_put(db, "c", "x", "{}"), PIER_OK);

    pier_sync_options two = PIER_SYNC_OPTIONS_INIT;
    two.server = server;
    two.url = "http://127.0.0.1:1";
    CHECK_RC(pier_sync(db, NULL, &two), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "exactly one");

    pier_sync_options none = PIER_SYNC_OPTIONS_INIT;
    CHECK_RC(pier_sync(db, NULL, &none), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "url");

    pier_sync_options token_only = PIER_SYNC_OPTIONS_INIT;
    token_only.server = server;
    token_only.token = "t";
    CHECK_RC(pier_sync(db, NULL, &token_only), PIER_EINVALID);

    pier_sync_options ftp = PIER_SYNC_OPTIONS_INIT;
    ftp.url = "ftp://127.0.0.1/";
    CHECK_RC(pier_sync(db, NULL, &ftp), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "http://");

    pier_sync_options injected = PIER_SYNC_OPTIONS_INIT;
    injected.url = "http://127.0.0.1:1";
    injected.token = "a\r\nX-Evil: 1";
    CHECK_RC(pier_sync(db, NULL, &injected), PIER_EINVALID);

    /* A caller built against version 1 of the header passes a shorter struct. Only its v1
     * bytes may be read: the block below is exactly that long, so memcheck reports any
     * read of the HTTP fields. */
    pier_sync_options current = PIER_SYNC_OPTIONS_INIT;
    current.version = 1;
    current.server = server;
    size_t v1_size = offsetof(pier_sync_options, url);
    void *v1 = malloc(v1_size);
    REQUIRE(v1);
    memcpy(v1, &current, v1_size);
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(db, &report, (const pier_sync_options *)v1), PIER_OK);
    CHECK(report.pushed == 1);
    free(v1);

    pier_db_free(db);
    pier_server_free(server);
}

/* ---- Pipelined pulls ---------------------------------------------------------------- */

typedef struct {
    front *f;
    int pages;      /* progress calls while the server had more */
    int ahead;      /* of those, how many found the next request already at the front */
} pull_watch;

/* Runs after each applied page on the syncing thread. With pipelining the request for the
 * next page left before this page was applied, so it reaches the front even while this
 * callback holds the syncing thread; a sequential client would send it only afterwards. */
static void watch_progress(void *ctx, const pier_sync_progress *p) {
    pull_watch *w = ctx;
    if (!p->pulling) return;
    w->pages++;
    for (int waited = 0; waited < 10000 && requests(w->f) <= p->round_trips; waited += 2) usleep(2000);
    if (requests(w->f) == p->round_trips + 1) w->ahead++;
}

typedef struct {
    pthread_t caller;
    int lines;
    int elsewhere;  /* lines delivered on another thread than the syncing one */
} log_watch;

static void watch_log(void *ctx, int level, const char *message) {
    (void)level;
    log_watch *w = ctx;
    if (strstr(message, "http:") == NULL) return;
    w->lines++;
    if (!pthread_equal(pthread_self(), w->caller)) w->elsewhere++;
}

static void test_long_pull_is_pipelined(void) {
    pier_server *server = NULL;
    REQUIRE_RC(pier_server_open(&server, t_path("http-server"), NULL), PIER_OK);
    pier_db *seed = t_open("http-seed");
    REQUIRE(seed);
    REQUIRE_RC(put_numbered(seed, "customers", "c", 100, "{\"name\":\"customer\"}"), PIER_OK);
    pier_sync_options direct = PIER_SYNC_OPTIONS_INIT;
    direct.server = server;
    REQUIRE_RC(pier_sync(seed, NULL, &direct), PIER_OK);
    front f;
    REQUIRE(front_start(&f, server) == 0);

    /* A whole pull in pages of 10, each next page requested before the one before is applied. */
    pier_db *reader = t_open("http-reader");
    REQUIRE(reader);
    pull_watch watch = {&f, 0, 0};
    pier_sync_options options = http_options(&f);
    options.pull_max_records = 10;
    options.progress = watch_progress;
    options.progress_ctx = &watch;
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(reader, &report, &options), PIER_OK);
    CHECK(report.pulled == 100);
    CHECK(t_count(reader, "customers") == 100);
    CHECK(watch.pages >= 9);
    CHECK(watch.ahead == watch.pages);
    CHECK(requests(&f) == report.round_trips);

    /* The third request (sent ahead while page 2 is applied) is refused: pages 1 and 2
     * stay, the next sync pulls the rest. Its retry of a 503 first logs a line on the
     * helper thread, which the log callback must receive on this thread. */
    pier_db *late = t_open("http-late");
    REQUIRE(late);
    log_watch logs = {pthread_self(), 0, 0};
    REQUIRE_RC(pier_log_set_callback(watch_log, &logs, PIER_LOG_INFO), PIER_OK);
    inject(&f, (fault){FORWARD, 0, NULL, 0, NULL});
    inject(&f, (fault){FORWARD, 0, NULL, 0, NULL});
    inject(&f, (fault){STATUS, 503, "Retry-After: 0\r\n", PIER_EBUSY, "master store unavailable"});
    inject(&f, (fault){STATUS, 400, NULL, PIER_EPROTOCOL, "refused on purpose"});
    pier_sync_options failing = http_options(&f);
    failing.pull_max_records = 10;
    int before = requests(&f);
    CHECK_RC(pier_sync(late, NULL, &failing), PIER_EPROTOCOL);
    CHECK_CONTAINS(pier_errmsg(), "refused on purpose");
    pier_log_set_callback(NULL, NULL, PIER_LOG_INFO);
    CHECK(requests(&f) - before == 4);
    CHECK(t_count(late, "customers") == 20);
    CHECK(logs.lines >= 1);
    CHECK(logs.elsewhere == 0);
    pier_sync_options again = http_options(&f);
    again.pull_max_records = 10;
    CHECK_RC(pier_sync(late, &report, &again), PIER_OK);
    CHECK(report.pulled == 80);
    CHECK(t_count(late, "customers") == 100);

    pier_db_free(seed);
    pier_db_free(reader);
    pier_db_free(late);
    front_stop(&f);
    pier_server_free(server);
}

static const pier_test tests[] = {
    {"round_trip", test_round_trip},
    {"transient_faults_converge", test_transient_faults_converge},
    {"client_errors_are_not_retried", test_client_errors_are_not_retried},
    {"exhausted_retries", test_exhausted_retries},
    {"unreachable", test_unreachable},
    {"options", test_options},
    {"long_pull_is_pipelined", test_long_pull_is_pipelined},
};

int main(int argc, char **argv) { return RUN_TESTS(tests); }
