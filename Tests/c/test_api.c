/*
 * test_api.c — what each function of pier.h does when used as documented: versions, ids,
 * put/get/patch/delete, paging, counting, queries, indexes, transactions, batch writes,
 * metadata, store info and the log callback.
 */
#define _GNU_SOURCE
#include "test.h"

#include <stdlib.h>
#include <time.h>

/* The body of a record, or NULL; free with pier_free. */
static char *get(pier_db *db, const char *collection, const char *id) {
    char *body = NULL;
    if (pier_db_get(db, &body, NULL, collection, id) != PIER_OK) return NULL;
    return body;
}

/* Runs a query and returns its JSON (NULL on failure); free with pier_free. */
static char *query(pier_db *db, const char *sql, const char *params) {
    char *out = NULL;
    if (pier_db_query(db, &out, NULL, sql, params) != PIER_OK) return NULL;
    return out;
}

/* ---- Versions and ids ---------------------------------------------------------- */

static void test_version(void) {
    CHECK_STR(pier_version(), PIER_VERSION_STRING);
    CHECK(pier_version_number() == PIER_VERSION_NUMBER);
    CHECK(PIER_VERSION_NUMBER == PIER_VERSION_MAJOR * 10000 + PIER_VERSION_MINOR * 100 + PIER_VERSION_PATCH);
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", PIER_VERSION_MAJOR, PIER_VERSION_MINOR, PIER_VERSION_PATCH);
    CHECK_STR(PIER_VERSION_STRING, expected);
    CHECK(pier_version() == pier_version()); /* static: the same pointer each time */
}

static int is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static void check_uuid7_format(const char *id) {
    REQUIRE(strlen(id) == 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) CHECK(id[i] == '-');
        else CHECK(is_lower_hex(id[i]));
    }
    CHECK(id[14] == '7');                                        /* version nibble */
    CHECK(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b'); /* variant 10xx */
}

static void test_uuid7(void) {
    char id[PIER_UUID_BUFFER_SIZE];
    memset(id, 'X', sizeof id);
    REQUIRE_RC(pier_uuid7(id), PIER_OK);
    CHECK(id[36] == '\0');
    check_uuid7_format(id);

    /* The first 48 bits are Unix milliseconds: close to now. */
    char hex[13];
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = 0;
    long long ms = strtoll(hex, NULL, 16);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    CHECK(llabs(now_ms - ms) < 60 * 1000);

    /* Successive ids sort in creation order and never repeat, even within a millisecond. */
    enum { N = 5000 };
    static char ids[N][PIER_UUID_BUFFER_SIZE];
    for (int i = 0; i < N; i++) REQUIRE_RC(pier_uuid7(ids[i]), PIER_OK);
    int ordered = 1;
    for (int i = 1; i < N; i++) {
        if (strcmp(ids[i - 1], ids[i]) >= 0) {
            ordered = 0;
            fprintf(stderr, "id %d (%s) does not sort after id %d (%s)\n", i, ids[i], i - 1, ids[i - 1]);
            break;
        }
    }
    CHECK(ordered);
    for (int i = 0; i < N; i += 997) check_uuid7_format(ids[i]);
}

/* ---- put / get ------------------------------------------------------------------ */

static void test_put_get(void) {
    pier_db *db = t_open("putget");
    REQUIRE(db);
    const char *body = "{\"name\": \"Ada\", \"n\": 1, \"tags\": [\"x\"], \"nested\": {\"a\": null}}";
    REQUIRE_RC(t_put(db, "people", "p1", body), PIER_OK);
    char *out = T_SENTINEL;
    size_t len = 12345;
    REQUIRE_RC(pier_db_get(db, &out, &len, "people", "p1"), PIER_OK);
    CHECK_STR(out, body); /* the body comes back byte for byte */
    CHECK(len == strlen(body));
    CHECK(out && out[len] == '\0');
    pier_free(out);

    /* out_len may be NULL. */
    out = NULL;
    CHECK_RC(pier_db_get(db, &out, NULL, "people", "p1"), PIER_OK);
    CHECK_STR(out, body);
    pier_free(out);

    /* Only body_len bytes are read: no NUL needed, trailing bytes ignored. */
    const char buffer[] = "{\"a\":1}GARBAGE";
    CHECK_RC(pier_db_put(db, "people", "p2", buffer, 7), PIER_OK);
    out = get(db, "people", "p2");
    CHECK_STR(out, "{\"a\":1}");
    pier_free(out);

    /* put replaces the whole body. */
    CHECK_RC(t_put(db, "people", "p1", "{\"name\":\"Grace\"}"), PIER_OK);
    out = get(db, "people", "p1");
    CHECK_STR(out, "{\"name\":\"Grace\"}");
    pier_free(out);

    /* UTF-8 in names, ids and bodies; the same id in another collection is another record. */
    CHECK_RC(t_put(db, "città", "ключ-1", "{\"emoji\":\"\xf0\x9f\x9a\xa2\"}"), PIER_OK);
    out = get(db, "città", "ключ-1");
    CHECK_STR(out, "{\"emoji\":\"\xf0\x9f\x9a\xa2\"}");
    pier_free(out);
    CHECK_RC(t_put(db, "other", "p1", "{\"other\":true}"), PIER_OK);
    out = get(db, "people", "p1");
    CHECK_STR(out, "{\"name\":\"Grace\"}");
    pier_free(out);

    /* Missing record / collection: ENOTFOUND with NULL out-pointers. */
    out = T_SENTINEL;
    len = 99;
    CHECK_RC(pier_db_get(db, &out, &len, "people", "nope"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(out);
    CHECK(len == 0);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_get(db, &out, &len, "nocollection", "p1"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(out);

    /* An empty object and a body at exactly the size limit are fine. */
    CHECK_RC(t_put(db, "people", "empty", "{}"), PIER_OK);
    pier_db_free(db);
}

static void test_put_limits(void) {
    /* Limits are bytes of UTF-8: exactly the maximum is accepted. */
    pier_db *db = t_open("limits");
    REQUIRE(db);
    CHECK_RC(t_put(db, t_repeat('c', PIER_MAX_COLLECTION_BYTES), t_repeat('i', PIER_MAX_ID_BYTES), "{}"), PIER_OK);
    CHECK(t_count(db, t_repeat('c', PIER_MAX_COLLECTION_BYTES)) == 1);
    /* 64 two-byte characters = 128 bytes. */
    char name[PIER_MAX_COLLECTION_BYTES + 1] = {0};
    for (int i = 0; i < 64; i++) memcpy(name + 2 * i, "\xc3\xa9", 2);
    CHECK_RC(t_put(db, name, "x", "{}"), PIER_OK);
    CHECK_RC(pier_db_put_scoped(db, "c", "x", t_repeat('s', PIER_MAX_SCOPE_BYTES), "{}", 2), PIER_OK);

    /* max_body_bytes: exactly the limit passes, one more byte is EINVALID. */
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.max_body_bytes = 64;
    pier_db *small = NULL;
    REQUIRE_RC(pier_db_open(&small, t_path("small"), &options), PIER_OK);
    char body[128];
    snprintf(body, sizeof body, "{\"a\":\"%s\"}", t_repeat('x', 64 - 8)); /* 64 bytes */
    REQUIRE(strlen(body) == 64);
    CHECK_RC(t_put(small, "c", "fits", body), PIER_OK);
    snprintf(body, sizeof body, "{\"a\":\"%s\"}", t_repeat('x', 64 - 7)); /* 65 bytes */
    CHECK_RC(t_put(small, "c", "over", body), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "65");
    CHECK(t_count(small, "c") == 1);
    pier_db_free(small);

    /* The default limit is PIER_DEFAULT_MAX_BODY_BYTES. */
    size_t big_len = PIER_DEFAULT_MAX_BODY_BYTES + 1;
    char *big = malloc(big_len);
    REQUIRE(big);
    memset(big, ' ', big_len);
    memcpy(big, "{\"a\":1", 6);
    big[big_len - 1] = '}';
    CHECK_RC(pier_db_put(db, "c", "big", big, big_len), PIER_EINVALID);
    CHECK_RC(pier_db_put(db, "c", "big", big, big_len - 1), PIER_EINVALID); /* no longer ends in } */
    big[big_len - 2] = '}';
    CHECK_RC(pier_db_put(db, "c", "big", big, big_len - 1), PIER_OK);
    free(big);
    pier_db_free(db);
}

/* ---- Scopes, metadata, state --------------------------------------------------- */

static void test_scope_and_metadata(void) {
    pier_db *db = t_open("meta");
    REQUIRE(db);
    REQUIRE_RC(t_put(db, "tasks", "t1", "{\"title\":\"a\"}"), PIER_OK);

    char *meta = NULL;
    size_t len = 0;
    REQUIRE_RC(pier_db_metadata(db, &meta, &len, "tasks", "t1"), PIER_OK);
    REQUIRE(meta);
    CHECK(len == strlen(meta));
    CHECK(t_json_valid(meta));
    CHECK_STR(t_json_text(meta, "$.collection"), "tasks");
    CHECK_STR(t_json_text(meta, "$.id"), "t1");
    CHECK_STR(t_json_type(meta, "$.body"), "object");
    CHECK_STR(t_json_text(meta, "$.body.title"), "a");
    CHECK_STR(t_json_text(meta, "$.scope"), "default");
    CHECK_STR(t_json_type(meta, "$.is_from_server"), "false");
    CHECK_STR(t_json_type(meta, "$.is_modified"), "true");
    CHECK_STR(t_json_type(meta, "$.is_active"), "true");
    CHECK_STR(t_json_type(meta, "$.base_version"), "integer");
    CHECK(t_json_int(meta, "$.base_version") == 0);
    CHECK_STR(t_json_type(meta, "$.hlc"), "integer");
    CHECK(t_json_int(meta, "$.hlc") > 0);
    CHECK_STR(t_json_type(meta, "$.local_seq"), "integer");
    int64_t seq1 = t_json_int(meta, "$.local_seq");
    int64_t hlc1 = t_json_int(meta, "$.hlc");
    CHECK(seq1 > 0);
    CHECK_STR(t_json_type(meta, "$.changed_fields"), "null");
    CHECK_STR(t_json_type(meta, "$.server_body"), "null");
    CHECK_STR(t_json_type(meta, "$.server_version"), "integer");
    CHECK(t_json_int(meta, "$.server_version") == 0);
    CHECK_STR(t_json_text(meta, "$.sync_state"), "pending");
    pier_free(meta);

    int state = -1;
    CHECK_RC(pier_db_state(db, &state, "tasks", "t1"), PIER_OK);
    CHECK(state == PIER_STATE_PENDING);

    /* A later write gets a later local_seq and hlc. */
    REQUIRE_RC(t_put(db, "tasks", "t1", "{\"title\":\"b\"}"), PIER_OK);
    REQUIRE_RC(pier_db_metadata(db, &meta, NULL, "tasks", "t1"), PIER_OK);
    CHECK(t_json_int(meta, "$.local_seq") > seq1);
    CHECK(t_json_int(meta, "$.hlc") > hlc1);
    pier_free(meta);

    /* put_scoped moves the record; a plain put keeps the scope. */
    REQUIRE_RC(pier_db_put_scoped(db, "tasks", "t1", "team-7", "{\"title\":\"c\"}", 13), PIER_OK);
    REQUIRE_RC(pier_db_metadata(db, &meta, NULL, "tasks", "t1"), PIER_OK);
    CHECK_STR(t_json_text(meta, "$.scope"), "team-7");
    pier_free(meta);
    REQUIRE_RC(t_put(db, "tasks", "t1", "{\"title\":\"d\"}"), PIER_OK);
    REQUIRE_RC(pier_db_metadata(db, &meta, NULL, "tasks", "t1"), PIER_OK);
    CHECK_STR(t_json_text(meta, "$.scope"), "team-7");
    CHECK_STR(t_json_text(meta, "$.body.title"), "d");
    pier_free(meta);
    REQUIRE_RC(pier_db_put_scoped(db, "tasks", "t2", "user-1", "{}", 2), PIER_OK);
    REQUIRE_RC(pier_db_metadata(db, &meta, NULL, "tasks", "t2"), PIER_OK);
    CHECK_STR(t_json_text(meta, "$.scope"), "user-1");
    pier_free(meta);

    /* Unknown records. */
    meta = T_SENTINEL;
    len = 7;
    CHECK_RC(pier_db_metadata(db, &meta, &len, "tasks", "nope"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(meta);
    CHECK(len == 0);
    state = 99;
    CHECK_RC(pier_db_state(db, &state, "tasks", "nope"), PIER_ENOTFOUND);
    pier_db_free(db);

    /* options.default_scope names the scope of new records. */
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.default_scope = "tenant-42";
    REQUIRE_RC(pier_db_open(&db, t_path("scoped"), &options), PIER_OK);
    REQUIRE_RC(t_put(db, "c", "r", "{}"), PIER_OK);
    REQUIRE_RC(pier_db_metadata(db, &meta, NULL, "c", "r"), PIER_OK);
    CHECK_STR(t_json_text(meta, "$.scope"), "tenant-42");
    pier_free(meta);
    pier_db_free(db);
}

/* ---- put_many ------------------------------------------------------------------- */

/* Regression: pier_db_put_many outside a transaction once failed with PIER_ERROR
 * "record 0: cannot start a transaction within a transaction" (fixed in 638fe2f). */
static void test_put_many(void) {
    pier_db *db = t_open("many");
    REQUIRE(db);
    const char *ids[] = {"a", "b", "c"};
    const char *bodies[] = {"{\"n\":1}", "{\"n\":2}XX", "{\"n\":3}"};
    size_t lens[] = {7, 7, 7}; /* the second body's trailing XX is outside its length */
    CHECK_RC(pier_db_put_many(db, "c", ids, bodies, lens, 3), PIER_OK);
    CHECK(t_count(db, "c") == 3);
    char *body = get(db, "c", "b");
    CHECK_STR(body, "{\"n\":2}");
    pier_free(body);

    /* count 0 writes nothing and may pass NULL arrays. */
    CHECK_RC(pier_db_put_many(db, "c", NULL, NULL, NULL, 0), PIER_OK);
    CHECK(t_count(db, "c") == 3);

    /* Replacing existing records works too. */
    const char *again[] = {"{\"n\":10}", "{\"n\":20}", "{\"n\":30}"};
    size_t again_lens[] = {8, 8, 8};
    CHECK_RC(pier_db_put_many(db, "c", ids, again, again_lens, 3), PIER_OK);
    body = get(db, "c", "c");
    CHECK_STR(body, "{\"n\":30}");
    pier_free(body);
    pier_db_free(db);
}

static void test_put_many_all_or_nothing(void) {
    pier_db *db = t_open("many-bad");
    REQUIRE(db);
    REQUIRE_RC(t_put(db, "c", "a", "{\"old\":true}"), PIER_OK);

    /* The third record (index 2) is not an object: nothing is written. */
    const char *ids[] = {"a", "b", "c", "d"};
    const char *bodies[] = {"{\"new\":1}", "{\"new\":2}", "[3]", "{\"new\":4}"};
    size_t lens[] = {9, 9, 3, 9};
    CHECK_RC(pier_db_put_many(db, "c", ids, bodies, lens, 4), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "2");
    CHECK(t_count(db, "c") == 1);
    char *body = get(db, "c", "a");
    CHECK_STR(body, "{\"old\":true}");
    pier_free(body);
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "b"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(body);

    /* Malformed JSON at index 2 (caught by SQLite, after two rows were written). */
    const char *malformed[] = {"{\"new\":1}", "{\"new\":2}", "{\"x\": }", "{\"new\":4}"};
    size_t mlens[] = {9, 9, 7, 9};
    CHECK_RC(pier_db_put_many(db, "c", ids, malformed, mlens, 4), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "2");
    CHECK(t_count(db, "c") == 1);

    /* A bad id at index 2. */
    const char *bad_ids[] = {"x", "y", "", "z"};
    const char *ok_bodies[] = {"{}", "{}", "{}", "{}"};
    size_t ok_lens[] = {2, 2, 2, 2};
    CHECK_RC(pier_db_put_many(db, "c", bad_ids, ok_bodies, ok_lens, 4), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "2");
    CHECK(t_count(db, "c") == 1);

    /* A NULL id at index 2. */
    const char *null_ids[] = {"x", "y", NULL, "z"};
    CHECK_RC(pier_db_put_many(db, "c", null_ids, ok_bodies, ok_lens, 4), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "2");
    CHECK(t_count(db, "c") == 1);

    /* A body over the limit at index 2. */
    pier_db_free(db);
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.max_body_bytes = 16;
    REQUIRE_RC(pier_db_open(&db, t_path("many-limit"), &options), PIER_OK);
    const char *sized[] = {"{}", "{}", "{\"long\":\"xxxxxxxxxxxxxx\"}", "{}"};
    size_t sized_lens[] = {2, 2, strlen(sized[2]), 2};
    CHECK_RC(pier_db_put_many(db, "c", ids, sized, sized_lens, 4), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "2");
    CHECK(t_count(db, "c") == 0);
    pier_db_free(db);
}

/* ---- patch ---------------------------------------------------------------------- */

static void check_patch(pier_db *db, const char *before, const char *patch, const char *expected) {
    REQUIRE_RC(t_put(db, "p", "r", before), PIER_OK);
    CHECK_RC(pier_db_patch(db, "p", "r", patch, strlen(patch)), PIER_OK);
    char *body = get(db, "p", "r");
    REQUIRE(body);
    /* Compare as JSON (key order and spacing aside). */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT json(?1) = json('%s')", expected);
    if (strcmp(t_json_eval(sql, body), "1") != 0)
        t_fail(__FILE__, __LINE__, "patch %s on %s gave %s, expected %s", patch, before, body, expected);
    pier_free(body);
}

static void test_patch(void) {
    pier_db *db = t_open("patch");
    REQUIRE(db);
    /* RFC 7396: replace, add, null removes, nested objects merge, arrays are replaced. */
    check_patch(db, "{\"a\":1,\"b\":2}", "{\"a\":9}", "{\"a\":9,\"b\":2}");
    check_patch(db, "{\"a\":1}", "{\"c\":[1,2]}", "{\"a\":1,\"c\":[1,2]}");
    check_patch(db, "{\"a\":1,\"b\":2}", "{\"b\":null}", "{\"a\":1}");
    check_patch(db, "{\"a\":1}", "{\"missing\":null}", "{\"a\":1}");
    check_patch(db, "{\"o\":{\"x\":1,\"y\":2},\"k\":0}", "{\"o\":{\"y\":3,\"z\":4}}", "{\"o\":{\"x\":1,\"y\":3,\"z\":4},\"k\":0}");
    check_patch(db, "{\"o\":{\"x\":1,\"y\":2}}", "{\"o\":{\"x\":null}}", "{\"o\":{\"y\":2}}");
    check_patch(db, "{\"o\":{\"x\":1}}", "{\"o\":5}", "{\"o\":5}");
    check_patch(db, "{\"t\":[1,2,3]}", "{\"t\":[4]}", "{\"t\":[4]}");
    check_patch(db, "{\"a\":1}", "{}", "{\"a\":1}");

    /* A patch marks the record modified and advances local_seq. */
    REQUIRE_RC(t_put(db, "p", "s", "{\"v\":1}"), PIER_OK);
    char *meta = NULL;
    REQUIRE_RC(pier_db_metadata(db, &meta, NULL, "p", "s"), PIER_OK);
    int64_t seq = t_json_int(meta, "$.local_seq");
    pier_free(meta);
    REQUIRE_RC(pier_db_patch(db, "p", "s", "{\"v\":2}", 7), PIER_OK);
    REQUIRE_RC(pier_db_metadata(db, &meta, NULL, "p", "s"), PIER_OK);
    CHECK(t_json_int(meta, "$.local_seq") > seq);
    CHECK_STR(t_json_type(meta, "$.is_modified"), "true");
    CHECK(t_json_int(meta, "$.body.v") == 2);
    pier_free(meta);

    /* Missing record (or deleted) -> ENOTFOUND, nothing created. */
    CHECK_RC(pier_db_patch(db, "p", "nope", "{\"a\":1}", 7), PIER_ENOTFOUND);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_get(db, &meta, NULL, "p", "nope"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(meta);
    REQUIRE_RC(pier_db_delete(db, "p", "s"), PIER_OK);
    CHECK_RC(pier_db_patch(db, "p", "s", "{\"a\":1}", 7), PIER_ENOTFOUND);

    /* Not an object, malformed. */
    CHECK_RC(pier_db_patch(db, "p", "r", "[1]", 3), PIER_EINVALID);
    CHECK_RC(pier_db_patch(db, "p", "r", "null", 4), PIER_EINVALID);
    CHECK_RC(pier_db_patch(db, "p", "r", "{\"a\":", 5), PIER_EINVALID);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_patch(db, "p", "r", "", 0), PIER_EINVALID);
    pier_db_free(db);
}

static void test_patch_over_limit(void) {
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.max_body_bytes = 40;
    pier_db *db = NULL;
    REQUIRE_RC(pier_db_open(&db, t_path("patch-limit"), &options), PIER_OK);
    const char *before = "{\"a\":\"0123456789\"}";
    REQUIRE_RC(t_put(db, "p", "r", before), PIER_OK);
    char *meta = NULL;
    REQUIRE_RC(pier_db_metadata(db, &meta, NULL, "p", "r"), PIER_OK);
    int64_t seq = t_json_int(meta, "$.local_seq");
    pier_free(meta);

    /* The patch itself is small, the result is not. */
    const char *patch = "{\"b\":\"01234567890123456789\"}";
    REQUIRE(strlen(patch) <= 40);
    CHECK_RC(pier_db_patch(db, "p", "r", patch, strlen(patch)), PIER_ELIMIT);
    CHECK_CONTAINS(pier_errmsg(), "40");
    char *body = get(db, "p", "r");
    CHECK_STR(body, before); /* nothing written */
    pier_free(body);
    REQUIRE_RC(pier_db_metadata(db, &meta, NULL, "p", "r"), PIER_OK);
    CHECK(t_json_int(meta, "$.local_seq") == seq);
    pier_free(meta);

    /* The same inside a transaction: the failed patch leaves the transaction usable. */
    REQUIRE_RC(pier_db_begin(db), PIER_OK);
    CHECK_RC(t_put(db, "p", "t", "{}"), PIER_OK);
    CHECK_RC(pier_db_patch(db, "p", "r", patch, strlen(patch)), PIER_ELIMIT);
    CHECK_RC(pier_db_commit(db), PIER_OK);
    body = get(db, "p", "r");
    CHECK_STR(body, before);
    pier_free(body);
    CHECK(t_count(db, "p") == 2);
    pier_db_free(db);
}

/* ---- delete --------------------------------------------------------------------- */

static void test_delete(void) {
    pier_db *db = t_open("delete");
    REQUIRE(db);
    REQUIRE_RC(t_put(db, "c", "a", "{}"), PIER_OK);
    REQUIRE_RC(t_put(db, "c", "b", "{}"), PIER_OK);
    CHECK(t_count(db, "c") == 2);

    /* Never synced: removed outright, no tombstone. */
    CHECK_RC(pier_db_delete(db, "c", "a"), PIER_OK);
    CHECK(t_count(db, "c") == 1);
    char *out = T_SENTINEL;
    CHECK_RC(pier_db_get(db, &out, NULL, "c", "a"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(out);
    out = T_SENTINEL;
    CHECK_RC(pier_db_metadata(db, &out, NULL, "c", "a"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(out);
    int state = -1;
    CHECK_RC(pier_db_state(db, &state, "c", "a"), PIER_ENOTFOUND);
    char *info = NULL;
    REQUIRE_RC(pier_db_info(db, &info, NULL), PIER_OK);
    CHECK(t_json_int(info, "$.collections[0].tombstones") == 0);
    CHECK(t_json_int(info, "$.collections[0].records") == 1);
    pier_free(info);

    /* Deleting again, or something that never existed. */
    CHECK_RC(pier_db_delete(db, "c", "a"), PIER_ENOTFOUND);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_delete(db, "c", "never"), PIER_ENOTFOUND);
    CHECK_RC(pier_db_delete(db, "nocollection", "b"), PIER_ENOTFOUND);

    /* The id can be used again afterwards. */
    CHECK_RC(t_put(db, "c", "a", "{\"again\":1}"), PIER_OK);
    out = get(db, "c", "a");
    CHECK_STR(out, "{\"again\":1}");
    pier_free(out);
    CHECK(t_count(db, "c") == 2);
    pier_db_free(db);
}

/* ---- list and count ------------------------------------------------------------- */

static void test_list_paging(void) {
    pier_db *db = t_open("list");
    REQUIRE(db);
    char id[16], body[64];
    /* Written out of order; listed in id order. */
    for (int i = 24; i >= 0; i--) {
        snprintf(id, sizeof id, "r%02d", i);
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        REQUIRE_RC(t_put(db, "items", id, body), PIER_OK);
    }
    REQUIRE_RC(t_put(db, "other", "r00", "{\"other\":1}"), PIER_OK);
    REQUIRE_RC(t_put(db, "items", "r99", "{}"), PIER_OK);
    REQUIRE_RC(pier_db_delete(db, "items", "r99"), PIER_OK); /* deleted: not listed */
    CHECK(t_count(db, "items") == 25);
    CHECK(t_count(db, "other") == 1);
    CHECK(t_count(db, "empty") == 0);

    char after[16] = "";
    int seen = 0, pages = 0;
    for (;;) {
        char *json = NULL;
        size_t len = 0;
        REQUIRE_RC(pier_db_list(db, &json, &len, "items", pages ? after : NULL, 10), PIER_OK);
        REQUIRE(json);
        CHECK(len == strlen(json));
        CHECK(t_json_valid(json));
        int64_t items = strtoll(t_json_eval("SELECT json_array_length(?1)", json), NULL, 10);
        if (items == 0) {
            CHECK_STR(json, "[]");
            pier_free(json);
            break;
        }
        CHECK(items == (pages < 2 ? 10 : 5));
        for (int k = 0; k < items; k++) {
            char path[32], expect[16];
            snprintf(path, sizeof path, "$[%d].id", k);
            snprintf(expect, sizeof expect, "r%02d", seen);
            CHECK_STR(t_json_text(json, path), expect);
            snprintf(path, sizeof path, "$[%d].body", k);
            CHECK_STR(t_json_type(json, path), "object"); /* embedded, not a string */
            snprintf(path, sizeof path, "$[%d].body.i", k);
            CHECK(t_json_int(json, path) == seen);
            seen++;
        }
        snprintf(after, sizeof after, "%s", t_json_text(json, "$[#-1].id"));
        pier_free(json);
        pages++;
        REQUIRE(pages < 10);
    }
    CHECK(seen == 25);
    CHECK(pages == 3);

    /* "" starts from the beginning like NULL; limit 0 gives an empty page; an after_id
     * between ids works. */
    char *json = NULL;
    REQUIRE_RC(pier_db_list(db, &json, NULL, "items", "", 2), PIER_OK);
    CHECK_STR(t_json_text(json, "$[0].id"), "r00");
    CHECK_STR(t_json_eval("SELECT json_array_length(?1)", json), "2");
    pier_free(json);
    REQUIRE_RC(pier_db_list(db, &json, NULL, "items", NULL, 0), PIER_OK);
    CHECK_STR(json, "[]");
    pier_free(json);
    REQUIRE_RC(pier_db_list(db, &json, NULL, "items", "r05x", 1), PIER_OK);
    CHECK_STR(t_json_text(json, "$[0].id"), "r06");
    pier_free(json);
    REQUIRE_RC(pier_db_list(db, &json, NULL, "empty", NULL, 100), PIER_OK);
    CHECK_STR(json, "[]");
    pier_free(json);
    pier_db_free(db);
}

/* ---- query ---------------------------------------------------------------------- */

static void test_query_basics(void) {
    pier_db *db = t_open("query");
    REQUIRE(db);
    REQUIRE_RC(t_put(db, "people", "p1", "{\"name\":\"Ada\",\"age\":36,\"city\":\"London\"}"), PIER_OK);
    REQUIRE_RC(t_put(db, "people", "p2", "{\"name\":\"Grace\",\"age\":85,\"city\":\"NYC\"}"), PIER_OK);
    REQUIRE_RC(t_put(db, "pets", "x1", "{\"name\":\"Rex\"}"), PIER_OK);

    /* The records view and its columns. */
    char *json = NULL;
    size_t len = 0;
    REQUIRE_RC(pier_db_query(db, &json, &len,
                             "SELECT collection, id, body, scope, sync_state, version, hlc, local_seq "
                             "FROM records WHERE collection = ?1 ORDER BY id", "[\"people\"]"), PIER_OK);
    REQUIRE(json);
    CHECK(len == strlen(json));
    CHECK(t_json_valid(json));
    CHECK_STR(t_json_eval("SELECT json_array_length(?1)", json), "2");
    CHECK_STR(t_json_text(json, "$[0].collection"), "people");
    CHECK_STR(t_json_text(json, "$[0].id"), "p1");
    CHECK_STR(t_json_type(json, "$[0].body"), "object"); /* embedded as JSON */
    CHECK_STR(t_json_text(json, "$[0].body.name"), "Ada");
    CHECK_STR(t_json_text(json, "$[0].scope"), "default");
    CHECK_STR(t_json_text(json, "$[0].sync_state"), "pending");
    CHECK_STR(t_json_type(json, "$[0].version"), "integer");
    CHECK_STR(t_json_type(json, "$[0].hlc"), "integer");
    CHECK_STR(t_json_type(json, "$[0].local_seq"), "integer");
    CHECK_STR(t_json_text(json, "$[1].id"), "p2");
    pier_free(json);

    /* json_extract into bodies; values typed as JSON. */
    json = query(db, "SELECT json_extract(body, '$.name') AS name, json_extract(body, '$.age') AS age "
                     "FROM records WHERE collection = 'people' AND json_extract(body, '$.age') > ?1", "[40]");
    REQUIRE(json);
    CHECK_STR(json, "[{\"name\":\"Grace\",\"age\":85}]");
    pier_free(json);

    /* Column types: integer, real, text, null, blob (base64). */
    json = query(db, "SELECT 1 AS i, 2.5 AS r, 'x\"y' AS t, NULL AS n, x'00ff10' AS b", NULL);
    REQUIRE(json);
    CHECK_STR(t_json_type(json, "$[0].i"), "integer");
    CHECK_STR(t_json_type(json, "$[0].r"), "real");
    CHECK_STR(t_json_text(json, "$[0].t"), "x\"y");
    CHECK_STR(t_json_type(json, "$[0].n"), "null");
    CHECK_STR(t_json_text(json, "$[0].b"), "AP8Q");
    pier_free(json);

    /* No rows: an empty array. A trailing semicolon and whitespace are fine. */
    json = query(db, "SELECT id FROM records WHERE collection = 'none';  \n", NULL);
    CHECK_STR(json, "[]");
    pier_free(json);

    /* Deleted records leave the view. */
    REQUIRE_RC(pier_db_delete(db, "pets", "x1"), PIER_OK);
    json = query(db, "SELECT count(*) AS n FROM records WHERE collection = 'pets'", NULL);
    CHECK_STR(json, "[{\"n\":0}]");
    pier_free(json);

    /* A CTE and a join are reads too. */
    json = query(db, "WITH a AS (SELECT id FROM records) SELECT count(*) AS n FROM a JOIN records r USING (id)", NULL);
    CHECK_STR(json, "[{\"n\":2}]");
    pier_free(json);
    pier_db_free(db);
}

static void test_query_params(void) {
    pier_db *db = t_open("params");
    REQUIRE(db);
    char *json = NULL;

    /* Every JSON type binds: null, integers, reals, strings, booleans, objects and arrays
     * (as JSON text). */
    json = query(db, "SELECT ?1 IS NULL AS n, ?2 AS i, ?3 AS neg, ?4 AS big, ?5 AS r, ?6 AS s, ?7 AS t, ?8 AS f, "
                     "typeof(?9) AS ot, json(?9) AS o, json_array_length(?10) AS alen, typeof(?2) AS it, typeof(?5) AS rt",
                 "[null, 42, -7, 9007199254740993, 1.5, \"h\\u00e9llo \\\"q\\\"\", true, false, {\"k\": [1, {\"z\": null}]}, [1, 2, 3]]");
    REQUIRE(json);
    CHECK(t_json_int(json, "$[0].n") == 1);
    CHECK(t_json_int(json, "$[0].i") == 42);
    CHECK(t_json_int(json, "$[0].neg") == -7);
    CHECK_STR(t_json_text(json, "$[0].big"), "9007199254740993"); /* exact 64-bit */
    CHECK_STR(t_json_text(json, "$[0].r"), "1.5");
    CHECK_STR(t_json_text(json, "$[0].s"), "h\xc3\xa9llo \"q\"");
    CHECK(t_json_int(json, "$[0].t") == 1);
    CHECK(t_json_int(json, "$[0].f") == 0);
    CHECK_STR(t_json_text(json, "$[0].ot"), "text");
    CHECK_STR(t_json_text(json, "$[0].o"), "{\"k\":[1,{\"z\":null}]}");
    CHECK(t_json_int(json, "$[0].alen") == 3);
    CHECK_STR(t_json_text(json, "$[0].it"), "integer");
    CHECK_STR(t_json_text(json, "$[0].rt"), "real");
    pier_free(json);

    /* Strings bind as values, never as SQL. */
    REQUIRE_RC(t_put(db, "c", "a", "{}"), PIER_OK);
    json = query(db, "SELECT count(*) AS n FROM records WHERE id = ?1", "[\"a' OR '1'='1\"]");
    CHECK_STR(json, "[{\"n\":0}]");
    pier_free(json);

    /* Empty array for a statement without parameters; NULL too. */
    json = query(db, "SELECT 1 AS one", "[]");
    CHECK_STR(json, "[{\"one\":1}]");
    pier_free(json);

    /* Wrong counts and bad params are EINVALID with a NULL result. */
    json = T_SENTINEL;
    size_t len = 5;
    CHECK_RC(pier_db_query(db, &json, &len, "SELECT ?1, ?2", "[1]"), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK(len == 0);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT ?1", "[1, 2]"), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT ?1", NULL), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT ?1", "[]"), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT 1", "[1]"), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT ?1", "{\"a\":1}"), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT ?1", "5"), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT ?1", "[1,"), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT ?1", "not json"), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT 1", "{}"), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    pier_db_free(db);
}

static int refused(int rc) { return rc == PIER_EREADONLY || rc == PIER_EINVALID; }

static void test_query_refuses_writes(void) {
    pier_db *db = t_open("readonly-query");
    REQUIRE(db);
    REQUIRE_RC(t_put(db, "c", "a", "{\"v\":1}"), PIER_OK);
    char *json = NULL;
    size_t len = 0;

    /* Writes: PIER_EREADONLY, nothing changes. */
    const char *writes[] = {
        "INSERT INTO pier_records(collection, id, body, scope) VALUES ('c', 'z', '{}', 'default')",
        "UPDATE pier_records SET body = '{\"v\":2}'",
        "DELETE FROM pier_records",
        "CREATE TABLE evil(x)",
        "DROP VIEW records",
        "CREATE INDEX evil ON pier_records(id)",
        "REPLACE INTO pier_meta(key, value) VALUES ('schema_version', 999)",
        "WITH x AS (SELECT 1) DELETE FROM pier_records",
        "BEGIN",
        "VACUUM",
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        json = T_SENTINEL;
        len = 3;
        int rc = pier_db_query(db, &json, &len, writes[i], NULL);
        if (rc != PIER_EREADONLY)
            t_fail(__FILE__, __LINE__, "query \"%s\" returned %s, expected PIER_EREADONLY (%s)", writes[i], pier_errname(rc), pier_errmsg());
        CHECK_NULL_OUT(json);
        CHECK(len == 0);
        CHECK_ERRMSG();
    }

    /* PRAGMA, ATTACH, DETACH: refused (EREADONLY or EINVALID per pier.h). Even PRAGMAs that
     * only read. */
    const char *others[] = {
        "PRAGMA user_version = 7",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA table_info(pier_records)",
        "ATTACH DATABASE ':memory:' AS other",
        "DETACH DATABASE main",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        json = T_SENTINEL;
        int rc = pier_db_query(db, &json, NULL, others[i], NULL);
        if (!refused(rc))
            t_fail(__FILE__, __LINE__, "query \"%s\" returned %s, expected it refused", others[i], pier_errname(rc));
        CHECK_NULL_OUT(json);
    }

    /* Two statements: refused, and the second never runs. */
    const char *multi[] = {
        "SELECT 1; SELECT 2",
        "SELECT 1; DELETE FROM pier_records",
        "SELECT 1; DROP VIEW records;",
    };
    for (size_t i = 0; i < sizeof multi / sizeof multi[0]; i++) {
        json = T_SENTINEL;
        int rc = pier_db_query(db, &json, NULL, multi[i], NULL);
        if (!refused(rc))
            t_fail(__FILE__, __LINE__, "query \"%s\" returned %s, expected it refused", multi[i], pier_errname(rc));
        CHECK_NULL_OUT(json);
    }

    /* Does not compile: EINVALID with SQLite's reason. */
    CHECK_RC(pier_db_query(db, &json, NULL, "SELEC 1", NULL), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT * FROM no_such_table", NULL), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_CONTAINS(pier_errmsg(), "no_such_table");
    CHECK_RC(pier_db_query(db, &json, NULL, "SELECT nope FROM records", NULL), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "", NULL), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "   ", NULL), PIER_EINVALID);
    CHECK_NULL_OUT(json);
    CHECK_RC(pier_db_query(db, &json, NULL, "-- only a comment", NULL), PIER_EINVALID);
    CHECK_NULL_OUT(json);

    /* Everything still there and still writable through the API. */
    CHECK(t_count(db, "c") == 1);
    json = get(db, "c", "a");
    CHECK_STR(json, "{\"v\":1}");
    pier_free(json);
    json = query(db, "SELECT count(*) AS n FROM records", NULL);
    CHECK_STR(json, "[{\"n\":1}]");
    pier_free(json);
    CHECK_RC(t_put(db, "c", "b", "{}"), PIER_OK);
    pier_db_free(db);
}

/* ---- create_index ---------------------------------------------------------------- */

static void test_create_index(void) {
    pier_db *db = t_open("index");
    REQUIRE(db);
    char body[64], id[16];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "c%02d", i);
        snprintf(body, sizeof body, "{\"city\":\"city%d\",\"address\":{\"zip\":\"%05d\"}}", i % 5, i);
        REQUIRE_RC(t_put(db, "customers", id, body), PIER_OK);
    }
    const char *plan_sql = "EXPLAIN QUERY PLAN SELECT id FROM records "
                           "WHERE collection = 'customers' AND json_extract(body, '$.city') = ?1";
    char *plan = query(db, plan_sql, "[\"city3\"]");
    REQUIRE(plan);
    CHECK(strstr(plan, "pier_idx_") == NULL); /* no index yet */
    pier_free(plan);

    CHECK_RC(pier_db_create_index(db, "customers", "city"), PIER_OK);
    CHECK_RC(pier_db_create_index(db, "customers", "city"), PIER_OK); /* idempotent */
    CHECK_RC(pier_db_create_index(db, "customers", "address.zip"), PIER_OK);
    CHECK_RC(pier_db_create_index(db, "customers", "_under_score9"), PIER_OK);

    plan = query(db, plan_sql, "[\"city3\"]");
    REQUIRE(plan);
    CHECK_CONTAINS(plan, "INDEX"); /* the query now uses an index */
    pier_free(plan);

    /* Results are the same with the index. */
    char *json = query(db, "SELECT count(*) AS n FROM records WHERE collection = 'customers' "
                           "AND json_extract(body, '$.city') = ?1", "[\"city3\"]");
    CHECK_STR(json, "[{\"n\":10}]");
    pier_free(json);
    json = query(db, "SELECT id FROM records WHERE collection = 'customers' "
                     "AND json_extract(body, '$.address.zip') = ?1", "[\"00042\"]");
    CHECK_STR(json, "[{\"id\":\"c42\"}]");
    pier_free(json);

    /* Field paths must be dotted identifiers. */
    const char *bad[] = {"", ".", "a..b", "a.", ".a", "1a", "a-b", "a b", "$.a", "a[0]",
                         "x') ; DROP TABLE pier_records; --", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pier_db_create_index(db, "customers", bad[i]);
        if (rc != PIER_EINVALID)
            t_fail(__FILE__, __LINE__, "create_index field \"%s\" returned %s, expected PIER_EINVALID", bad[i], pier_errname(rc));
    }
    CHECK_ERRMSG();
    CHECK_RC(pier_db_create_index(db, "", "city"), PIER_EINVALID);
    /* A collection name with a quote is data, not SQL. */
    CHECK_RC(pier_db_create_index(db, "o'brien", "city"), PIER_OK);
    CHECK(t_count(db, "customers") == 50);
    pier_db_free(db);
}

/* ---- transactions ---------------------------------------------------------------- */

static void test_transactions(void) {
    const char *path = t_path("tx");
    pier_db *db = NULL;
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);

    /* Commit makes writes visible. */
    REQUIRE_RC(pier_db_begin(db), PIER_OK);
    CHECK_RC(t_put(db, "c", "a", "{}"), PIER_OK);
    CHECK_RC(t_put(db, "c", "b", "{}"), PIER_OK);
    CHECK(t_count(db, "c") == 2); /* read your own writes inside the transaction */
    CHECK_RC(pier_db_commit(db), PIER_OK);
    CHECK(t_count(db, "c") == 2);

    /* Rollback discards them: puts, patches and deletes. */
    REQUIRE_RC(pier_db_begin(db), PIER_OK);
    CHECK_RC(t_put(db, "c", "x", "{}"), PIER_OK);
    CHECK_RC(pier_db_patch(db, "c", "a", "{\"p\":1}", 7), PIER_OK);
    CHECK_RC(pier_db_delete(db, "c", "b"), PIER_OK);
    CHECK_RC(pier_db_rollback(db), PIER_OK);
    CHECK(t_count(db, "c") == 2);
    char *body = get(db, "c", "a");
    CHECK_STR(body, "{}");
    pier_free(body);
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "x"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(body);

    /* No transaction open: ESTATE. */
    CHECK_RC(pier_db_commit(db), PIER_ESTATE);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_rollback(db), PIER_ESTATE);

    /* No nesting: a second begin is ESTATE and the first transaction stays open. */
    REQUIRE_RC(pier_db_begin(db), PIER_OK);
    CHECK_RC(pier_db_begin(db), PIER_ESTATE);
    CHECK_RC(t_put(db, "c", "n", "{}"), PIER_OK);
    CHECK_RC(pier_db_commit(db), PIER_OK);
    CHECK(t_count(db, "c") == 3);
    CHECK_RC(pier_db_commit(db), PIER_ESTATE);

    /* A failing write inside a transaction leaves the transaction and its earlier writes. */
    REQUIRE_RC(pier_db_begin(db), PIER_OK);
    CHECK_RC(t_put(db, "c", "t1", "{\"ok\":1}"), PIER_OK);
    CHECK_RC(t_put(db, "c", "t2", "[not an object]"), PIER_EINVALID);
    CHECK_RC(t_put(db, "c", "t2", "{\"malformed\":}"), PIER_EINVALID);
    CHECK_RC(t_put(db, "", "t2", "{}"), PIER_EINVALID);
    CHECK_RC(pier_db_patch(db, "c", "missing", "{}", 2), PIER_ENOTFOUND);
    CHECK_RC(pier_db_delete(db, "c", "missing"), PIER_ENOTFOUND);
    const char *ids[] = {"m1", "m2", "m3"};
    const char *bodies[] = {"{}", "{}", "oops"};
    size_t lens[] = {2, 2, 4};
    CHECK_RC(pier_db_put_many(db, "c", ids, bodies, lens, 3), PIER_EINVALID);
    CHECK_RC(t_put(db, "c", "t3", "{\"ok\":3}"), PIER_OK);
    CHECK_RC(pier_db_commit(db), PIER_OK);
    body = get(db, "c", "t1");
    CHECK_STR(body, "{\"ok\":1}");
    pier_free(body);
    body = get(db, "c", "t3");
    CHECK_STR(body, "{\"ok\":3}");
    pier_free(body);
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "t2"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(body);
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "m1"), PIER_ENOTFOUND); /* put_many all-or-nothing */
    CHECK_NULL_OUT(body);
    CHECK(t_count(db, "c") == 5);

    /* put_many inside a transaction joins it. */
    REQUIRE_RC(pier_db_begin(db), PIER_OK);
    const char *good[] = {"{}", "{}", "{}"};
    size_t good_lens[] = {2, 2, 2};
    CHECK_RC(pier_db_put_many(db, "c", ids, good, good_lens, 3), PIER_OK);
    CHECK(t_count(db, "c") == 8);
    CHECK_RC(pier_db_rollback(db), PIER_OK);
    CHECK(t_count(db, "c") == 5);

    /* Queries and create_index inside a transaction. */
    REQUIRE_RC(pier_db_begin(db), PIER_OK);
    body = query(db, "SELECT count(*) AS n FROM records", NULL);
    CHECK_STR(body, "[{\"n\":5}]");
    pier_free(body);
    CHECK_RC(pier_db_create_index(db, "c", "ok"), PIER_OK);
    CHECK_RC(pier_db_commit(db), PIER_OK);

    /* Closing with a transaction open rolls it back. */
    REQUIRE_RC(pier_db_begin(db), PIER_OK);
    CHECK_RC(t_put(db, "c", "lost", "{}"), PIER_OK);
    CHECK_RC(pier_db_close(db), PIER_OK);
    pier_db_free(db);
    db = NULL;
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "lost"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(body);
    CHECK(t_count(db, "c") == 5);
    /* And the store is usable: a new transaction can begin. */
    CHECK_RC(pier_db_begin(db), PIER_OK);
    CHECK_RC(pier_db_rollback(db), PIER_OK);
    pier_db_free(db);
}

/* ---- client id, info ---------------------------------------------------------------- */

static void test_client_id_and_info(void) {
    const char *path = t_path("info");
    pier_db *db = NULL;
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    char *client = NULL;
    REQUIRE_RC(pier_db_client_id(db, &client), PIER_OK);
    REQUIRE(client);
    CHECK(strlen(client) == 36);
    CHECK(client[8] == '-' && client[13] == '-' && client[18] == '-' && client[23] == '-');

    REQUIRE_RC(t_put(db, "b-coll", "1", "{}"), PIER_OK);
    REQUIRE_RC(t_put(db, "b-coll", "2", "{}"), PIER_OK);
    REQUIRE_RC(t_put(db, "a-coll", "1", "{}"), PIER_OK);
    REQUIRE_RC(pier_db_delete(db, "b-coll", "2"), PIER_OK);

    char *info = NULL;
    size_t len = 0;
    REQUIRE_RC(pier_db_info(db, &info, &len), PIER_OK);
    REQUIRE(info);
    CHECK(len == strlen(info));
    CHECK(t_json_valid(info));
    CHECK_STR(t_json_text(info, "$.path"), path);
    CHECK_STR(t_json_type(info, "$.schema_version"), "integer");
    CHECK(t_json_int(info, "$.schema_version") >= 1);
    CHECK_STR(t_json_text(info, "$.client_id"), client);
    CHECK_STR(t_json_type(info, "$.pull_cursor"), "integer");
    CHECK(t_json_int(info, "$.pull_cursor") == 0);
    CHECK(t_json_int(info, "$.pending") == 2);
    CHECK(t_json_int(info, "$.conflicts") == 0);
    CHECK_STR(t_json_type(info, "$.collections"), "array");
    CHECK_STR(t_json_text(info, "$.collections[0].name"), "a-coll");
    CHECK_STR(t_json_text(info, "$.collections[1].name"), "b-coll");
    CHECK(t_json_int(info, "$.collections[1].records") == 1);
    CHECK(t_json_int(info, "$.collections[1].pending") == 1);
    CHECK(t_json_int(info, "$.collections[1].conflicts") == 0);
    CHECK_STR(t_json_type(info, "$.collections[1].tombstones"), "integer");
    pier_free(info);

    /* The client id survives a reopen and differs between stores. */
    pier_db_free(db);
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    char *again = NULL;
    REQUIRE_RC(pier_db_client_id(db, &again), PIER_OK);
    CHECK_STR(again, client);
    pier_free(again);
    pier_db_free(db);
    db = t_open("info-other");
    REQUIRE(db);
    REQUIRE_RC(pier_db_client_id(db, &again), PIER_OK);
    CHECK(again && strcmp(again, client) != 0);
    pier_free(again);
    pier_free(client);

    /* A fresh store. */
    REQUIRE_RC(pier_db_info(db, &info, NULL), PIER_OK);
    CHECK(t_json_int(info, "$.pending") == 0);
    CHECK_STR(t_json_text(info, "$.collections"), "[]");
    pier_free(info);
    pier_db_free(db);
}

/* ---- persistence and durability ------------------------------------------------------- */

static void test_reopen_and_durability(void) {
    const char *path = t_path("durable");
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.durability = PIER_DURABILITY_FULL;
    options.busy_timeout_ms = -1; /* no wait */
    pier_db *db = NULL;
    REQUIRE_RC(pier_db_open(&db, path, &options), PIER_OK);
    REQUIRE(db);
    CHECK_RC(t_put(db, "c", "a", "{\"full\":true}"), PIER_OK);
    CHECK_RC(pier_db_close(db), PIER_OK);
    CHECK_RC(pier_db_close(db), PIER_OK); /* closing twice is fine */
    pier_db_free(db);

    options.durability = PIER_DURABILITY_NORMAL;
    options.busy_timeout_ms = 250;
    REQUIRE_RC(pier_db_open(&db, path, &options), PIER_OK);
    char *body = get(db, "c", "a");
    CHECK_STR(body, "{\"full\":true}");
    pier_free(body);
    pier_db_free(db);

    /* NULL options = the defaults. */
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    CHECK(t_count(db, "c") == 1);
    pier_db_free(db);
    pier_db_free(NULL); /* accepts NULL */
    pier_free(NULL);
}

/* ---- logging --------------------------------------------------------------------------- */

typedef struct {
    int lines;
    int bad_level;
    int saw_open;
    int min_seen;
    char last[512];
} log_record;

static void on_log(void *ctx, int level, const char *message) {
    log_record *rec = ctx;
    rec->lines++;
    if (level < PIER_LOG_DEBUG || level > PIER_LOG_ERROR || !message) rec->bad_level++;
    if (level < rec->min_seen) rec->min_seen = level;
    if (message) {
        snprintf(rec->last, sizeof rec->last, "%s", message);
        if (strstr(message, "opened")) rec->saw_open = 1;
    }
}

static void test_log_callback(void) {
    log_record rec = {0, 0, 0, 99, ""};
    REQUIRE_RC(pier_log_set_callback(on_log, &rec, PIER_LOG_DEBUG), PIER_OK);
    pier_db *db = t_open("log");
    REQUIRE(db);
    CHECK(rec.lines > 0);
    CHECK(rec.saw_open); /* "opened store ..." at info level */
    CHECK(rec.bad_level == 0);
    pier_db_free(db);

    /* min_level filters: nothing below WARN arrives. */
    log_record warn = {0, 0, 0, 99, ""};
    REQUIRE_RC(pier_log_set_callback(on_log, &warn, PIER_LOG_WARN), PIER_OK);
    db = t_open("log-warn");
    REQUIRE(db);
    pier_db_free(db);
    CHECK(warn.min_seen >= PIER_LOG_WARN);
    CHECK(warn.saw_open == 0);

    /* Replacing the callback: the old context sees no more lines. */
    log_record second = {0, 0, 0, 99, ""};
    int before = rec.lines;
    REQUIRE_RC(pier_log_set_callback(on_log, &second, PIER_LOG_INFO), PIER_OK);
    db = t_open("log-second");
    REQUIRE(db);
    pier_db_free(db);
    CHECK(second.saw_open);
    CHECK(rec.lines == before);
    CHECK(second.min_seen >= PIER_LOG_INFO);

    /* Removed: no more lines. */
    REQUIRE_RC(pier_log_set_callback(NULL, NULL, PIER_LOG_DEBUG), PIER_OK);
    before = second.lines;
    db = t_open("log-off");
    REQUIRE(db);
    pier_db_free(db);
    CHECK(second.lines == before);

    /* Levels outside DEBUG..ERROR are EINVALID and keep the current setting. */
    REQUIRE_RC(pier_log_set_callback(on_log, &second, PIER_LOG_ERROR), PIER_OK);
    CHECK_RC(pier_log_set_callback(on_log, &rec, -1), PIER_EINVALID);
    CHECK_ERRMSG();
    CHECK_RC(pier_log_set_callback(on_log, &rec, 4), PIER_EINVALID);
    CHECK_RC(pier_log_set_callback(NULL, NULL, 99), PIER_EINVALID);
    REQUIRE_RC(pier_log_set_callback(NULL, NULL, PIER_LOG_ERROR), PIER_OK);
}

static const pier_test tests[] = {
    {"version", test_version},
    {"uuid7", test_uuid7},
    {"put_get", test_put_get},
    {"put_limits", test_put_limits},
    {"scope_and_metadata", test_scope_and_metadata},
    {"put_many", test_put_many},
    {"put_many_all_or_nothing", test_put_many_all_or_nothing},
    {"patch", test_patch},
    {"patch_over_limit", test_patch_over_limit},
    {"delete", test_delete},
    {"list_paging", test_list_paging},
    {"query_basics", test_query_basics},
    {"query_params", test_query_params},
    {"query_refuses_writes", test_query_refuses_writes},
    {"create_index", test_create_index},
    {"transactions", test_transactions},
    {"client_id_and_info", test_client_id_and_info},
    {"reopen_and_durability", test_reopen_and_durability},
    {"log_callback", test_log_callback},
};

int main(int argc, char **argv) { return RUN_TESTS(tests); }
