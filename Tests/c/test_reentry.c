/*
 * test_reentry.c — callbacks that call back into the handle whose call is running them.
 *
 * pier.h: a callback must not call Pier on that handle; such calls return PIER_ESTATE and
 * change nothing. That includes the close and free functions, which take the handle's
 * lock like every other call and used to abort the process ("Recursive call to lock
 * Mutex") instead. Each test makes the forbidden calls from inside the callback, then
 * checks that the outer call still completes normally and the handle still works.
 */
#define _GNU_SOURCE
#include "test.h"

#include <stdlib.h>

static int sync_with(pier_db *db, pier_server *server) {
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    return pier_sync(db, NULL, &options);
}

/* Log lines at warning and above that mention `needle`. */
typedef struct {
    const char *needle;
    int hits;
} log_watch;

static void on_log(void *ctx, int level, const char *message) {
    log_watch *watch = ctx;
    if (level >= PIER_LOG_WARN && message && strstr(message, watch->needle)) watch->hits++;
}

/* ---- pier_db_close / pier_db_free from pier_sync's callbacks ------------------------ */

typedef struct {
    pier_db *db;           /* the handle being synced */
    pier_server *server;   /* for the host transport */
    unsigned char *response;
    int calls;
} db_reentry;

/* What every callback below does: the forbidden calls, each PIER_ESTATE, nothing changed. */
static void close_and_free_from_callback(db_reentry *r) {
    r->calls++;
    CHECK_RC(pier_db_close(r->db), PIER_ESTATE);
    CHECK_CONTAINS(pier_errmsg(), "pier_db_close");
    CHECK_CONTAINS(pier_errmsg(), "callback");
    pier_db_free(r->db); /* no status: a no-op that says so */
    CHECK_CONTAINS(pier_errmsg(), "pier_db_free");
    CHECK_CONTAINS(pier_errmsg(), "not freed");
    /* An ordinary call gets the same answer (this already worked). */
    CHECK_RC(t_put(r->db, "notes", "from-callback", "{}"), PIER_ESTATE);
}

static void progress_reenters(void *ctx, const pier_sync_progress *progress) {
    (void)progress;
    close_and_free_from_callback(ctx);
}

static int transport_reenters(void *ctx, const unsigned char *request, size_t request_len,
                              const unsigned char **out_response, size_t *out_len) {
    db_reentry *r = ctx;
    close_and_free_from_callback(r);
    pier_free(r->response);
    r->response = NULL;
    int rc = pier_server_handle(r->server, &r->response, out_len, request, request_len, NULL);
    *out_response = r->response;
    return rc;
}

static int resolver_reenters(void *ctx, const pier_conflict *conflict, const char **out_body, size_t *out_len) {
    (void)conflict; (void)out_body; (void)out_len;
    close_and_free_from_callback(ctx);
    return PIER_RESOLVE_KEEP_SERVER;
}

/* After the sync: the handle is open, synced and usable, and closes normally. */
static void check_db_still_usable(pier_db *db, pier_server *server) {
    int state = -1;
    CHECK_RC(pier_db_state(db, &state, "notes", "n1"), PIER_OK);
    CHECK(state == PIER_STATE_SYNCED);
    CHECK_RC(t_put(db, "notes", "after", "{\"ok\":true}"), PIER_OK);
    CHECK(t_count(db, "notes") == 2);
    CHECK_RC(sync_with(db, server), PIER_OK);
    CHECK_RC(pier_db_close(db), PIER_OK);
    int64_t n = 0;
    CHECK_RC(pier_db_count(db, &n, "notes"), PIER_ECLOSED);
    pier_db_free(db);
}

static void test_db_close_free_from_progress(void) {
    pier_server *server = t_open_server("progress-server", NULL);
    pier_db *db = t_open("progress-client");
    REQUIRE(server && db);
    REQUIRE_RC(t_put(db, "notes", "n1", "{\"text\":\"hello\"}"), PIER_OK);

    log_watch watch = {"pier_db_free", 0};
    REQUIRE_RC(pier_log_set_callback(on_log, &watch, PIER_LOG_WARN), PIER_OK);
    db_reentry r = {db, server, NULL, 0};
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    options.progress = progress_reenters;
    options.progress_ctx = &r;
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(db, &report, &options), PIER_OK);
    CHECK_RC(pier_log_set_callback(NULL, NULL, PIER_LOG_ERROR), PIER_OK);
    CHECK(r.calls >= 1);
    CHECK(watch.hits == r.calls); /* each ignored free logged a warning */
    CHECK(report.pushed == 1);

    check_db_still_usable(db, server);
    pier_server_free(server);
}

static void test_db_close_free_from_transport(void) {
    pier_server *server = t_open_server("transport-server", NULL);
    pier_db *db = t_open("transport-client");
    REQUIRE(server && db);
    REQUIRE_RC(t_put(db, "notes", "n1", "{\"text\":\"hello\"}"), PIER_OK);

    db_reentry r = {db, server, NULL, 0};
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.transport = transport_reenters;
    options.transport_ctx = &r;
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(db, &report, &options), PIER_OK);
    pier_free(r.response);
    CHECK(r.calls >= 1);
    CHECK(report.pushed == 1);

    check_db_still_usable(db, server);
    pier_server_free(server);
}

static void test_db_close_free_from_client_resolver(void) {
    pier_server *server = t_open_server("resolver-server", "{\"collections\": {\"notes\": {\"policy\": \"manual\"}}}");
    pier_db *a = t_open("resolver-a");
    pier_db *b = t_open("resolver-b");
    REQUIRE(server && a && b);
    /* A conflict on notes/n1 for b. */
    REQUIRE_RC(t_put(a, "notes", "n1", "{\"v\":0}"), PIER_OK);
    REQUIRE_RC(sync_with(a, server), PIER_OK);
    REQUIRE_RC(sync_with(b, server), PIER_OK);
    REQUIRE_RC(t_put(a, "notes", "n1", "{\"v\":\"a\"}"), PIER_OK);
    REQUIRE_RC(sync_with(a, server), PIER_OK);
    REQUIRE_RC(t_put(b, "notes", "n1", "{\"v\":\"b\"}"), PIER_OK);

    db_reentry r = {b, server, NULL, 0};
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    options.resolver = resolver_reenters;
    options.resolver_ctx = &r;
    CHECK_RC(pier_sync(b, NULL, &options), PIER_OK);
    CHECK(r.calls >= 1);
    /* The resolver's decision (keep the server copy) still took effect. */
    char *body = NULL;
    REQUIRE_RC(pier_db_get(b, &body, NULL, "notes", "n1"), PIER_OK);
    CHECK_STR(body, "{\"v\":\"a\"}");
    pier_free(body);

    check_db_still_usable(b, server);
    pier_db_free(a);
    pier_server_free(server);
}

/* ---- pier_server_* from the server's own resolver ----------------------------------- */

typedef struct {
    pier_server *server;
    pier_db *other;    /* a client that is not syncing, for pier_sync with this server */
    int calls;
} server_reentry;

static int other_resolver(void *ctx, const pier_resolver_input *input, const char **out_body, size_t *out_len) {
    (void)ctx; (void)input; (void)out_body; (void)out_len;
    return PIER_DECIDE_REJECT;
}

static int server_resolver_reenters(void *ctx, const pier_resolver_input *input, const char **out_body, size_t *out_len) {
    server_reentry *r = ctx;
    r->calls++;
    pier_server *server = r->server;

    /* Replacing its own resolver mid-batch. */
    CHECK_RC(pier_server_set_resolver(server, "orders", other_resolver, NULL), PIER_ESTATE);
    CHECK_CONTAINS(pier_errmsg(), "pier_server_set_resolver");
    CHECK_RC(pier_server_set_resolver(server, "orders", NULL, NULL), PIER_ESTATE);

    /* Handling another request: no error frame with PIER_OK, but PIER_ESTATE. */
    static const unsigned char request[] = "not a frame";
    unsigned char *frame = T_SENTINEL;
    size_t frame_len = 99;
    CHECK_RC(pier_server_handle(server, &frame, &frame_len, request, sizeof request - 1, NULL), PIER_ESTATE);
    CHECK_CONTAINS(pier_errmsg(), "pier_server_handle");
    CHECK_NULL_OUT(frame);
    CHECK(frame_len == 0);

    /* The other calls on the server, and an in-process sync with it. */
    char *json = NULL;
    CHECK_RC(pier_server_log(server, &json, NULL, NULL), PIER_ESTATE);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_server_conflicts(server, &json, NULL, NULL, 0), PIER_ESTATE);
    CHECK_NULL_OUT(json);
    int64_t purged = -1;
    CHECK_RC(pier_server_purge_tombstones(server, &purged, -1), PIER_ESTATE);
    CHECK_RC(sync_with(r->other, server), PIER_ESTATE);
    CHECK_CONTAINS(pier_errmsg(), "pier_sync");

    /* Closing or freeing it (these took the store's lock, held by this batch). */
    CHECK_RC(pier_server_close(server), PIER_ESTATE);
    CHECK_CONTAINS(pier_errmsg(), "pier_server_close");
    CHECK_CONTAINS(pier_errmsg(), "resolver");
    pier_server_free(server); /* no status: a no-op that says so */
    CHECK_CONTAINS(pier_errmsg(), "pier_server_free");
    CHECK_CONTAINS(pier_errmsg(), "not freed");

    /* The input is still intact: keep the client's body. */
    *out_body = input->client_body;
    *out_len = input->client_body_len;
    return PIER_DECIDE_KEEP_BODY;
}

/* A conflict on orders/o1 pushed by b; returns pier_sync's status. */
static int push_conflict(pier_server *server, pier_db *a, pier_db *b, const char *a_body, const char *b_body) {
    if (t_put(a, "orders", "o1", a_body) != PIER_OK) return -999;
    if (sync_with(a, server) != PIER_OK) return -998;
    if (t_put(b, "orders", "o1", b_body) != PIER_OK) return -997;
    return sync_with(b, server);
}

static void test_server_calls_from_resolver(void) {
    pier_server *server = t_open_server("custom-server", "{\"collections\": {\"orders\": {\"policy\": \"custom\"}}}");
    pier_db *a = t_open("custom-a");
    pier_db *b = t_open("custom-b");
    pier_db *other = t_open("custom-other");
    REQUIRE(server && a && b && other);
    server_reentry r = {server, other, 0};
    REQUIRE_RC(pier_server_set_resolver(server, "orders", server_resolver_reenters, &r), PIER_OK);
    REQUIRE_RC(t_put(a, "orders", "o1", "{\"status\":\"new\"}"), PIER_OK);
    REQUIRE_RC(sync_with(a, server), PIER_OK);
    REQUIRE_RC(sync_with(b, server), PIER_OK);

    log_watch watch = {"pier_server_free", 0};
    REQUIRE_RC(pier_log_set_callback(on_log, &watch, PIER_LOG_WARN), PIER_OK);
    CHECK_RC(push_conflict(server, a, b, "{\"status\":\"done\"}", "{\"status\":\"cancelled\"}"), PIER_OK);
    CHECK_RC(pier_log_set_callback(NULL, NULL, PIER_LOG_ERROR), PIER_OK);
    CHECK(r.calls == 1);
    CHECK(watch.hits == 1);

    /* The outer call completed: the resolver's decision reached the server and a. */
    CHECK_RC(sync_with(a, server), PIER_OK);
    char *body = NULL;
    REQUIRE_RC(pier_db_get(a, &body, NULL, "orders", "o1"), PIER_OK);
    CHECK_STR(body, "{\"status\":\"cancelled\"}");
    pier_free(body);

    /* The server is open, and its resolver is the one installed (not replaced or removed). */
    char *json = NULL;
    CHECK_RC(pier_server_log(server, &json, NULL, NULL), PIER_OK);
    CHECK(json && strstr(json, "\"o1\""));
    pier_free(json);
    CHECK_RC(push_conflict(server, a, b, "{\"status\":\"again a\"}", "{\"status\":\"again b\"}"), PIER_OK);
    CHECK(r.calls == 2);
    /* From another client's own sync, the same server works normally. */
    CHECK_RC(sync_with(other, server), PIER_OK);
    CHECK(t_count(other, "orders") == 1);

    /* Outside the resolver the calls it was refused work. */
    CHECK_RC(pier_server_set_resolver(server, "orders", NULL, NULL), PIER_OK);
    CHECK_RC(pier_server_close(server), PIER_OK);
    CHECK_RC(pier_server_log(server, &json, NULL, NULL), PIER_ECLOSED);
    CHECK_NULL_OUT(json);
    pier_server_free(server);
    pier_db_free(a);
    pier_db_free(b);
    pier_db_free(other);
}

/* A resolver driven by pier_server_handle directly (a host's HTTP handler), not pier_sync. */
typedef struct {
    pier_server *server;
    unsigned char *response;
    int calls;
} handle_transport;

static int transport_through_handle(void *ctx, const unsigned char *request, size_t request_len,
                                    const unsigned char **out_response, size_t *out_len) {
    handle_transport *t = ctx;
    t->calls++;
    pier_free(t->response);
    t->response = NULL;
    int rc = pier_server_handle(t->server, &t->response, out_len, request, request_len, NULL);
    *out_response = t->response;
    return rc;
}

static void test_server_close_from_resolver_in_handle(void) {
    pier_server *server = t_open_server("handle-server", "{\"collections\": {\"orders\": {\"policy\": \"custom\"}}}");
    pier_db *a = t_open("handle-a");
    pier_db *b = t_open("handle-b");
    pier_db *other = t_open("handle-other");
    REQUIRE(server && a && b && other);
    server_reentry r = {server, other, 0};
    REQUIRE_RC(pier_server_set_resolver(server, "orders", server_resolver_reenters, &r), PIER_OK);
    REQUIRE_RC(t_put(a, "orders", "o1", "{\"status\":\"new\"}"), PIER_OK);
    REQUIRE_RC(sync_with(a, server), PIER_OK);
    REQUIRE_RC(sync_with(b, server), PIER_OK);
    REQUIRE_RC(t_put(a, "orders", "o1", "{\"status\":\"done\"}"), PIER_OK);
    REQUIRE_RC(sync_with(a, server), PIER_OK);
    REQUIRE_RC(t_put(b, "orders", "o1", "{\"status\":\"cancelled\"}"), PIER_OK);

    handle_transport t = {server, NULL, 0};
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.transport = transport_through_handle;
    options.transport_ctx = &t;
    CHECK_RC(pier_sync(b, NULL, &options), PIER_OK);
    pier_free(t.response);
    CHECK(r.calls == 1);
    CHECK(t.calls >= 1);
    int state = -1;
    CHECK_RC(pier_db_state(b, &state, "orders", "o1"), PIER_OK);
    CHECK(state == PIER_STATE_SYNCED);

    CHECK_RC(pier_server_close(server), PIER_OK);
    pier_server_free(server);
    pier_db_free(a);
    pier_db_free(b);
    pier_db_free(other);
}

static const pier_test tests[] = {
    {"db_close_free_from_progress", test_db_close_free_from_progress},
    {"db_close_free_from_transport", test_db_close_free_from_transport},
    {"db_close_free_from_client_resolver", test_db_close_free_from_client_resolver},
    {"server_calls_from_resolver", test_server_calls_from_resolver},
    {"server_close_from_resolver_in_handle", test_server_close_from_resolver_in_handle},
};

int main(int argc, char **argv) { return RUN_TESTS(tests); }
