/*
 * test_open.c — pier_db_open: options and flags, read-only stores, and files that are not
 * Pier stores (garbage, another application's SQLite database, a store from a newer Pier),
 * which must be refused and left byte-for-byte untouched.
 */
#define _GNU_SOURCE
#include "test.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <sqlite3.h>

/* A file's bytes, for comparing before and after. */
typedef struct {
    unsigned char *bytes;
    size_t len;
} snapshot;

static snapshot take(const char *path) {
    snapshot s = {NULL, 0};
    s.bytes = t_read_file(path, &s.len);
    if (!s.bytes) t_fail(__FILE__, __LINE__, "cannot read %s", path);
    return s;
}

static int same(snapshot a, const char *path) {
    snapshot b = take(path);
    int equal = a.bytes && b.bytes && a.len == b.len && memcmp(a.bytes, b.bytes, a.len) == 0;
    free(b.bytes);
    return equal;
}

/* Opens path and expects `expected` with a NULL handle, a message, and the file unchanged. */
static void expect_refused(const char *path, const pier_open_options *options, int expected, const char *what) {
    snapshot before = take(path);
    pier_db *db = (pier_db *)0x1;
    int rc = pier_db_open(&db, path, options);
    if (rc != expected)
        t_fail(__FILE__, __LINE__, "opening %s returned %s (%s), expected %s", what, pier_errname(rc), pier_errmsg(), pier_errname(expected));
    CHECK_NULL_DB(db);
    CHECK_ERRMSG();
    if (!same(before, path)) t_fail(__FILE__, __LINE__, "opening %s changed the file", what);
    free(before.bytes);
}

static char *path_with(const char *path, const char *suffix) {
    static char out[4200];
    snprintf(out, sizeof out, "%s%s", path, suffix);
    return out;
}

/* ---- Options ----------------------------------------------------------------------- */

static void test_open_arguments(void) {
    pier_db *db = (pier_db *)0x1;
    CHECK_RC(pier_db_open(NULL, t_path("x"), NULL), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "out_db");
    CHECK_RC(pier_db_open(&db, NULL, NULL), PIER_EINVALID);
    CHECK_NULL_DB(db);
    CHECK_CONTAINS(pier_errmsg(), "path");
    db = (pier_db *)0x1;
    CHECK_RC(pier_db_open(&db, "", NULL), PIER_EINVALID);
    CHECK_NULL_DB(db);
    db = (pier_db *)0x1;
    char bad_path[256];
    snprintf(bad_path, sizeof bad_path, "%s/bad-\xff\xfe.pier", t_dir());
    CHECK_RC(pier_db_open(&db, bad_path, NULL), PIER_EINVALID);
    CHECK_NULL_DB(db);
    CHECK(!t_file_exists(bad_path));

    /* options->version 0: the struct was not initialised with PIER_OPEN_OPTIONS_INIT. */
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    CHECK(options.version == PIER_OPEN_OPTIONS_VERSION);
    options.version = 0;
    const char *path = t_path("opts");
    db = (pier_db *)0x1;
    CHECK_RC(pier_db_open(&db, path, &options), PIER_EINVALID);
    CHECK_NULL_DB(db);
    CHECK_CONTAINS(pier_errmsg(), "version");
    CHECK(!t_file_exists(path)); /* refused before creating anything */

    pier_open_options bad = PIER_OPEN_OPTIONS_INIT;
    bad.durability = 2;
    CHECK_RC(pier_db_open(&db, path, &bad), PIER_EINVALID);
    CHECK_NULL_DB(db);
    CHECK_CONTAINS(pier_errmsg(), "durability");
    bad = (pier_open_options)PIER_OPEN_OPTIONS_INIT;
    bad.durability = -1;
    CHECK_RC(pier_db_open(&db, path, &bad), PIER_EINVALID);
    CHECK_NULL_DB(db);
    bad = (pier_open_options)PIER_OPEN_OPTIONS_INIT;
    bad.flags = 0x80;
    CHECK_RC(pier_db_open(&db, path, &bad), PIER_EINVALID);
    CHECK_NULL_DB(db);
    CHECK_CONTAINS(pier_errmsg(), "flags");
    bad = (pier_open_options)PIER_OPEN_OPTIONS_INIT;
    bad.default_scope = "";
    CHECK_RC(pier_db_open(&db, path, &bad), PIER_EINVALID);
    CHECK_NULL_DB(db);
    CHECK_CONTAINS(pier_errmsg(), "scope");
    bad.default_scope = "bad\nscope";
    CHECK_RC(pier_db_open(&db, path, &bad), PIER_EINVALID);
    CHECK_NULL_DB(db);
    bad.default_scope = t_repeat('s', PIER_MAX_SCOPE_BYTES + 1);
    CHECK_RC(pier_db_open(&db, path, &bad), PIER_EINVALID);
    CHECK_NULL_DB(db);
    bad = (pier_open_options)PIER_OPEN_OPTIONS_INIT;
    bad.max_body_bytes = (size_t)PIER_MAX_BODY_BYTES_CEILING + 1;
    CHECK_RC(pier_db_open(&db, path, &bad), PIER_EINVALID);
    CHECK_NULL_DB(db);
    CHECK(!t_file_exists(path));

    /* The ceiling itself, a scope at its limit, both durabilities, negative busy timeout. */
    pier_open_options good = PIER_OPEN_OPTIONS_INIT;
    good.max_body_bytes = PIER_MAX_BODY_BYTES_CEILING;
    good.default_scope = t_repeat('s', PIER_MAX_SCOPE_BYTES);
    good.durability = PIER_DURABILITY_FULL;
    good.busy_timeout_ms = -1;
    REQUIRE_RC(pier_db_open(&db, path, &good), PIER_OK);
    REQUIRE(db);
    CHECK_RC(t_put(db, "c", "i", "{}"), PIER_OK);
    pier_db_free(db);

    /* A store in a directory that does not exist: an error, never a crash. */
    char missing_dir[4200];
    snprintf(missing_dir, sizeof missing_dir, "%s/no/such/dir/x.pier", t_dir());
    db = (pier_db *)0x1;
    int rc = pier_db_open(&db, missing_dir, NULL);
    CHECK(rc == PIER_EIO || rc == PIER_ENOTFOUND);
    CHECK_NULL_DB(db);
    CHECK_ERRMSG();

    /* A directory is not a store. */
    db = (pier_db *)0x1;
    rc = pier_db_open(&db, t_dir(), NULL);
    CHECK(rc != PIER_OK);
    CHECK_NULL_DB(db);
    CHECK_ERRMSG();
}

/* ---- Flags ------------------------------------------------------------------------------- */

static void test_must_exist(void) {
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.flags = PIER_OPEN_MUST_EXIST;
    const char *path = t_path("must-exist");
    pier_db *db = (pier_db *)0x1;
    CHECK_RC(pier_db_open(&db, path, &options), PIER_ENOTFOUND);
    CHECK_NULL_DB(db);
    CHECK_ERRMSG();
    CHECK(!t_file_exists(path)); /* not created */

    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    REQUIRE_RC(t_put(db, "c", "i", "{\"v\":1}"), PIER_OK);
    pier_db_free(db);
    db = NULL;
    REQUIRE_RC(pier_db_open(&db, path, &options), PIER_OK); /* now it exists */
    CHECK_RC(t_put(db, "c", "j", "{}"), PIER_OK);               /* and is writable */
    pier_db_free(db);
}

static void test_read_only(void) {
    pier_open_options ro = PIER_OPEN_OPTIONS_INIT;
    ro.flags = PIER_OPEN_READONLY;
    const char *path = t_path("readonly");
    pier_db *db = (pier_db *)0x1;

    /* The file must exist. */
    CHECK_RC(pier_db_open(&db, path, &ro), PIER_ENOTFOUND);
    CHECK_NULL_DB(db);
    CHECK(!t_file_exists(path));

    pier_db *rw = NULL;
    REQUIRE_RC(pier_db_open(&rw, path, NULL), PIER_OK);
    REQUIRE_RC(t_put(rw, "c", "a", "{\"v\":1}"), PIER_OK);
    REQUIRE_RC(t_put(rw, "c", "b", "{\"v\":2}"), PIER_OK);
    char *client = NULL;
    REQUIRE_RC(pier_db_client_id(rw, &client), PIER_OK);
    pier_db_free(rw);

    REQUIRE_RC(pier_db_open(&db, path, &ro), PIER_OK);
    REQUIRE(db);

    /* Reads work. */
    char *out = NULL;
    CHECK_RC(pier_db_get(db, &out, NULL, "c", "a"), PIER_OK);
    CHECK_STR(out, "{\"v\":1}");
    pier_free(out);
    int64_t n = 0;
    CHECK_RC(pier_db_count(db, &n, "c"), PIER_OK);
    CHECK(n == 2);
    CHECK_RC(pier_db_list(db, &out, NULL, "c", NULL, 10), PIER_OK);
    pier_free(out);
    CHECK_RC(pier_db_query(db, &out, NULL, "SELECT count(*) AS n FROM records", NULL), PIER_OK);
    CHECK_STR(out, "[{\"n\":2}]");
    pier_free(out);
    int state = -1;
    CHECK_RC(pier_db_state(db, &state, "c", "a"), PIER_OK);
    CHECK(state == PIER_STATE_PENDING);
    CHECK_RC(pier_db_metadata(db, &out, NULL, "c", "a"), PIER_OK);
    pier_free(out);
    CHECK_RC(pier_db_client_id(db, &out), PIER_OK);
    CHECK_STR(out, client);
    pier_free(out);
    CHECK_RC(pier_db_info(db, &out, NULL), PIER_OK);
    pier_free(out);
    pier_free(client);

    /* Every write is PIER_EREADONLY. */
    const char *ids[] = {"x"};
    const char *bodies[] = {"{}"};
    size_t lens[] = {2};
    CHECK_RC(t_put(db, "c", "a", "{\"v\":9}"), PIER_EREADONLY);
    CHECK_ERRMSG();
    CHECK_RC(t_put(db, "c", "new", "{}"), PIER_EREADONLY);
    CHECK_RC(pier_db_put_scoped(db, "c", "a", "s", "{}", 2), PIER_EREADONLY);
    CHECK_RC(pier_db_put_many(db, "c", ids, bodies, lens, 1), PIER_EREADONLY);
    CHECK_RC(pier_db_patch(db, "c", "a", "{\"v\":9}", 7), PIER_EREADONLY);
    CHECK_RC(pier_db_delete(db, "c", "a"), PIER_EREADONLY);
    CHECK_RC(pier_db_create_index(db, "c", "v"), PIER_EREADONLY);
    CHECK_RC(pier_db_begin(db), PIER_EREADONLY);
    CHECK_RC(pier_db_query(db, &out, NULL, "DELETE FROM pier_records", NULL), PIER_EREADONLY);
    CHECK_NULL_OUT(out);
    CHECK_RC(pier_db_count(db, &n, "c"), PIER_OK);
    CHECK(n == 2);
    pier_db_free(db);

    /* Nothing changed. */
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    CHECK_RC(pier_db_get(db, &out, NULL, "c", "a"), PIER_OK);
    CHECK_STR(out, "{\"v\":1}");
    pier_free(out);
    CHECK_RC(pier_db_get(db, &out, NULL, "c", "new"), PIER_ENOTFOUND);
    CHECK_NULL_OUT(out);

    /* A read-only handle sees what a read-write handle commits while both are open. */
    pier_db *reader = NULL;
    REQUIRE_RC(pier_db_open(&reader, path, &ro), PIER_OK);
    CHECK_RC(t_put(db, "c", "later", "{\"late\":true}"), PIER_OK);
    CHECK_RC(pier_db_get(reader, &out, NULL, "c", "later"), PIER_OK);
    CHECK_STR(out, "{\"late\":true}");
    pier_free(out);
    pier_db_free(reader);
    pier_db_free(db);

    /* MUST_EXIST | READONLY together. */
    ro.flags = PIER_OPEN_READONLY | PIER_OPEN_MUST_EXIST;
    REQUIRE_RC(pier_db_open(&db, path, &ro), PIER_OK);
    pier_db_free(db);
}

/* ---- Files that are not Pier stores --------------------------------------------------- */

static void test_garbage_files(void) {
    /* Random bytes. */
    const char *path = t_path("garbage");
    unsigned char noise[8192];
    unsigned int seed = 12345;
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
    REQUIRE(t_write_file(path, noise, sizeof noise) == 0);
    expect_refused(path, NULL, PIER_ENOTDB, "a file of random bytes");
    CHECK_CONTAINS(pier_errmsg(), path);
    CHECK(!t_file_exists(path_with(path, "-wal")));
    CHECK(!t_file_exists(path_with(path, "-journal")));

    /* Also refused read-only and with MUST_EXIST. */
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.flags = PIER_OPEN_READONLY;
    expect_refused(path, &options, PIER_ENOTDB, "random bytes, read-only");
    options.flags = PIER_OPEN_MUST_EXIST;
    expect_refused(path, &options, PIER_ENOTDB, "random bytes, must-exist");

    /* A small text file. */
    path = t_path("text");
    const char *text = "hello, this is a text file, not a database\n";
    REQUIRE(t_write_file(path, text, strlen(text)) == 0);
    expect_refused(path, NULL, PIER_ENOTDB, "a short text file");

    /* A file that starts like SQLite but is damaged after the header. */
    path = t_path("half-sqlite");
    unsigned char fake[4096];
    memcpy(fake, noise, sizeof fake);
    memcpy(fake, "SQLite format 3", 16);
    REQUIRE(t_write_file(path, fake, sizeof fake) == 0);
    expect_refused(path, NULL, PIER_ENOTDB, "a damaged SQLite header");
}

static int exec_sql(sqlite3 *db, const char *sql) {
    char *error = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &error);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "sqlite3_exec(%s): %s\n", sql, error ? error : "?");
        sqlite3_free(error);
    }
    return rc;
}

static void make_sqlite(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK || exec_sql(db, sql) != SQLITE_OK)
        t_fail(__FILE__, __LINE__, "cannot create %s", path);
    sqlite3_close(db);
}

static void test_foreign_sqlite(void) {
    /* Another application's database: tables, rows, no application_id. */
    const char *path = t_path("other-app");
    make_sqlite(path, "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT);"
                      "INSERT INTO notes(text) VALUES ('keep me'), ('and me');");
    expect_refused(path, NULL, PIER_ENOTDB, "another application's SQLite file");
    CHECK_CONTAINS(pier_errmsg(), "another application");
    CHECK(!t_file_exists(path_with(path, "-wal")));
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.flags = PIER_OPEN_READONLY;
    expect_refused(path, &options, PIER_ENOTDB, "another application's SQLite file, read-only");

    /* Even one whose tables happen to be named like Pier's. */
    path = t_path("lookalike");
    make_sqlite(path, "CREATE TABLE pier_meta(key TEXT PRIMARY KEY, value);"
                      "INSERT INTO pier_meta VALUES ('schema_version', 1);");
    expect_refused(path, NULL, PIER_ENOTDB, "an SQLite file with a pier_meta table but no Pier application id");

    /* Another application that set its own application_id, with no tables yet. */
    path = t_path("other-appid");
    make_sqlite(path, "PRAGMA application_id = 1234; PRAGMA user_version = 3;");
    expect_refused(path, NULL, PIER_ENOTDB, "an SQLite file with another application_id");

    /* Another application's WAL-mode database (closed cleanly). */
    path = t_path("other-wal");
    make_sqlite(path, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    expect_refused(path, NULL, PIER_ENOTDB, "another application's WAL-mode SQLite file");

    /* The files still open as what they are. */
    sqlite3 *check = NULL;
    REQUIRE(sqlite3_open_v2(path, &check, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    REQUIRE(sqlite3_prepare_v2(check, "SELECT count(*) FROM t", -1, &stmt, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) == 1);
    sqlite3_finalize(stmt);
    sqlite3_close(check);
}

static void test_empty_file_becomes_store(void) {
    /* A zero-byte file is a new, empty database: Pier may initialise it. */
    const char *path = t_path("empty");
    REQUIRE(t_write_file(path, "", 0) == 0);
    pier_db *db = NULL;
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    CHECK_RC(t_put(db, "c", "i", "{}"), PIER_OK);
    pier_db_free(db);
    /* And it is then recognised as a Pier store. */
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    int64_t n = 0;
    CHECK_RC(pier_db_count(db, &n, "c"), PIER_OK);
    CHECK(n == 1);
    pier_db_free(db);
}

static void set_schema_version(const char *path, int version) {
    sqlite3 *db = NULL;
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE pier_meta SET value = %d WHERE key = 'schema_version'", version);
    if (sqlite3_open(path, &db) != SQLITE_OK || exec_sql(db, sql) != SQLITE_OK || sqlite3_changes(db) != 1)
        t_fail(__FILE__, __LINE__, "cannot set schema_version in %s", path);
    /* Fold the WAL back into the main file so the snapshot below covers everything. */
    exec_sql(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
}

static void test_newer_version(void) {
    const char *path = t_path("future");
    pier_db *db = NULL;
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    REQUIRE_RC(t_put(db, "c", "i", "{\"v\":1}"), PIER_OK);
    pier_db_free(db);
    set_schema_version(path, 999);

    expect_refused(path, NULL, PIER_EVERSION, "a store with schema_version 999");
    CHECK_CONTAINS(pier_errmsg(), "999");
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.flags = PIER_OPEN_READONLY;
    expect_refused(path, &options, PIER_EVERSION, "a store with schema_version 999, read-only");

    /* Set back to the current version, the store opens with its data. */
    char *info = NULL;
    pier_db *probe = t_open("version-probe");
    REQUIRE(probe);
    REQUIRE_RC(pier_db_info(probe, &info, NULL), PIER_OK);
    int current = (int)t_json_int(info, "$.schema_version");
    pier_free(info);
    pier_db_free(probe);
    set_schema_version(path, current);
    REQUIRE_RC(pier_db_open(&db, path, NULL), PIER_OK);
    char *body = NULL;
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "i"), PIER_OK);
    CHECK_STR(body, "{\"v\":1}");
    pier_free(body);
    pier_db_free(db);
}

static void test_two_handles_one_file(void) {
    /* Two read-write handles on one file see each other's commits. */
    const char *path = t_path("two");
    pier_db *a = NULL, *b = NULL;
    REQUIRE_RC(pier_db_open(&a, path, NULL), PIER_OK);
    REQUIRE_RC(pier_db_open(&b, path, NULL), PIER_OK);
    CHECK_RC(t_put(a, "c", "from-a", "{}"), PIER_OK);
    CHECK_RC(t_put(b, "c", "from-b", "{}"), PIER_OK);
    int64_t na = 0, nb = 0;
    CHECK_RC(pier_db_count(a, &na, "c"), PIER_OK);
    CHECK_RC(pier_db_count(b, &nb, "c"), PIER_OK);
    CHECK(na == 2 && nb == 2);

    /* local_seq stays strictly increasing across the handles (the outbox order). */
    char *ma = NULL, *mb = NULL;
    REQUIRE_RC(pier_db_metadata(a, &ma, NULL, "c", "from-a"), PIER_OK);
    REQUIRE_RC(pier_db_metadata(a, &mb, NULL, "c", "from-b"), PIER_OK);
    CHECK(t_json_int(mb, "$.local_seq") > t_json_int(ma, "$.local_seq"));
    pier_free(ma);
    pier_free(mb);

    /* A transaction on one handle holds the write lock: the other gets EBUSY after its
     * busy timeout. */
    pier_db_free(b);
    pier_open_options quick = PIER_OPEN_OPTIONS_INIT;
    quick.busy_timeout_ms = -1;
    REQUIRE_RC(pier_db_open(&b, path, &quick), PIER_OK);
    REQUIRE_RC(pier_db_begin(a), PIER_OK);
    CHECK_RC(t_put(a, "c", "tx", "{}"), PIER_OK);
    CHECK_RC(t_put(b, "c", "blocked", "{}"), PIER_EBUSY);
    CHECK_ERRMSG();
    CHECK_RC(pier_db_commit(a), PIER_OK);
    CHECK_RC(t_put(b, "c", "blocked", "{}"), PIER_OK);
    pier_db_free(a);
    pier_db_free(b);
}

static const pier_test tests[] = {
    {"open_arguments", test_open_arguments},
    {"must_exist", test_must_exist},
    {"read_only", test_read_only},
    {"garbage_files", test_garbage_files},
    {"foreign_sqlite", test_foreign_sqlite},
    {"empty_file_becomes_store", test_empty_file_becomes_store},
    {"newer_version", test_newer_version},
    {"two_handles_one_file", test_two_handles_one_file},
};

int main(int argc, char **argv) { return RUN_TESTS(tests); }
