/*
 * test_sync.c — the sync half of pier.h: pier_server_* (an in-process server over an
 * SQLite master file), pier_sync with the in-process server and with a host transport,
 * conflicts (manual policy, pier_db_conflicts, pier_db_resolve, client and server
 * resolvers), collection modes, the business log, tombstone purging, and the error paths
 * (NULL arguments, closed handles, bad options).
 */
#define _GNU_SOURCE
#include "test.h"

#include <stdlib.h>

static char *get(pier_db *db, const char *collection, const char *id) {
    char *body = NULL;
    if (pier_db_get(db, &body, NULL, collection, id) != PIER_OK) return NULL;
    return body;
}

/* Syncs db with the in-process server; returns the status and fills *report. */
static int sync_with(pier_db *db, pier_server *server, pier_sync_report *report) {
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    pier_sync_report local = PIER_SYNC_REPORT_INIT;
    if (!report) report = &local;
    return pier_sync(db, report, &options);
}

/* Number of elements of a JSON array (-1 if it is not one). */
static int64_t array_length(const char *json) {
    if (!t_json_valid(json) || strcmp(t_json_type(json, "$"), "array") != 0) return -1;
    return strtoll(t_json_eval("SELECT json_array_length(?1)", json), NULL, 10);
}

/* ---- Round trips ------------------------------------------------------------------- */

static void test_round_trip(void) {
    pier_server *server = t_open_server("server", NULL);
    REQUIRE(server);
    pier_db *a = t_open("client-a");
    pier_db *b = t_open("client-b");
    REQUIRE(a && b);

    REQUIRE_RC(t_put(a, "notes", "n1", "{\"text\":\"hello\"}"), PIER_OK);
    REQUIRE_RC(t_put(a, "notes", "n2", "{\"text\":\"world\"}"), PIER_OK);
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(sync_with(a, server, &report), PIER_OK);
    CHECK(report.version == PIER_SYNC_REPORT_VERSION);
    CHECK(report.pushed == 2);
    CHECK(report.round_trips >= 1);
    CHECK(report.bytes_sent > 0);
    CHECK(report.bytes_received > 0);
    CHECK(report.duration_ms >= 0);
    int state = -1;
    CHECK_RC(pier_db_state(a, &state, "notes", "n1"), PIER_OK);
    CHECK(state == PIER_STATE_SYNCED);
    char *info = NULL;
    REQUIRE_RC(pier_db_info(a, &info, NULL), PIER_OK);
    CHECK(t_json_int(info, "$.pending") == 0);
    CHECK(t_json_int(info, "$.pull_cursor") > 0);
    pier_free(info);

    /* B pulls both. */
    report = (pier_sync_report)PIER_SYNC_REPORT_INIT;
    CHECK_RC(sync_with(b, server, &report), PIER_OK);
    CHECK(report.pulled == 2);
    char *body = get(b, "notes", "n1");
    CHECK_STR(body, "{\"text\":\"hello\"}");
    pier_free(body);
    CHECK(t_count(b, "notes") == 2);
    char *meta = NULL;
    REQUIRE_RC(pier_db_metadata(b, &meta, NULL, "notes", "n2"), PIER_OK);
    CHECK_STR(t_json_type(meta, "$.is_from_server"), "true");
    CHECK_STR(t_json_type(meta, "$.is_modified"), "false");
    CHECK(t_json_int(meta, "$.server_version") > 0);
    CHECK_STR(t_json_text(meta, "$.sync_state"), "synced");
    pier_free(meta);

    /* A patch and a delete on B reach A. */
    REQUIRE_RC(pier_db_patch(b, "notes", "n1", "{\"done\":true}", 13), PIER_OK);
    /* changed_fields: the top-level fields changed since the server's copy. */
    REQUIRE_RC(pier_db_metadata(b, &meta, NULL, "notes", "n1"), PIER_OK);
    CHECK_STR(t_json_text(meta, "$.changed_fields"), "[\"done\"]");
    CHECK_STR(t_json_text(meta, "$.server_body"), "{\"text\":\"hello\"}");
    CHECK_STR(t_json_text(meta, "$.sync_state"), "pending");
    pier_free(meta);
    REQUIRE_RC(pier_db_delete(b, "notes", "n2"), PIER_OK);
    /* A synced record becomes a tombstone until the server acknowledges the delete. */
    REQUIRE_RC(pier_db_metadata(b, &meta, NULL, "notes", "n2"), PIER_OK);
    CHECK_STR(t_json_type(meta, "$.is_active"), "false");
    pier_free(meta);
    CHECK_RC(sync_with(b, server, NULL), PIER_OK);
    CHECK_RC(sync_with(a, server, NULL), PIER_OK);
    body = get(a, "notes", "n1");
    CHECK(body && strcmp(t_json_eval("SELECT json(?1) = json('{\"text\":\"hello\",\"done\":true}')", body), "1") == 0);
    pier_free(body);
    CHECK(t_count(a, "notes") == 1);
    CHECK_RC(pier_db_get(a, &body, NULL, "notes", "n2"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(body);

    /* Nothing to do: a sync still succeeds. */
    report = (pier_sync_report)PIER_SYNC_REPORT_INIT;
    CHECK_RC(sync_with(a, server, &report), PIER_OK);
    CHECK(report.pushed == 0);
    /* out_report may be NULL. */
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    CHECK_RC(pier_sync(a, NULL, &options), PIER_OK);

    /* The business log saw the changes. */
    char *log = NULL;
    size_t len = 0;
    REQUIRE_RC(pier_server_log(server, &log, &len, NULL), PIER_OK);
    CHECK(len == strlen(log));
    CHECK(array_length(log) >= 4);
    CHECK_STR(t_json_type(log, "$[0].seq"), "integer");
    CHECK_STR(t_json_type(log, "$[0].collection"), "text");
    CHECK_STR(t_json_type(log, "$[0].outcome"), "text");
    pier_free(log);
    REQUIRE_RC(pier_server_log(server, &log, NULL, "{\"record_id\": \"n2\"}"), PIER_OK);
    CHECK(array_length(log) >= 2);
    CHECK_STR(t_json_eval("SELECT count(*) FROM json_each(?1) WHERE json_extract(value, '$.record_id') != 'n2'", log), "0");
    pier_free(log);
    REQUIRE_RC(pier_server_log(server, &log, NULL, "{\"collection\": \"nothing\"}"), PIER_OK);
    CHECK_STR(log, "[]");
    pier_free(log);
    REQUIRE_RC(pier_server_log(server, &log, NULL, "{\"limit\": 1}"), PIER_OK);
    CHECK(array_length(log) == 1);
    pier_free(log);

    /* Tombstones: purge with horizon 0 (out_purged may be NULL). */
    int64_t purged = -1;
    CHECK_RC(pier_server_purge_tombstones(server, &purged, 0), PIER_OK);
    CHECK(purged >= 0);
    CHECK_RC(pier_server_purge_tombstones(server, NULL, -1), PIER_OK);

    pier_db_free(a);
    pier_db_free(b);
    pier_server_free(server);
}

typedef struct {
    int calls;
    int64_t last_round_trips;
    int bad_version;
} progress_seen;

static void on_progress(void *ctx, const pier_sync_progress *progress) {
    progress_seen *seen = ctx;
    seen->calls++;
    if (!progress || progress->version < 1) seen->bad_version++;
    else seen->last_round_trips = progress->round_trips;
}

static void test_progress_and_batches(void) {
    pier_server *server = t_open_server("server-batches", NULL);
    REQUIRE(server);
    pier_db *a = t_open("batches-a");
    pier_db *b = t_open("batches-b");
    REQUIRE(a && b);
    REQUIRE_RC(pier_db_begin(a), PIER_OK);
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%02d", i);
        REQUIRE_RC(t_put(a, "items", id, "{\"v\":1}"), PIER_OK);
    }
    REQUIRE_RC(pier_db_commit(a), PIER_OK);

    progress_seen seen = {0, 0, 0};
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    options.max_batch_changes = 10; /* 25 changes: at least 3 pushes */
    options.progress = on_progress;
    options.progress_ctx = &seen;
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(a, &report, &options), PIER_OK);
    CHECK(report.pushed == 25);
    CHECK(report.round_trips >= 3);
    CHECK(seen.calls == report.round_trips);
    CHECK(seen.last_round_trips == report.round_trips);
    CHECK(seen.bad_version == 0);

    /* Pull in small pages. */
    pier_sync_options pull = PIER_SYNC_OPTIONS_INIT;
    pull.server = server;
    pull.pull_max_records = 7;
    report = (pier_sync_report)PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(b, &report, &pull), PIER_OK);
    CHECK(report.pulled == 25);
    CHECK(report.round_trips >= 4);
    CHECK(t_count(b, "items") == 25);
    pier_db_free(a);
    pier_db_free(b);
    pier_server_free(server);
}

/* A host transport that hands frames to pier_server_handle, and can fail on demand. */
typedef struct {
    pier_server *server;
    unsigned char *last; /* the previous response, freed on the next call */
    int fail_with;       /* nonzero: return this code */
    int calls;
} host_link;

static int host_transport(void *ctx, const unsigned char *request, size_t request_len,
                          const unsigned char **out_response, size_t *out_response_len) {
    host_link *link = ctx;
    link->calls++;
    pier_free(link->last);
    link->last = NULL;
    if (link->fail_with) return link->fail_with;
    size_t len = 0;
    int rc = pier_server_handle(link->server, &link->last, &len, request, request_len, NULL);
    if (rc != PIER_OK) return rc;
    *out_response = link->last;
    *out_response_len = len;
    return PIER_OK;
}

static void test_host_transport(void) {
    pier_server *server = t_open_server("server-host", NULL);
    REQUIRE(server);
    pier_db *a = t_open("host-a");
    REQUIRE(a);
    host_link link = {server, NULL, 0, 0};
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.transport = host_transport;
    options.transport_ctx = &link;

    REQUIRE_RC(t_put(a, "c", "x", "{\"v\":1}"), PIER_OK);
    /* The link is down: the transport's code ends the sync, nothing is lost. */
    link.fail_with = PIER_ENETWORK;
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(a, &report, &options), PIER_ENETWORK);
    CHECK_ERRMSG();
    CHECK(link.calls == 1);
    int state = -1;
    CHECK_RC(pier_db_state(a, &state, "c", "x"), PIER_OK);
    CHECK(state == PIER_STATE_PENDING);

    /* Back up: the change goes through. */
    link.fail_with = 0;
    report = (pier_sync_report)PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(a, &report, &options), PIER_OK);
    CHECK(report.pushed == 1);
    CHECK_RC(pier_db_state(a, &state, "c", "x"), PIER_OK);
    CHECK(state == PIER_STATE_SYNCED);

    /* Another client through the in-process transport sees it. */
    pier_db *b = t_open("host-b");
    REQUIRE(b);
    CHECK_RC(sync_with(b, server, NULL), PIER_OK);
    char *body = get(b, "c", "x");
    CHECK_STR(body, "{\"v\":1}");
    pier_free(body);

    /* A garbage request still gets a response frame (an error the client understands). */
    unsigned char *frame = NULL;
    size_t len = 0;
    const unsigned char junk[] = "this is not a frame";
    CHECK_RC(pier_server_handle(server, &frame, &len, junk, sizeof junk, NULL), PIER_OK);
    CHECK(frame != NULL && len > 0);
    pier_free(frame);

    pier_free(link.last);
    link.last = NULL;
    pier_db_free(a);
    pier_db_free(b);
    pier_server_free(server);
}

static int garbage_transport(void *ctx, const unsigned char *request, size_t request_len,
                             const unsigned char **out_response, size_t *out_response_len) {
    (void)ctx; (void)request; (void)request_len;
    static const unsigned char junk[] = "garbage, not a Pier frame";
    *out_response = junk;
    *out_response_len = sizeof junk;
    return PIER_OK;
}

static void test_protocol_errors(void) {
    pier_db *a = t_open("protocol");
    REQUIRE(a);
    REQUIRE_RC(t_put(a, "c", "x", "{}"), PIER_OK);
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.transport = garbage_transport;
    CHECK_RC(pier_sync(a, NULL, &options), PIER_EPROTOCOL);
    CHECK_ERRMSG();
    int state = -1;
    CHECK_RC(pier_db_state(a, &state, "c", "x"), PIER_OK);
    CHECK(state == PIER_STATE_PENDING); /* never lost */
    pier_db_free(a);
}

/* ---- Conflicts ----------------------------------------------------------------------- */

/* Both clients edit "shared/r" from the same base; A syncs first. Returns B's sync status. */
static int make_conflict(pier_server *server, pier_db *a, pier_db *b, pier_sync_report *report) {
    if (t_put(a, "shared", "r", "{\"title\":\"base\",\"n\":0}") != PIER_OK) return -999;
    if (sync_with(a, server, NULL) != PIER_OK) return -998;
    if (sync_with(b, server, NULL) != PIER_OK) return -997;
    if (t_put(a, "shared", "r", "{\"title\":\"from A\",\"n\":1}") != PIER_OK) return -996;
    if (sync_with(a, server, NULL) != PIER_OK) return -995;
    if (t_put(b, "shared", "r", "{\"title\":\"from B\",\"n\":2}") != PIER_OK) return -994;
    return sync_with(b, server, report);
}

static void test_manual_conflict(void) {
    pier_server *server = t_open_server("server-manual", "{\"collections\": {\"shared\": {\"policy\": \"manual\"}}}");
    REQUIRE(server);
    pier_db *a = t_open("manual-a");
    pier_db *b = t_open("manual-b");
    REQUIRE(a && b);

    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    int rc = make_conflict(server, a, b, &report);
    /* The sync that meets the conflict may report it as PIER_ECONFLICT or finish. */
    CHECK(rc == PIER_OK || rc == PIER_ECONFLICT);
    CHECK(report.conflicts >= 1);

    /* B sees the conflict. */
    char *list = NULL;
    size_t len = 0;
    REQUIRE_RC(pier_db_conflicts(b, &list, &len), PIER_OK);
    CHECK(len == strlen(list));
    REQUIRE(array_length(list) == 1);
    CHECK_STR(t_json_text(list, "$[0].collection"), "shared");
    CHECK_STR(t_json_text(list, "$[0].id"), "r");
    CHECK_STR(t_json_text(list, "$[0].local_body.title"), "from B");
    CHECK_STR(t_json_text(list, "$[0].server_body.title"), "from A");
    CHECK_STR(t_json_type(list, "$[0].local_deleted"), "false");
    CHECK_STR(t_json_type(list, "$[0].server_deleted"), "false");
    CHECK_STR(t_json_type(list, "$[0].base_version"), "integer");
    CHECK_STR(t_json_type(list, "$[0].server_version"), "integer");
    char conflict_id[256];
    snprintf(conflict_id, sizeof conflict_id, "%s", t_json_text(list, "$[0].conflict_id"));
    pier_free(list);
    int state = -1;
    CHECK_RC(pier_db_state(b, &state, "shared", "r"), PIER_OK);
    CHECK(state == PIER_STATE_CONFLICTED);

    /* The server registered it too. */
    REQUIRE_RC(pier_server_conflicts(server, &list, NULL, NULL, 1), PIER_OK);
    CHECK(array_length(list) >= 1);
    pier_free(list);
    REQUIRE_RC(pier_server_conflicts(server, &list, NULL, "other-collection", 0), PIER_OK);
    CHECK_STR(list, "[]");
    pier_free(list);

    /* An unresolved conflict blocks the next sync. */
    REQUIRE_RC(t_put(b, "elsewhere", "e", "{}"), PIER_OK);
    CHECK_RC(sync_with(b, server, NULL), PIER_ECONFLICT);
    CHECK_CONTAINS(pier_errmsg(), "1 unresolved conflict blocks the sync (shared/r)"); /* it lists the conflicts */
    /* ...unless only conflicted records are blocked. */
    pier_sync_options relaxed = PIER_SYNC_OPTIONS_INIT;
    relaxed.server = server;
    relaxed.block_only_conflicted = 1;
    CHECK_RC(pier_sync(b, NULL, &relaxed), PIER_OK);
    CHECK_RC(pier_db_state(b, &state, "elsewhere", "e"), PIER_OK);
    CHECK(state == PIER_STATE_SYNCED);

    /* Bad resolutions. */
    CHECK_RC(pier_db_resolve(b, "no-such-conflict", PIER_RESOLVE_KEEP_LOCAL, NULL, 0), PIER_ENOTFOUND);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_resolve(b, conflict_id, 7, NULL, 0), PIER_EINVALID);
    CHECK_RC(pier_db_resolve(b, conflict_id, PIER_RESOLVE_LEAVE, NULL, 0), PIER_EINVALID);
    CHECK_RC(pier_db_resolve(b, conflict_id, PIER_RESOLVE_MERGED, NULL, 0), PIER_EINVALID);
    CHECK_RC(pier_db_resolve(b, conflict_id, PIER_RESOLVE_MERGED, "[1]", 3), PIER_EINVALID);
    CHECK_RC(pier_db_resolve(b, conflict_id, PIER_RESOLVE_MERGED, "{\"x\":", 5), PIER_EINVALID);
    CHECK_RC(pier_db_state(b, &state, "shared", "r"), PIER_OK);
    CHECK(state == PIER_STATE_CONFLICTED); /* still there */

    /* Resolve with a merged body: a new local write, pushed by the next sync. */
    const char *merged = "{\"title\":\"from A and B\",\"n\":3}";
    CHECK_RC(pier_db_resolve(b, conflict_id, PIER_RESOLVE_MERGED, merged, strlen(merged)), PIER_OK);
    REQUIRE_RC(pier_db_conflicts(b, &list, NULL), PIER_OK);
    CHECK_STR(list, "[]");
    pier_free(list);
    CHECK_RC(pier_db_state(b, &state, "shared", "r"), PIER_OK);
    CHECK(state == PIER_STATE_PENDING);
    CHECK_RC(pier_db_resolve(b, conflict_id, PIER_RESOLVE_KEEP_LOCAL, NULL, 0), PIER_ENOTFOUND); /* settled */
    CHECK_RC(sync_with(b, server, NULL), PIER_OK);
    CHECK_RC(sync_with(a, server, NULL), PIER_OK);
    char *body = get(a, "shared", "r");
    CHECK_STR(t_json_text(body, "$.title"), "from A and B");
    pier_free(body);
    body = get(b, "shared", "r");
    CHECK_STR(t_json_text(body, "$.title"), "from A and B");
    pier_free(body);
    pier_db_free(a);
    pier_db_free(b);
    pier_server_free(server);
}

static void test_resolve_keep_server(void) {
    pier_server *server = t_open_server("server-keep", "{\"default_policy\": \"manual\"}");
    REQUIRE(server);
    pier_db *a = t_open("keep-a");
    pier_db *b = t_open("keep-b");
    REQUIRE(a && b);
    int rc = make_conflict(server, a, b, NULL);
    CHECK(rc == PIER_OK || rc == PIER_ECONFLICT);
    char *list = NULL;
    REQUIRE_RC(pier_db_conflicts(b, &list, NULL), PIER_OK);
    REQUIRE(array_length(list) == 1);
    char conflict_id[256];
    snprintf(conflict_id, sizeof conflict_id, "%s", t_json_text(list, "$[0].conflict_id"));
    pier_free(list);
    CHECK_RC(pier_db_resolve(b, conflict_id, PIER_RESOLVE_KEEP_SERVER, NULL, 0), PIER_OK);
    char *body = get(b, "shared", "r");
    CHECK_STR(t_json_text(body, "$.title"), "from A");
    pier_free(body);
    CHECK_RC(sync_with(b, server, NULL), PIER_OK);
    CHECK_RC(sync_with(a, server, NULL), PIER_OK);
    body = get(a, "shared", "r");
    CHECK_STR(t_json_text(body, "$.title"), "from A");
    pier_free(body);
    pier_db_free(a);
    pier_db_free(b);
    pier_server_free(server);
}

/* A client resolver settles the conflict during the sync. */
typedef struct {
    int calls;
    int saw_bodies;
} client_resolver_seen;

static int client_resolver(void *ctx, const pier_conflict *conflict, const char **out_body, size_t *out_len) {
    client_resolver_seen *seen = ctx;
    seen->calls++;
    if (conflict && conflict->version >= 1 && conflict->conflict_id && conflict->local_body && conflict->server_body &&
        strcmp(conflict->collection, "shared") == 0 && strcmp(conflict->id, "r") == 0)
        seen->saw_bodies++;
    static const char merged[] = "{\"title\":\"resolved by callback\",\"n\":9}";
    *out_body = merged;
    *out_len = strlen(merged);
    return PIER_RESOLVE_MERGED;
}

static void test_client_resolver(void) {
    pier_server *server = t_open_server("server-client-resolver", "{\"collections\": {\"shared\": {\"policy\": \"manual\"}}}");
    REQUIRE(server);
    pier_db *a = t_open("cr-a");
    pier_db *b = t_open("cr-b");
    REQUIRE(a && b);
    REQUIRE_RC(t_put(a, "shared", "r", "{\"title\":\"base\"}"), PIER_OK);
    REQUIRE_RC(sync_with(a, server, NULL), PIER_OK);
    REQUIRE_RC(sync_with(b, server, NULL), PIER_OK);
    REQUIRE_RC(t_put(a, "shared", "r", "{\"title\":\"from A\"}"), PIER_OK);
    REQUIRE_RC(sync_with(a, server, NULL), PIER_OK);
    REQUIRE_RC(t_put(b, "shared", "r", "{\"title\":\"from B\"}"), PIER_OK);

    client_resolver_seen seen = {0, 0};
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    options.resolver = client_resolver;
    options.resolver_ctx = &seen;
    int rc = pier_sync(b, NULL, &options);
    CHECK(rc == PIER_OK || rc == PIER_ECONFLICT);
    CHECK(seen.calls >= 1);
    CHECK(seen.saw_bodies >= 1);
    char *list = NULL;
    REQUIRE_RC(pier_db_conflicts(b, &list, NULL), PIER_OK);
    CHECK_STR(list, "[]");
    pier_free(list);
    char *body = get(b, "shared", "r");
    CHECK_STR(t_json_text(body, "$.title"), "resolved by callback");
    pier_free(body);
    /* The merged body reaches the server and A. */
    CHECK_RC(pier_sync(b, NULL, &options), PIER_OK);
    CHECK_RC(sync_with(a, server, NULL), PIER_OK);
    body = get(a, "shared", "r");
    CHECK_STR(t_json_text(body, "$.title"), "resolved by callback");
    pier_free(body);
    pier_db_free(a);
    pier_db_free(b);
    pier_server_free(server);
}

/* A server-side resolver ("custom" policy). */
typedef struct {
    int calls;
    int decision;
    int saw_input;
} server_resolver_seen;

static int server_resolver(void *ctx, const pier_resolver_input *input, const char **out_body, size_t *out_len) {
    server_resolver_seen *seen = ctx;
    seen->calls++;
    if (input && input->version >= 1 && input->client_body && input->server_body && strcmp(input->collection, "shared") == 0 &&
        strcmp(input->id, "r") == 0 && input->client_id && input->user)
        seen->saw_input++;
    static const char kept[] = "{\"title\":\"decided by server\"}";
    *out_body = kept;
    *out_len = strlen(kept);
    return seen->decision;
}

static void test_server_resolver(void) {
    pier_server *server = t_open_server("server-custom", "{\"collections\": {\"shared\": {\"policy\": \"custom\"}}}");
    REQUIRE(server);
    server_resolver_seen seen = {0, PIER_DECIDE_KEEP_BODY, 0};
    REQUIRE_RC(pier_server_set_resolver(server, "shared", server_resolver, &seen), PIER_OK);
    pier_db *a = t_open("custom-a");
    pier_db *b = t_open("custom-b");
    REQUIRE(a && b);
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    int rc = make_conflict(server, a, b, &report);
    CHECK_RC(rc, PIER_OK);
    CHECK(seen.calls >= 1);
    CHECK(seen.saw_input >= 1);
    CHECK(report.conflicts == 0);
    CHECK_RC(sync_with(b, server, NULL), PIER_OK);
    CHECK_RC(sync_with(a, server, NULL), PIER_OK);
    char *body = get(a, "shared", "r");
    CHECK_STR(t_json_text(body, "$.title"), "decided by server");
    pier_free(body);
    body = get(b, "shared", "r");
    CHECK_STR(t_json_text(body, "$.title"), "decided by server");
    pier_free(body);

    /* Removing the resolver: a custom collection without one registers conflicts. */
    CHECK_RC(pier_server_set_resolver(server, "shared", NULL, NULL), PIER_OK);
    REQUIRE_RC(t_put(a, "shared", "r", "{\"title\":\"A again\"}"), PIER_OK);
    REQUIRE_RC(sync_with(a, server, NULL), PIER_OK);
    REQUIRE_RC(t_put(b, "shared", "r", "{\"title\":\"B again\"}"), PIER_OK);
    report = (pier_sync_report)PIER_SYNC_REPORT_INIT;
    rc = sync_with(b, server, &report);
    CHECK(rc == PIER_OK || rc == PIER_ECONFLICT);
    CHECK(report.conflicts >= 1);
    pier_db_free(a);
    pier_db_free(b);
    pier_server_free(server);
}

/* ---- Collection modes ------------------------------------------------------------------- */

static void test_collection_modes(void) {
    pier_server *server = t_open_server("server-modes", NULL);
    REQUIRE(server);
    pier_db *a = t_open("modes-a");
    pier_db *b = t_open("modes-b");
    REQUIRE(a && b);

    /* Argument checks. */
    CHECK_RC(pier_db_set_collection_mode(a, "c", 4, 0), PIER_EINVALID);
    CHECK_RC(pier_db_set_collection_mode(a, "c", -1, 0), PIER_EINVALID);
    CHECK_RC(pier_db_set_collection_mode(a, "", PIER_MODE_TWO_WAY, 0), PIER_EINVALID);
    CHECK_RC(pier_db_set_collection_mode(a, NULL, PIER_MODE_TWO_WAY, 0), PIER_EINVALID);
    CHECK_RC(pier_db_set_collection_mode(a, "c", PIER_MODE_TWO_WAY, 1), PIER_EINVALID); /* purge only for push-only */
    CHECK_RC(pier_db_set_collection_mode(a, "c", PIER_MODE_LOCAL_ONLY, 1), PIER_EINVALID);

    /* Local only: never leaves the device. */
    REQUIRE_RC(pier_db_set_collection_mode(a, "drafts", PIER_MODE_LOCAL_ONLY, 0), PIER_OK);
    CHECK_RC(t_put(a, "drafts", "d1", "{\"secret\":true}"), PIER_OK);
    /* Pull only: local writes refused. */
    REQUIRE_RC(pier_db_set_collection_mode(a, "prices", PIER_MODE_PULL_ONLY, 0), PIER_OK);
    CHECK_RC(t_put(a, "prices", "p1", "{\"eur\":1}"), PIER_EREADONLY);
    CHECK_ERRMSG();
    /* Push only, purged after the server acknowledges. */
    REQUIRE_RC(pier_db_set_collection_mode(a, "telemetry", PIER_MODE_PUSH_ONLY, 1), PIER_OK);
    CHECK_RC(t_put(a, "telemetry", "t1", "{\"temp\":21}"), PIER_OK);
    CHECK_RC(t_put(a, "notes", "n1", "{}"), PIER_OK); /* two-way by default */

    CHECK_RC(sync_with(a, server, NULL), PIER_OK);
    CHECK(t_count(a, "drafts") == 1);     /* still here */
    CHECK(t_count(a, "telemetry") == 0);  /* pushed, then purged */

    CHECK_RC(sync_with(b, server, NULL), PIER_OK);
    CHECK(t_count(b, "notes") == 1);
    CHECK(t_count(b, "drafts") == 0);     /* never left A */
    char *log = NULL;
    REQUIRE_RC(pier_server_log(server, &log, NULL, "{\"collection\": \"telemetry\"}"), PIER_OK);
    CHECK(array_length(log) >= 1);      /* the server got the telemetry */
    pier_free(log);
    REQUIRE_RC(pier_server_log(server, &log, NULL, "{\"collection\": \"drafts\"}"), PIER_OK);
    CHECK_STR(log, "[]");
    pier_free(log);

    /* The mode is stored in the store: it survives a reopen. */
    char *info = NULL;
    REQUIRE_RC(pier_db_info(a, &info, NULL), PIER_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s", t_json_text(info, "$.path"));
    pier_free(info);
    pier_db_free(a);
    REQUIRE_RC(pier_db_open(&a, path, NULL), PIER_OK);
    CHECK_RC(t_put(a, "prices", "p2", "{\"eur\":2}"), PIER_EREADONLY);

    /* A read-only store cannot change modes. */
    pier_db_free(a);
    pier_open_options ro = PIER_OPEN_OPTIONS_INIT;
    ro.flags = PIER_OPEN_READONLY;
    REQUIRE_RC(pier_db_open(&a, path, &ro), PIER_OK);
    CHECK_RC(pier_db_set_collection_mode(a, "notes", PIER_MODE_PULL_ONLY, 0), PIER_EREADONLY);
    pier_db_free(a);
    pier_db_free(b);
    pier_server_free(server);
}

/* ---- Errors -------------------------------------------------------------------------- */

static void test_server_open_errors(void) {
    pier_server *server = (pier_server *)T_SENTINEL;
    CHECK_RC(pier_server_open(NULL, t_path("s"), NULL), PIER_EINVALID);
    CHECK_RC(pier_server_open(&server, NULL, NULL), PIER_EINVALID);
    CHECK(server == NULL);
    server = (pier_server *)T_SENTINEL;
    CHECK_RC(pier_server_open(&server, t_path("s"), "{\"no_such_key\": 1}"), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "no_such_key");
    CHECK(server == NULL);
    server = (pier_server *)T_SENTINEL;
    CHECK_RC(pier_server_open(&server, t_path("s"), "not json"), PIER_EINVALID);
    CHECK(server == NULL);
    CHECK_RC(pier_server_open(&server, t_path("s"), "[]"), PIER_EINVALID);
    CHECK_RC(pier_server_open(&server, t_path("s"), "{\"default_policy\": \"coin_toss\"}"), PIER_EINVALID);
    CHECK_RC(pier_server_open(&server, t_path("s"), "{\"collections\": {\"c\": {\"policy\": 5}}}"), PIER_EINVALID);
    CHECK_RC(pier_server_open(&server, t_path("s"), "{\"compression_level\": 10}"), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "compression_level");
    CHECK(server == NULL);

    /* Every documented key is accepted. */
    const char *config =
        "{\"default_policy\": \"last_write_wins\", \"default_update_delete\": \"update_wins\","
        " \"drift_bound_ms\": 60000, \"max_batch_changes\": 5000, \"max_body_bytes\": 1048576,"
        " \"tombstone_horizon_ms\": 604800000, \"compression_level\": 1, \"pull_prefetch_threads\": 2,"
        " \"pull_prefetch_max_pages\": 8, \"pull_prefetch_max_bytes\": 1048576, \"pull_prefetch_ttl_ms\": 5000,"
        " \"collections\": {"
        "   \"customers\": {\"policy\": \"manual\"},"
        "   \"jobs\": {\"policy\": \"merge_fields\", \"fields\": {\"status\": \"manual\"}, \"update_delete\": \"delete_wins\"},"
        "   \"prices\": {\"policy\": \"first_write_wins\", \"readable_by_all\": true},"
        "   \"a\": {\"policy\": \"arrival_wins\"}, \"b\": {\"policy\": \"client_wins\"}, \"c\": {\"policy\": \"custom\"}}}";
    REQUIRE_RC(pier_server_open(&server, t_path("s"), config), PIER_OK);
    pier_server_free(server);

    /* Not a master store: garbage, or a client store. */
    const char *path = t_path("garbage-master");
    REQUIRE(t_write_file(path, "definitely not sqlite, just some text padding it out", 52) == 0);
    server = (pier_server *)T_SENTINEL;
    CHECK_RC(pier_server_open(&server, path, NULL), PIER_ENOTDB);
    CHECK(server == NULL);
    size_t len = 0;
    unsigned char *bytes = t_read_file(path, &len);
    CHECK(bytes && len == 52 && memcmp(bytes, "definitely not sqlite", 21) == 0);
    free(bytes);
}

static void test_null_and_closed(void) {
    pier_server *server = t_open_server("server-errors", NULL);
    REQUIRE(server);
    pier_db *db = t_open("sync-errors");
    REQUIRE(db);
    char *out = T_SENTINEL;
    size_t len = 77;
    unsigned char *frame = T_SENTINEL;
    const unsigned char request[] = "x";

    /* NULL server / db. */
    CHECK_RC(pier_server_close(NULL), PIER_EINVALID);
    pier_server_free(NULL);
    CHECK_RC(pier_server_handle(NULL, &frame, &len, request, 1, NULL), PIER_EINVALID);
    CHECK_NULL_OUT(frame);
    CHECK(len == 0);
    CHECK_RC(pier_server_log(NULL, &out, &len, NULL), PIER_EINVALID);
    CHECK_NULL_OUT(out);
    out = T_SENTINEL;
    CHECK_RC(pier_server_conflicts(NULL, &out, &len, NULL, 0), PIER_EINVALID);
    CHECK_NULL_OUT(out);
    CHECK_RC(pier_server_purge_tombstones(NULL, NULL, 0), PIER_EINVALID);
    CHECK_RC(pier_server_set_resolver(NULL, "c", NULL, NULL), PIER_EINVALID);
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    CHECK_RC(pier_sync(NULL, NULL, &options), PIER_EINVALID);
    out = T_SENTINEL;
    CHECK_RC(pier_db_conflicts(NULL, &out, NULL), PIER_EINVALID);
    CHECK_NULL_OUT(out);
    CHECK_RC(pier_db_resolve(NULL, "x", PIER_RESOLVE_KEEP_LOCAL, NULL, 0), PIER_EINVALID);
    CHECK_RC(pier_db_set_collection_mode(NULL, "c", PIER_MODE_TWO_WAY, 0), PIER_EINVALID);

    /* NULL arguments. */
    len = 77;
    CHECK_RC(pier_server_handle(server, NULL, &len, request, 1, NULL), PIER_EINVALID);
    CHECK(len == 0);
    frame = T_SENTINEL;
    CHECK_RC(pier_server_handle(server, &frame, NULL, NULL, 1, NULL), PIER_EINVALID);
    CHECK_NULL_OUT(frame);
    CHECK_RC(pier_server_log(server, NULL, NULL, NULL), PIER_EINVALID);
    out = T_SENTINEL;
    CHECK_RC(pier_server_log(server, &out, NULL, "not json"), PIER_EINVALID);
    CHECK_NULL_OUT(out);
    out = T_SENTINEL;
    CHECK_RC(pier_server_log(server, &out, NULL, "[1]"), PIER_EINVALID);
    CHECK_NULL_OUT(out);
    CHECK_RC(pier_server_conflicts(server, NULL, NULL, NULL, 0), PIER_EINVALID);
    CHECK_RC(pier_server_set_resolver(server, NULL, NULL, NULL), PIER_EINVALID);
    CHECK_RC(pier_db_conflicts(db, NULL, NULL), PIER_EINVALID);
    CHECK_RC(pier_db_resolve(db, NULL, PIER_RESOLVE_KEEP_LOCAL, NULL, 0), PIER_EINVALID);

    /* Bad sync options. */
    CHECK_RC(pier_sync(db, NULL, NULL), PIER_EINVALID);
    CHECK_ERRMSG();
    pier_sync_options none = PIER_SYNC_OPTIONS_INIT; /* neither server nor transport */
    CHECK_RC(pier_sync(db, NULL, &none), PIER_EINVALID);
    pier_sync_options zero = PIER_SYNC_OPTIONS_INIT;
    zero.server = server;
    zero.version = 0;
    CHECK_RC(pier_sync(db, NULL, &zero), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "version");
    pier_identity who = PIER_IDENTITY_INIT;
    who.version = 0;
    pier_sync_options with_identity = PIER_SYNC_OPTIONS_INIT;
    with_identity.server = server;
    with_identity.identity = &who;
    CHECK_RC(pier_sync(db, NULL, &with_identity), PIER_EINVALID);

    /* A transaction open on the handle: PIER_ESTATE, and the transaction is untouched. */
    REQUIRE_RC(pier_db_begin(db), PIER_OK);
    REQUIRE_RC(t_put(db, "c", "in-tx", "{}"), PIER_OK);
    CHECK_RC(pier_sync(db, NULL, &options), PIER_ESTATE);
    CHECK_RC(pier_db_commit(db), PIER_OK);
    CHECK(t_count(db, "c") == 1);

    /* Closed client handle. */
    pier_db *closed = t_open("sync-closed");
    REQUIRE(closed);
    REQUIRE_RC(pier_db_close(closed), PIER_OK);
    CHECK_RC(pier_sync(closed, NULL, &options), PIER_ECLOSED);
    out = T_SENTINEL;
    CHECK_RC(pier_db_conflicts(closed, &out, NULL), PIER_ECLOSED);
    CHECK_NULL_OUT(out);
    CHECK_RC(pier_db_resolve(closed, "x", PIER_RESOLVE_KEEP_LOCAL, NULL, 0), PIER_ECLOSED);
    CHECK_RC(pier_db_set_collection_mode(closed, "c", PIER_MODE_TWO_WAY, 0), PIER_ECLOSED);
    pier_db_free(closed);

    /* Closed server. */
    REQUIRE_RC(pier_server_close(server), PIER_OK);
    CHECK_RC(pier_server_close(server), PIER_OK); /* twice is fine */
    frame = T_SENTINEL;
    CHECK_RC(pier_server_handle(server, &frame, &len, request, 1, NULL), PIER_ECLOSED);
    CHECK_NULL_OUT(frame);
    out = T_SENTINEL;
    CHECK_RC(pier_server_log(server, &out, NULL, NULL), PIER_ECLOSED);
    CHECK_NULL_OUT(out);
    out = T_SENTINEL;
    CHECK_RC(pier_server_conflicts(server, &out, NULL, NULL, 0), PIER_ECLOSED);
    CHECK_NULL_OUT(out);
    CHECK_RC(pier_server_purge_tombstones(server, NULL, 0), PIER_ECLOSED);
    CHECK_RC(pier_server_set_resolver(server, "c", NULL, NULL), PIER_ECLOSED);
    CHECK_RC(t_put(db, "c", "after", "{}"), PIER_OK);
    int rc = pier_sync(db, NULL, &options); /* syncing into a closed server */
    CHECK(rc == PIER_ECLOSED || rc == PIER_ENETWORK);
    pier_server_free(server);
    pier_db_free(db);
}

static void test_scopes_and_identity(void) {
    pier_server *server = t_open_server("server-scopes", NULL);
    REQUIRE(server);
    pier_db *a = t_open("scope-a");
    pier_db *b = t_open("scope-b");
    REQUIRE(a && b);
    REQUIRE_RC(pier_db_put_scoped(a, "jobs", "j1", "team-a", "{\"t\":1}", 7), PIER_OK);
    REQUIRE_RC(pier_db_put_scoped(a, "jobs", "j2", "team-b", "{\"t\":2}", 7), PIER_OK);
    CHECK_RC(sync_with(a, server, NULL), PIER_OK);

    /* B may read team-a only. */
    const char *read_scopes[] = {"team-a"};
    pier_identity who = PIER_IDENTITY_INIT;
    who.user = "bob";
    who.read_scopes = read_scopes;
    who.read_scope_count = 1;
    who.write_scopes = read_scopes;
    who.write_scope_count = 1;
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    options.identity = &who;
    CHECK_RC(pier_sync(b, NULL, &options), PIER_OK);
    CHECK(t_count(b, "jobs") == 1);
    char *body = get(b, "jobs", "j1");
    CHECK_STR(body, "{\"t\":1}");
    pier_free(body);

    /* Writing into a scope B may not write: refused (forbidden, or rejected per record). */
    REQUIRE_RC(pier_db_put_scoped(b, "jobs", "j3", "team-b", "{\"t\":3}", 7), PIER_OK);
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    int rc = pier_sync(b, &report, &options);
    CHECK(rc == PIER_EFORBIDDEN || report.rejected >= 1);
    CHECK_RC(sync_with(a, server, NULL), PIER_OK);
    CHECK_RC(pier_db_get(a, &body, NULL, "jobs", "j3"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(body);
    pier_db_free(a);
    pier_db_free(b);
    pier_server_free(server);
}

/* Bad identities and request lengths are PIER_EINVALID with a message naming the field,
 * never "every scope" and never a trap. */
static void test_identity_and_request_arguments(void) {
    pier_server *server = t_open_server("server-identity-args", NULL);
    REQUIRE(server);
    pier_db *db = t_open("identity-args");
    REQUIRE(db);
    REQUIRE_RC(pier_db_put_scoped(db, "jobs", "j1", "team-b", "{\"t\":1}", 7), PIER_OK);
    static const unsigned char request[] = "not a frame";
    const char *scopes[] = {"team-a"};
    unsigned char *frame = T_SENTINEL;
    size_t len = 77;

    /* NULL with a count > 0 is a forgotten list, not "every scope". */
    pier_identity who = PIER_IDENTITY_INIT;
    who.read_scope_count = 1;
    CHECK_RC(pier_server_handle(server, &frame, &len, request, sizeof request - 1, &who), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "identity->read_scopes");
    CHECK_NULL_OUT(frame);
    CHECK(len == 0);
    who = (pier_identity)PIER_IDENTITY_INIT;
    who.write_scope_count = 2;
    frame = T_SENTINEL;
    CHECK_RC(pier_server_handle(server, &frame, &len, request, sizeof request - 1, &who), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "identity->write_scopes");
    CHECK_NULL_OUT(frame);
    /* The same through pier_sync's in-process server: nothing is pushed. */
    pier_sync_options options = PIER_SYNC_OPTIONS_INIT;
    options.server = server;
    options.identity = &who;
    CHECK_RC(pier_sync(db, NULL, &options), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "identity->write_scopes");
    int state = -1;
    CHECK_RC(pier_db_state(db, &state, "jobs", "j1"), PIER_OK);
    CHECK(state == PIER_STATE_PENDING);

    /* Counts past PIER_MAX_IDENTITY_SCOPES, up to SIZE_MAX, are refused before the list is read. */
    const size_t too_many[] = {(size_t)PIER_MAX_IDENTITY_SCOPES + 1, (size_t)1 << 63, SIZE_MAX};
    for (size_t i = 0; i < sizeof too_many / sizeof too_many[0]; i++) {
        who = (pier_identity)PIER_IDENTITY_INIT;
        who.read_scopes = scopes;
        who.read_scope_count = too_many[i];
        frame = T_SENTINEL;
        CHECK_RC(pier_server_handle(server, &frame, &len, request, sizeof request - 1, &who), PIER_EINVALID);
        CHECK_CONTAINS(pier_errmsg(), "identity->read_scope_count");
        CHECK_NULL_OUT(frame);
        who = (pier_identity)PIER_IDENTITY_INIT;
        who.write_scopes = scopes;
        who.write_scope_count = too_many[i];
        CHECK_RC(pier_sync(db, NULL, &options), PIER_EINVALID);
        CHECK_CONTAINS(pier_errmsg(), "identity->write_scope_count");
    }

    /* PIER_MAX_IDENTITY_SCOPES itself is accepted. */
    const char **many = malloc(PIER_MAX_IDENTITY_SCOPES * sizeof *many);
    REQUIRE(many);
    for (size_t i = 0; i < PIER_MAX_IDENTITY_SCOPES; i++) many[i] = i == 0 ? "team-b" : "team-a";
    who = (pier_identity)PIER_IDENTITY_INIT;
    who.read_scopes = many;
    who.read_scope_count = PIER_MAX_IDENTITY_SCOPES;
    frame = NULL;
    CHECK_RC(pier_server_handle(server, &frame, &len, request, sizeof request - 1, &who), PIER_OK);
    pier_free(frame);
    free(many);

    /* NULL with a count of 0 still means every scope: the team-b record is pushed. */
    who = (pier_identity)PIER_IDENTITY_INIT;
    who.user = "anyone";
    pier_sync_report report = PIER_SYNC_REPORT_INIT;
    CHECK_RC(pier_sync(db, &report, &options), PIER_OK);
    CHECK(report.pushed == 1);

    /* A request length past SIZE_MAX / 2 is named as such, not as a NULL request. */
    frame = T_SENTINEL;
    CHECK_RC(pier_server_handle(server, &frame, &len, request, SIZE_MAX, NULL), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "request_len");
    CHECK_NULL_OUT(frame);
    frame = T_SENTINEL;
    CHECK_RC(pier_server_handle(server, &frame, &len, NULL, 4, NULL), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "request is NULL");
    CHECK_NULL_OUT(frame);

    pier_db_free(db);
    pier_server_free(server);
}

static const pier_test tests[] = {
    {"round_trip", test_round_trip},
    {"progress_and_batches", test_progress_and_batches},
    {"host_transport", test_host_transport},
    {"protocol_errors", test_protocol_errors},
    {"manual_conflict", test_manual_conflict},
    {"resolve_keep_server", test_resolve_keep_server},
    {"client_resolver", test_client_resolver},
    {"server_resolver", test_server_resolver},
    {"collection_modes", test_collection_modes},
    {"server_open_errors", test_server_open_errors},
    {"null_and_closed", test_null_and_closed},
    {"scopes_and_identity", test_scopes_and_identity},
    {"identity_and_request_arguments", test_identity_and_request_arguments},
};

int main(int argc, char **argv) { return RUN_TESTS(tests); }
