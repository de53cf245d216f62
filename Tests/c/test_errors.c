/*
 * test_errors.c — every documented error path: NULL arguments, closed handles, bad names
 * and ids, bad bodies, status code names and descriptions, and pier_errmsg (never NULL,
 * unchanged by success, per thread).
 */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

/* strdup, interposed: libpier copies pier_errmsg's text with it, and a test makes it fail
 * to see what pier_errmsg says when that copy cannot be made. The executable's definition
 * wins over libc's for libpier too (the dynamic linker looks here first). */
static _Thread_local int fail_next_strdup; /* this thread's next n calls return NULL */
static _Thread_local int strdup_failures;

char *strdup(const char *s) {
    if (fail_next_strdup > 0) {
        fail_next_strdup--;
        strdup_failures++;
        errno = ENOMEM;
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy) memcpy(copy, s, n);
    return copy;
}


/* The call failed with EINVALID and pier_errmsg() names the argument. */
#define CHECK_NULL_ARG(expr, argname)                                                  \
    do {                                                                               \
        CHECK_RC(expr, PIER_EINVALID);                                                 \
        CHECK_CONTAINS(pier_errmsg(), argname);                                        \
    } while (0)

/* ---- Status codes ----------------------------------------------------------------- */

static void test_errstr_errname(void) {
    static const struct { int code; const char *name; } codes[] = {
        {PIER_OK, "PIER_OK"},                 {PIER_ERROR, "PIER_ERROR"},
        {PIER_EINVALID, "PIER_EINVALID"},     {PIER_ENOTFOUND, "PIER_ENOTFOUND"},
        {PIER_ECLOSED, "PIER_ECLOSED"},       {PIER_ENOTDB, "PIER_ENOTDB"},
        {PIER_EVERSION, "PIER_EVERSION"},     {PIER_EREADONLY, "PIER_EREADONLY"},
        {PIER_ESTATE, "PIER_ESTATE"},         {PIER_EBUSY, "PIER_EBUSY"},
        {PIER_EIO, "PIER_EIO"},               {PIER_ENOMEM, "PIER_ENOMEM"},
        {PIER_ECORRUPT, "PIER_ECORRUPT"},     {PIER_EKEY, "PIER_EKEY"},
        {PIER_ECONFLICT, "PIER_ECONFLICT"},   {PIER_EPROTOCOL, "PIER_EPROTOCOL"},
        {PIER_ENETWORK, "PIER_ENETWORK"},     {PIER_EAUTH, "PIER_EAUTH"},
        {PIER_EFORBIDDEN, "PIER_EFORBIDDEN"}, {PIER_ELIMIT, "PIER_ELIMIT"},
        {PIER_ECANCELLED, "PIER_ECANCELLED"},
    };
    size_t n = sizeof codes / sizeof codes[0];
    /* The codes are 0, -1, ..., -20: never renumbered. */
    for (size_t i = 0; i < n; i++) CHECK(codes[i].code == -(int)i);
    for (size_t i = 0; i < n; i++) {
        CHECK_STR(pier_errname(codes[i].code), codes[i].name);
        const char *text = pier_errstr(codes[i].code);
        CHECK(text != NULL && *text != '\0');
        CHECK(text && strcmp(text, "unknown status code") != 0);
        /* Each description is distinct. */
        for (size_t j = 0; j < i; j++) CHECK(strcmp(pier_errstr(codes[j].code), text) != 0);
        /* Static: the same pointer each time. */
        CHECK(pier_errstr(codes[i].code) == text);
    }
    CHECK_STR(pier_errstr(PIER_EINVALID), "invalid argument");

    int unknown[] = {1, 2, 1000, -1000, INT_MIN, INT_MAX}; /* (new codes may be appended after -20) */
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK_STR(pier_errstr(unknown[i]), "unknown status code");
        const char *name = pier_errname(unknown[i]);
        CHECK(name != NULL && *name != '\0');
        for (size_t j = 0; j < n && name; j++) CHECK(strcmp(name, codes[j].name) != 0);
    }
}

/* ---- pier_errmsg -------------------------------------------------------------------- */

static void *fresh_thread_message(void *unused) {
    (void)unused;
    const char *message = pier_errmsg();
    return (void *)(message ? strdup(message) : NULL);
}

static void test_errmsg_basics(void) {
    /* Before any failure on a thread: "not an error", never NULL. */
    pthread_t thread;
    REQUIRE(pthread_create(&thread, NULL, fresh_thread_message, NULL) == 0);
    char *fresh = NULL;
    pthread_join(thread, (void **)&fresh);
    CHECK_STR(fresh, "not an error");
    free(fresh);

    /* After a failure: a useful message. */
    CHECK_RC(pier_db_put(NULL, "c", "i", "{}", 2), PIER_EINVALID);
    const char *message = pier_errmsg();
    REQUIRE(message);
    CHECK(*message);
    char *copy = strdup(message);

    /* A successful call leaves it unchanged. */
    char id[PIER_UUID_BUFFER_SIZE];
    CHECK_RC(pier_uuid7(id), PIER_OK);
    pier_db *db = t_open("errmsg");
    REQUIRE(db);
    CHECK_RC(pier_db_put(db, "c", "i", "{}", 2), PIER_OK);
    CHECK_STR(pier_errmsg(), copy);

    /* The next failure replaces it, and says what is wrong. */
    CHECK_RC(pier_db_put(db, "", "i", "{}", 2), PIER_EINVALID);
    CHECK(strcmp(pier_errmsg(), copy) != 0);
    CHECK_CONTAINS(pier_errmsg(), "collection");
    CHECK_RC(pier_db_put(db, "c", "i", "[]", 2), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "object");
    free(copy);
    pier_db_free(db);
}

/* Two threads fail differently at the same time; each sees its own message. */
typedef struct {
    pthread_barrier_t *barrier;
    int which;
    int mismatches;
    int null_messages;
} errmsg_worker;

static void *errmsg_thread(void *arg) {
    errmsg_worker *w = arg;
    pier_db *db = NULL;
    if (w->which == 1) pier_db_open(&db, t_path("errmsg-thread"), NULL);
    for (int round = 0; round < 200; round++) {
        int rc;
        if (w->which == 0) rc = pier_uuid7(NULL);                        /* "out must point..." */
        else rc = pier_db_get(db, (char *[]){NULL}, NULL, "coll", "missing-record"); /* ENOTFOUND */
        (void)rc;
        pthread_barrier_wait(w->barrier); /* both have failed */
        const char *message = pier_errmsg();
        if (!message) w->null_messages++;
        else if (w->which == 0 && !strstr(message, "out")) w->mismatches++;
        else if (w->which == 1 && !strstr(message, "missing-record")) w->mismatches++;
        pthread_barrier_wait(w->barrier); /* both have looked */
    }
    pier_db_free(db);
    return NULL;
}

static void test_errmsg_thread_local(void) {
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    errmsg_worker workers[2] = {{&barrier, 0, 0, 0}, {&barrier, 1, 0, 0}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&threads[i], NULL, errmsg_thread, &workers[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++) {
        CHECK(workers[i].mismatches == 0);
        CHECK(workers[i].null_messages == 0);
    }
    /* This thread's message is untouched by the others. */
    CHECK_RC(pier_db_count(NULL, NULL, NULL), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "db");
}

/* When the message cannot be copied, pier_errmsg still reports a failure. */
#define OOM_MESSAGE "out of memory while recording the error"

static void *oom_thread(void *arg) {
    int *ok = arg;
    fail_next_strdup = 1;
    int rc = pier_uuid7(NULL);
    *ok = rc == PIER_EINVALID && strdup_failures == 1 && strcmp(pier_errmsg(), OOM_MESSAGE) == 0;
    return NULL; /* the thread's exit releases its message: the static one must not be freed */
}

static void test_errmsg_without_memory(void) {
    strdup_failures = 0;
    fail_next_strdup = 1;
    CHECK_RC(pier_uuid7(NULL), PIER_EINVALID);
    fail_next_strdup = 0;
    REQUIRE(strdup_failures == 1); /* the interposed strdup was the one libpier called */
    CHECK_STR(pier_errmsg(), OOM_MESSAGE);
    /* A success leaves it; the next failure replaces it (and does not free the static text). */
    char id[PIER_UUID_BUFFER_SIZE];
    CHECK_RC(pier_uuid7(id), PIER_OK);
    CHECK_STR(pier_errmsg(), OOM_MESSAGE);
    CHECK_RC(pier_db_put(NULL, "c", "i", "{}", 2), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "db is NULL");
    /* Twice in a row, then a normal one again. */
    fail_next_strdup = 2;
    CHECK_RC(pier_uuid7(NULL), PIER_EINVALID);
    CHECK_RC(pier_db_put(NULL, "c", "i", "{}", 2), PIER_EINVALID);
    CHECK_STR(pier_errmsg(), OOM_MESSAGE);
    CHECK_RC(pier_uuid7(NULL), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "out must point");

    /* A thread that ends holding the static message. */
    int ok = 0;
    pthread_t thread;
    REQUIRE(pthread_create(&thread, NULL, oom_thread, &ok) == 0);
    pthread_join(thread, NULL);
    CHECK(ok);
}

/* The host's log callback runs inside the failing call; a failing Pier call it makes (on
 * any handle) must not replace the message the caller reads after its own call. */
typedef struct {
    int depth;
    int calls;
    int failed;
} failing_logger_state;

static void failing_logger(void *ctx, int level, const char *message) {
    (void)level; (void)message;
    failing_logger_state *state = ctx;
    if (state->depth) return; /* its own failure logs too */
    state->depth++;
    state->calls++;
    if (pier_db_put(NULL, "logger", "x", "{}", 2) == PIER_EINVALID) state->failed++;
    state->depth--;
}

static void test_errmsg_survives_failing_log_callback(void) {
    pier_db *db = t_open("errmsg-logger");
    REQUIRE(db);
    failing_logger_state state = {0, 0, 0};
    REQUIRE_RC(pier_log_set_callback(failing_logger, &state, PIER_LOG_DEBUG), PIER_OK);
    CHECK_RC(pier_uuid7(NULL), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "out must point");
    CHECK_RC(pier_db_put(db, "", "i", "{}", 2), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "collection");
    char *body = T_SENTINEL;
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "missing-record"), PIER_ENOTFOUND);
    CHECK_CONTAINS(pier_errmsg(), "missing-record");
    CHECK_NULL_OUT(body);
    REQUIRE_RC(pier_log_set_callback(NULL, NULL, PIER_LOG_ERROR), PIER_OK);
    CHECK(state.calls >= 3);           /* the logger did run for each failure ... */
    CHECK(state.failed == state.calls); /* ... and its own call failed each time */
    pier_db_free(db);
}

/* ---- NULL arguments ------------------------------------------------------------------- */

static void test_null_db(void) {
    char *out = T_SENTINEL;
    size_t len = 77;
    int64_t n = 5;
    int state = 5;
    const char *ids[] = {"a"};
    const char *bodies[] = {"{}"};
    size_t lens[] = {2};
    CHECK_NULL_ARG(pier_db_close(NULL), "db");
    CHECK_NULL_ARG(pier_db_put(NULL, "c", "i", "{}", 2), "db");
    CHECK_NULL_ARG(pier_db_put_scoped(NULL, "c", "i", "s", "{}", 2), "db");
    CHECK_NULL_ARG(pier_db_put_many(NULL, "c", ids, bodies, lens, 1), "db");
    CHECK_NULL_ARG(pier_db_patch(NULL, "c", "i", "{}", 2), "db");
    CHECK_NULL_ARG(pier_db_get(NULL, &out, &len, "c", "i"), "db");
    CHECK_NULL_OUT(out);
    CHECK(len == 0);
    CHECK_NULL_ARG(pier_db_delete(NULL, "c", "i"), "db");
    out = T_SENTINEL; len = 77;
    CHECK_NULL_ARG(pier_db_list(NULL, &out, &len, "c", NULL, 10), "db");
    CHECK_NULL_OUT(out);
    CHECK(len == 0);
    CHECK_NULL_ARG(pier_db_count(NULL, &n, "c"), "db");
    out = T_SENTINEL; len = 77;
    CHECK_NULL_ARG(pier_db_query(NULL, &out, &len, "SELECT 1", NULL), "db");
    CHECK_NULL_OUT(out);
    CHECK(len == 0);
    CHECK_NULL_ARG(pier_db_create_index(NULL, "c", "f"), "db");
    CHECK_NULL_ARG(pier_db_begin(NULL), "db");
    CHECK_NULL_ARG(pier_db_commit(NULL), "db");
    CHECK_NULL_ARG(pier_db_rollback(NULL), "db");
    CHECK_NULL_ARG(pier_db_state(NULL, &state, "c", "i"), "db");
    out = T_SENTINEL; len = 77;
    CHECK_NULL_ARG(pier_db_metadata(NULL, &out, &len, "c", "i"), "db");
    CHECK_NULL_OUT(out);
    CHECK(len == 0);
    out = T_SENTINEL;
    CHECK_NULL_ARG(pier_db_client_id(NULL, &out), "db");
    CHECK_NULL_OUT(out);
    out = T_SENTINEL; len = 77;
    CHECK_NULL_ARG(pier_db_info(NULL, &out, &len), "db");
    CHECK(len == 0);
    pier_db_free(NULL);
    pier_free(NULL);
    CHECK_NULL_ARG(pier_uuid7(NULL), "out");
}

static void test_null_arguments(void) {
    pier_db *db = t_open("nulls");
    REQUIRE(db);
    REQUIRE_RC(pier_db_put(db, "c", "i", "{\"a\":1}", 7), PIER_OK);
    char *out = T_SENTINEL;
    size_t len = 77;

    /* Writes. */
    CHECK_NULL_ARG(pier_db_put(db, NULL, "i", "{}", 2), "collection");
    CHECK_NULL_ARG(pier_db_put(db, "c", NULL, "{}", 2), "id");
    CHECK_NULL_ARG(pier_db_put(db, "c", "i", NULL, 2), "body");
    CHECK_NULL_ARG(pier_db_put(db, "c", "i", NULL, 0), "body");
    CHECK_NULL_ARG(pier_db_put_scoped(db, NULL, "i", "s", "{}", 2), "collection");
    CHECK_NULL_ARG(pier_db_put_scoped(db, "c", NULL, "s", "{}", 2), "id");
    CHECK_NULL_ARG(pier_db_put_scoped(db, "c", "i", NULL, "{}", 2), "scope");
    CHECK_NULL_ARG(pier_db_put_scoped(db, "c", "i", "s", NULL, 2), "body");
    CHECK_NULL_ARG(pier_db_patch(db, NULL, "i", "{}", 2), "collection");
    CHECK_NULL_ARG(pier_db_patch(db, "c", NULL, "{}", 2), "id");
    CHECK_NULL_ARG(pier_db_patch(db, "c", "i", NULL, 2), "patch");
    CHECK_NULL_ARG(pier_db_delete(db, NULL, "i"), "collection");
    CHECK_NULL_ARG(pier_db_delete(db, "c", NULL), "id");
    CHECK_NULL_ARG(pier_db_create_index(db, NULL, "f"), "collection");
    CHECK_NULL_ARG(pier_db_create_index(db, "c", NULL), "field");

    /* put_many: each array, and a NULL element. */
    const char *ids[] = {"a", "b"};
    const char *bodies[] = {"{}", "{}"};
    size_t lens[] = {2, 2};
    CHECK_NULL_ARG(pier_db_put_many(db, NULL, ids, bodies, lens, 2), "collection");
    CHECK_NULL_ARG(pier_db_put_many(db, "c", NULL, bodies, lens, 2), "ids");
    CHECK_NULL_ARG(pier_db_put_many(db, "c", ids, NULL, lens, 2), "bodies");
    CHECK_NULL_ARG(pier_db_put_many(db, "c", ids, bodies, NULL, 2), "body_lens");
    const char *null_id[] = {"a", NULL};
    CHECK_NULL_ARG(pier_db_put_many(db, "c", null_id, bodies, lens, 2), "id");
    const char *null_body[] = {"{}", NULL};
    CHECK_NULL_ARG(pier_db_put_many(db, "c", ids, null_body, lens, 2), "body");
    CHECK(t_count(db, "c") == 1); /* none of the above wrote anything */

    /* Reads: out-pointers are set to NULL / 0 on failure. */
    CHECK_NULL_ARG(pier_db_get(db, NULL, &len, "c", "i"), "out_body");
    CHECK(len == 0);
    CHECK_NULL_ARG(pier_db_get(db, &out, &len, NULL, "i"), "collection");
    CHECK_NULL_OUT(out);
    out = T_SENTINEL; len = 77;
    CHECK_NULL_ARG(pier_db_get(db, &out, &len, "c", NULL), "id");
    CHECK(len == 0);

    len = 77;
    CHECK_NULL_ARG(pier_db_list(db, NULL, &len, "c", NULL, 10), "out_json");
    CHECK(len == 0);
    out = T_SENTINEL;
    CHECK_NULL_ARG(pier_db_list(db, &out, NULL, NULL, NULL, 10), "collection");
    CHECK_NULL_OUT(out);

    int64_t n = 5;
    CHECK_NULL_ARG(pier_db_count(db, NULL, "c"), "out_count");
    CHECK_NULL_ARG(pier_db_count(db, &n, NULL), "collection");

    len = 77;
    CHECK_NULL_ARG(pier_db_query(db, NULL, &len, "SELECT 1", NULL), "out_json");
    CHECK(len == 0);
    out = T_SENTINEL;
    CHECK_NULL_ARG(pier_db_query(db, &out, NULL, NULL, NULL), "sql");
    CHECK_NULL_OUT(out);

    int state = 5;
    CHECK_NULL_ARG(pier_db_state(db, NULL, "c", "i"), "out_state");
    CHECK_NULL_ARG(pier_db_state(db, &state, NULL, "i"), "collection");
    CHECK_NULL_ARG(pier_db_state(db, &state, "c", NULL), "id");

    len = 77;
    CHECK_NULL_ARG(pier_db_metadata(db, NULL, &len, "c", "i"), "out_json");
    CHECK(len == 0);
    out = T_SENTINEL;
    CHECK_NULL_ARG(pier_db_metadata(db, &out, NULL, NULL, "i"), "collection");
    CHECK_NULL_OUT(out);
    out = T_SENTINEL;
    CHECK_NULL_ARG(pier_db_metadata(db, &out, NULL, "c", NULL), "id");

    CHECK_NULL_ARG(pier_db_client_id(db, NULL), "out_id");
    len = 77;
    CHECK_NULL_ARG(pier_db_info(db, NULL, &len), "out_json");
    CHECK(len == 0);

    /* Optional pointers: out_len, after_id and params_json may be NULL. */
    CHECK_RC(pier_db_get(db, &out, NULL, "c", "i"), PIER_OK);
    pier_free(out);
    CHECK_RC(pier_db_list(db, &out, NULL, "c", NULL, 1), PIER_OK);
    pier_free(out);
    CHECK_RC(pier_db_metadata(db, &out, NULL, "c", "i"), PIER_OK);
    pier_free(out);
    CHECK_RC(pier_db_info(db, &out, NULL), PIER_OK);
    pier_free(out);
    CHECK_RC(pier_db_query(db, &out, NULL, "SELECT 1", NULL), PIER_OK);
    pier_free(out);

    /* The handle still works after all that. */
    char *body = NULL;
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "i"), PIER_OK);
    CHECK_STR(body, "{\"a\":1}");
    pier_free(body);
    pier_db_free(db);
}

/* ---- Closed handles ----------------------------------------------------------------- */

static void test_closed_handle(void) {
    pier_db *db = t_open("closed");
    REQUIRE(db);
    REQUIRE_RC(pier_db_put(db, "c", "i", "{}", 2), PIER_OK);
    REQUIRE_RC(pier_db_close(db), PIER_OK);
    CHECK_RC(pier_db_close(db), PIER_OK); /* OK also when already closed */

    char *out = T_SENTINEL;
    size_t len = 77;
    int64_t n = 5;
    int state = 5;
    const char *ids[] = {"a"};
    const char *bodies[] = {"{}"};
    size_t lens[] = {2};
    CHECK_RC(pier_db_put(db, "c", "i", "{}", 2), PIER_ECLOSED);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_put_scoped(db, "c", "i", "s", "{}", 2), PIER_ECLOSED);
    CHECK_RC(pier_db_put_many(db, "c", ids, bodies, lens, 1), PIER_ECLOSED);
    CHECK_RC(pier_db_patch(db, "c", "i", "{}", 2), PIER_ECLOSED);
    CHECK_RC(pier_db_get(db, &out, &len, "c", "i"), PIER_ECLOSED);
    CHECK_NULL_OUT(out);
    CHECK(len == 0);
    CHECK_RC(pier_db_delete(db, "c", "i"), PIER_ECLOSED);
    out = T_SENTINEL; len = 77;
    CHECK_RC(pier_db_list(db, &out, &len, "c", NULL, 10), PIER_ECLOSED);
    CHECK_NULL_OUT(out);
    CHECK(len == 0);
    CHECK_RC(pier_db_count(db, &n, "c"), PIER_ECLOSED);
    out = T_SENTINEL; len = 77;
    CHECK_RC(pier_db_query(db, &out, &len, "SELECT 1", NULL), PIER_ECLOSED);
    CHECK_NULL_OUT(out);
    CHECK(len == 0);
    CHECK_RC(pier_db_create_index(db, "c", "f"), PIER_ECLOSED);
    CHECK_RC(pier_db_begin(db), PIER_ECLOSED);
    CHECK_RC(pier_db_commit(db), PIER_ECLOSED);
    CHECK_RC(pier_db_rollback(db), PIER_ECLOSED);
    CHECK_RC(pier_db_state(db, &state, "c", "i"), PIER_ECLOSED);
    out = T_SENTINEL; len = 77;
    CHECK_RC(pier_db_metadata(db, &out, &len, "c", "i"), PIER_ECLOSED);
    CHECK_NULL_OUT(out);
    CHECK(len == 0);
    out = T_SENTINEL;
    CHECK_RC(pier_db_client_id(db, &out), PIER_ECLOSED);
    CHECK_NULL_OUT(out);
    out = T_SENTINEL; len = 77;
    CHECK_RC(pier_db_info(db, &out, &len), PIER_ECLOSED);
    CHECK_NULL_OUT(out);
    CHECK(len == 0);

    /* Bad arguments on a closed handle must not crash either (either code is fair). */
    int rc = pier_db_put(db, NULL, NULL, NULL, 0);
    CHECK(rc == PIER_ECLOSED || rc == PIER_EINVALID);
    rc = pier_db_get(db, NULL, NULL, NULL, NULL);
    CHECK(rc == PIER_ECLOSED || rc == PIER_EINVALID);
    pier_db_free(db);

    /* Closing a read-only handle works the same way. */
    pier_db *rw = t_open("closed-ro-src");
    REQUIRE(rw);
    char *info = NULL;
    REQUIRE_RC(pier_db_info(rw, &info, NULL), PIER_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s", t_json_text(info, "$.path"));
    pier_free(info);
    pier_db_free(rw);
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.flags = PIER_OPEN_READONLY;
    pier_db *ro = NULL;
    REQUIRE_RC(pier_db_open(&ro, path, &options), PIER_OK);
    CHECK_RC(pier_db_close(ro), PIER_OK);
    CHECK_RC(pier_db_count(ro, &n, "c"), PIER_ECLOSED);
    pier_db_free(ro);
}

/* ---- Names and ids ------------------------------------------------------------------ */

/* Calls each function that takes a collection name. */
typedef int (*name_call)(pier_db *db, const char *value);

static int col_put(pier_db *db, const char *c) { return pier_db_put(db, c, "i", "{}", 2); }
static int col_put_scoped(pier_db *db, const char *c) { return pier_db_put_scoped(db, c, "i", "s", "{}", 2); }
static int col_put_many(pier_db *db, const char *c) {
    const char *ids[] = {"i"};
    const char *bodies[] = {"{}"};
    size_t lens[] = {2};
    return pier_db_put_many(db, c, ids, bodies, lens, 1);
}
static int col_patch(pier_db *db, const char *c) { return pier_db_patch(db, c, "i", "{}", 2); }
static int col_get(pier_db *db, const char *c) {
    char *out = T_SENTINEL;
    int rc = pier_db_get(db, &out, NULL, c, "i");
    if (rc != PIER_OK && out != NULL) t_fail(__FILE__, __LINE__, "out_body not NULL after failure");
    if (rc == PIER_OK) pier_free(out);
    return rc;
}
static int col_delete(pier_db *db, const char *c) { return pier_db_delete(db, c, "i"); }
static int col_list(pier_db *db, const char *c) {
    char *out = T_SENTINEL;
    int rc = pier_db_list(db, &out, NULL, c, NULL, 10);
    if (rc != PIER_OK && out != NULL) t_fail(__FILE__, __LINE__, "out_json not NULL after failure");
    if (rc == PIER_OK) pier_free(out);
    return rc;
}
static int col_count(pier_db *db, const char *c) {
    int64_t n;
    return pier_db_count(db, &n, c);
}
static int col_index(pier_db *db, const char *c) { return pier_db_create_index(db, c, "f"); }
static int col_state(pier_db *db, const char *c) {
    int s;
    return pier_db_state(db, &s, c, "i");
}
static int col_metadata(pier_db *db, const char *c) {
    char *out = T_SENTINEL;
    int rc = pier_db_metadata(db, &out, NULL, c, "i");
    if (rc != PIER_OK && out != NULL) t_fail(__FILE__, __LINE__, "out_json not NULL after failure");
    if (rc == PIER_OK) pier_free(out);
    return rc;
}

static const struct { const char *name; name_call call; } collection_calls[] = {
    {"put", col_put}, {"put_scoped", col_put_scoped}, {"put_many", col_put_many},
    {"patch", col_patch}, {"get", col_get}, {"delete", col_delete}, {"list", col_list},
    {"count", col_count}, {"create_index", col_index}, {"state", col_state},
    {"metadata", col_metadata},
};

static int id_put(pier_db *db, const char *i) { return pier_db_put(db, "c", i, "{}", 2); }
static int id_put_scoped(pier_db *db, const char *i) { return pier_db_put_scoped(db, "c", i, "s", "{}", 2); }
static int id_put_many(pier_db *db, const char *i) {
    const char *ids[] = {"ok", i};
    const char *bodies[] = {"{}", "{}"};
    size_t lens[] = {2, 2};
    return pier_db_put_many(db, "c", ids, bodies, lens, 2);
}
static int id_patch(pier_db *db, const char *i) { return pier_db_patch(db, "c", i, "{}", 2); }
static int id_get(pier_db *db, const char *i) {
    char *out = T_SENTINEL;
    int rc = pier_db_get(db, &out, NULL, "c", i);
    if (rc != PIER_OK && out != NULL) t_fail(__FILE__, __LINE__, "out_body not NULL after failure");
    if (rc == PIER_OK) pier_free(out);
    return rc;
}
static int id_delete(pier_db *db, const char *i) { return pier_db_delete(db, "c", i); }
static int id_state(pier_db *db, const char *i) {
    int s;
    return pier_db_state(db, &s, "c", i);
}
static int id_metadata(pier_db *db, const char *i) {
    char *out = T_SENTINEL;
    int rc = pier_db_metadata(db, &out, NULL, "c", i);
    if (rc != PIER_OK && out != NULL) t_fail(__FILE__, __LINE__, "out_json not NULL after failure");
    if (rc == PIER_OK) pier_free(out);
    return rc;
}

static const struct { const char *name; name_call call; } id_calls[] = {
    {"put", id_put}, {"put_scoped", id_put_scoped}, {"put_many", id_put_many},
    {"patch", id_patch}, {"get", id_get}, {"delete", id_delete}, {"state", id_state},
    {"metadata", id_metadata},
};

static int scope_put(pier_db *db, const char *s) { return pier_db_put_scoped(db, "c", "i", s, "{}", 2); }

/* Names that must be refused; `max` is the byte limit of the kind of name. */
static void bad_names(size_t max, const char **out, size_t *n) {
    static char too_long[8][600];
    static char multibyte[600];
    size_t k = 0;
    out[k++] = "";
    memset(too_long[0], 'x', max + 1);
    too_long[0][max + 1] = 0;
    out[k++] = too_long[0];
    /* max+1 bytes made of 3-byte characters plus padding, e.g. 43 x "€" = 129 bytes. */
    size_t len = 0;
    while (len + 3 <= max + 1) { memcpy(multibyte + len, "\xe2\x82\xac", 3); len += 3; }
    while (len < max + 1) multibyte[len++] = 'y';
    multibyte[len] = 0;
    out[k++] = multibyte;
    out[k++] = "ctl\x01";
    out[k++] = "tab\tname";
    out[k++] = "new\nline";
    out[k++] = "del\x7f";
    out[k++] = "esc\x1b[0m";
    out[k++] = "\xff\xfe";                 /* not UTF-8 */
    out[k++] = "trunc\xc3";                /* truncated sequence */
    out[k++] = "over\xc0\xaf";             /* overlong encoding */
    out[k++] = "surrogate\xed\xa0\x80";    /* UTF-16 surrogate */
    out[k++] = "\xe2\x82";                 /* truncated 3-byte */
    *n = k;
}

static void test_bad_collection_names(void) {
    pier_db *db = t_open("names");
    REQUIRE(db);
    REQUIRE_RC(pier_db_put(db, "c", "i", "{}", 2), PIER_OK);
    const char *names[32];
    size_t n;
    bad_names(PIER_MAX_COLLECTION_BYTES, names, &n);
    CHECK(strlen(names[1]) == 129);
    CHECK(strlen(names[2]) == 129);
    for (size_t f = 0; f < sizeof collection_calls / sizeof collection_calls[0]; f++) {
        for (size_t i = 0; i < n; i++) {
            int rc = collection_calls[f].call(db, names[i]);
            if (rc != PIER_EINVALID) {
                t_fail(__FILE__, __LINE__, "%s with collection name #%zu (%zu bytes) returned %s, expected PIER_EINVALID",
                       collection_calls[f].name, i, strlen(names[i]), pier_errname(rc));
            } else if (!strstr(pier_errmsg(), "collection")) {
                t_fail(__FILE__, __LINE__, "%s with bad collection #%zu: message does not name the collection: %s",
                       collection_calls[f].name, i, pier_errmsg());
            }
        }
    }
    /* The documented message for the length. */
    CHECK_RC(col_put(db, ""), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "128");
    CHECK_CONTAINS(pier_errmsg(), "got 0");
    CHECK(t_count(db, "c") == 1);
    pier_db_free(db);
}

static void test_bad_ids(void) {
    pier_db *db = t_open("ids");
    REQUIRE(db);
    REQUIRE_RC(pier_db_put(db, "c", "i", "{}", 2), PIER_OK);
    const char *names[32];
    size_t n;
    bad_names(PIER_MAX_ID_BYTES, names, &n);
    CHECK(strlen(names[1]) == 257);
    CHECK(strlen(names[2]) == 257);
    for (size_t f = 0; f < sizeof id_calls / sizeof id_calls[0]; f++) {
        for (size_t i = 0; i < n; i++) {
            int rc = id_calls[f].call(db, names[i]);
            if (rc != PIER_EINVALID) {
                t_fail(__FILE__, __LINE__, "%s with id #%zu (%zu bytes) returned %s, expected PIER_EINVALID",
                       id_calls[f].name, i, strlen(names[i]), pier_errname(rc));
            } else if (!strstr(pier_errmsg(), "id")) {
                t_fail(__FILE__, __LINE__, "%s with bad id #%zu: message does not name the id: %s",
                       id_calls[f].name, i, pier_errmsg());
            }
        }
    }
    CHECK(t_count(db, "c") == 1); /* put_many wrote neither "ok" nor the bad one */

    /* Scopes. */
    bad_names(PIER_MAX_SCOPE_BYTES, names, &n);
    for (size_t i = 0; i < n; i++) {
        int rc = scope_put(db, names[i]);
        if (rc != PIER_EINVALID)
            t_fail(__FILE__, __LINE__, "put_scoped with scope #%zu returned %s, expected PIER_EINVALID", i, pier_errname(rc));
    }

    /* after_id must be UTF-8 too. */
    char *out = T_SENTINEL;
    CHECK_RC(pier_db_list(db, &out, NULL, "c", "\xff", 10), PIER_EINVALID);
    CHECK_NULL_OUT(out);
    /* SQL and params must be UTF-8. */
    out = T_SENTINEL;
    CHECK_RC(pier_db_query(db, &out, NULL, "SELECT '\xff'", NULL), PIER_EINVALID);
    CHECK_NULL_OUT(out);
    CHECK_RC(pier_db_query(db, &out, NULL, "SELECT ?1", "[\"\xff\"]"), PIER_EINVALID);
    CHECK_NULL_OUT(out);
    CHECK(t_count(db, "c") == 1);
    pier_db_free(db);
}

/* ---- Bodies ----------------------------------------------------------------------- */

static void test_bad_bodies(void) {
    pier_db *db = t_open("bodies");
    REQUIRE(db);
    REQUIRE_RC(pier_db_put(db, "c", "keep", "{\"v\":1}", 7), PIER_OK);
    static const struct { const char *body; const char *expect; } bad[] = {
        /* not an object */
        {"[]", "object"}, {"[1,2]", "object"}, {"\"text\"", "object"}, {"42", "object"},
        {"-1", "object"}, {"true", "object"}, {"false", "object"}, {"null", "object"},
        {"", "object"}, {"   \n", "object"}, {"hello", "object"},
        /* malformed */
        {"{", "JSON"}, {"{\"a\":}", "JSON"}, {"{\"a\" 1}", "JSON"}, {"{'a':1}", "JSON"},
        {"{\"a\":1,}", NULL}, {"{\"a\":1} {}", NULL}, {"{\"a\":1}]", NULL}, {"{\"a\":tru}", "JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pier_db_put(db, "c", "x", bad[i].body, strlen(bad[i].body));
        if (rc != PIER_EINVALID) {
            t_fail(__FILE__, __LINE__, "put body '%s' returned %s, expected PIER_EINVALID", bad[i].body, pier_errname(rc));
            continue;
        }
        if (bad[i].expect && !strstr(pier_errmsg(), bad[i].expect))
            t_fail(__FILE__, __LINE__, "put body '%s': message \"%s\" does not mention \"%s\"", bad[i].body, pier_errmsg(), bad[i].expect);
        rc = pier_db_put_scoped(db, "c", "x", "s", bad[i].body, strlen(bad[i].body));
        if (rc != PIER_EINVALID)
            t_fail(__FILE__, __LINE__, "put_scoped body '%s' returned %s", bad[i].body, pier_errname(rc));
        rc = pier_db_patch(db, "c", "keep", bad[i].body, strlen(bad[i].body));
        if (rc != PIER_EINVALID)
            t_fail(__FILE__, __LINE__, "patch '%s' returned %s, expected PIER_EINVALID", bad[i].body, pier_errname(rc));
    }
    /* A raw NUL inside a string is not JSON. */
    CHECK_RC(pier_db_put(db, "c", "x", "{\"a\":\"\0\"}", 9), PIER_EINVALID);

    /* Nothing was written and the kept record is unchanged. */
    CHECK(t_count(db, "c") == 1);
    char *body = NULL;
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "keep"), PIER_OK);
    CHECK_STR(body, "{\"v\":1}");
    pier_free(body);
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "x"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(body);

    /* Over the limit names the size and the limit. */
    pier_db_free(db);
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.max_body_bytes = 10;
    REQUIRE_RC(pier_db_open(&db, t_path("bodies-small"), &options), PIER_OK);
    CHECK_RC(pier_db_put(db, "c", "x", "{\"abc\":123}", 11), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "11");
    CHECK_CONTAINS(pier_errmsg(), "10");
    CHECK_RC(pier_db_put(db, "c", "x", "{\"ab\":123}", 10), PIER_OK);
    /* A patch larger than the limit is EINVALID (the patch itself is over). */
    CHECK_RC(pier_db_patch(db, "c", "x", "{\"abc\":123}", 11), PIER_EINVALID);
    pier_db_free(db);
}

/* Regression: a body whose body_len covers a trailing NUL byte, "{\"a\":1}\0" (8 bytes),
 * was once accepted and stored with the NUL, so pier_db_get returned len 8 with strlen 7
 * and pier_db_list / pier_db_query returned JSON with a NUL inside (fixed in 638fe2f).
 * Such a buffer is not JSON object text: PIER_EINVALID. */
static void test_body_with_trailing_nul(void) {
    pier_db *db = t_open("nul");
    REQUIRE(db);
    CHECK_RC(pier_db_put(db, "c", "x", "{\"a\":1}\0", 8), PIER_EINVALID);
    CHECK_RC(pier_db_put(db, "c", "y", "{\"a\":1}\0\0\0", 10), PIER_EINVALID);
    CHECK_RC(pier_db_put_scoped(db, "c", "z", "s", "{}\0", 3), PIER_EINVALID);
    CHECK(t_count(db, "c") == 0);
    /* Whatever was stored, results must stay C strings: length == strlen. */
    char *json = NULL;
    size_t len = 0;
    REQUIRE_RC(pier_db_list(db, &json, &len, "c", NULL, 10), PIER_OK);
    CHECK(json && len == strlen(json));
    pier_free(json);
    REQUIRE_RC(pier_db_query(db, &json, &len, "SELECT body FROM records", NULL), PIER_OK);
    CHECK(json && len == strlen(json));
    pier_free(json);
    pier_db_free(db);
}

/* ---- Misc arguments ------------------------------------------------------------------- */

static void test_other_arguments(void) {
    pier_db *db = t_open("misc");
    REQUIRE(db);
    /* Log levels. */
    CHECK_RC(pier_log_set_callback(NULL, NULL, -1), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "level");
    CHECK_RC(pier_log_set_callback(NULL, NULL, PIER_LOG_ERROR + 1), PIER_EINVALID);
    /* Field paths for indexes (more in test_api). */
    CHECK_RC(pier_db_create_index(db, "c", ""), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "field");
    /* Transactions on a fresh handle. */
    CHECK_RC(pier_db_commit(db), PIER_ESTATE);
    CHECK_CONTAINS(pier_errmsg(), "transaction");
    CHECK_RC(pier_db_rollback(db), PIER_ESTATE);
    pier_db_free(db);
}

static const pier_test tests[] = {
    {"errstr_errname", test_errstr_errname},
    {"errmsg_basics", test_errmsg_basics},
    {"errmsg_thread_local", test_errmsg_thread_local},
    {"errmsg_without_memory", test_errmsg_without_memory},
    {"errmsg_survives_failing_log_callback", test_errmsg_survives_failing_log_callback},
    {"null_db", test_null_db},
    {"null_arguments", test_null_arguments},
    {"closed_handle", test_closed_handle},
    {"bad_collection_names", test_bad_collection_names},
    {"bad_ids", test_bad_ids},
    {"bad_bodies", test_bad_bodies},
    {"body_with_trailing_nul", test_body_with_trailing_nul},
    {"other_arguments", test_other_arguments},
};

int main(int argc, char **argv) { return RUN_TESTS(tests); }
