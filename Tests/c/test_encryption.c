/*
 * test_encryption.c — encryption at rest through the C API: open options v2 with a
 * passphrase or a raw key, wrong and missing keys (PIER_EKEY, file untouched), a flipped
 * byte (PIER_ECORRUPT), change key, rekey, encrypting and decrypting files, and the key
 * header report. Version-1 open options still work.
 */
#define _GNU_SOURCE
#include "test.h"

#include <stdlib.h>

static const unsigned char RAW[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static pier_key passphrase_key(const char *passphrase) {
    pier_key key = PIER_KEY_INIT;
    key.passphrase = passphrase;
    key.kdf_iterations = 2000; /* tests only: the default is PIER_DEFAULT_KDF_ITERATIONS */
    return key;
}

static pier_key raw_key(void) {
    pier_key key = PIER_KEY_INIT;
    key.raw_key = RAW;
    key.raw_key_len = sizeof RAW;
    return key;
}

static int open_with(pier_db **db, const char *path, const pier_key *key) {
    pier_open_options options = PIER_OPEN_OPTIONS_INIT;
    options.key = key;
    return pier_db_open(db, path, &options);
}

static int contains_bytes(const unsigned char *haystack, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(haystack + i, needle, n) == 0) return 1;
    return 0;
}

static void test_round_trip(void) {
    const char *path = t_path("round.pier");
    pier_key key = passphrase_key("correct horse");
    pier_db *db = NULL;
    REQUIRE_RC(open_with(&db, path, &key), PIER_OK);
    CHECK_RC(t_put(db, "customers", "c1", "{\"name\":\"Ada Secret\"}"), PIER_OK);
    pier_db_free(db);

    size_t len = 0;
    unsigned char *bytes = t_read_file(path, &len);
    REQUIRE(bytes != NULL);
    CHECK(!contains_bytes(bytes, len, "Ada Secret"));
    CHECK(!contains_bytes(bytes, len, "customers"));
    free(bytes);

    db = NULL;
    REQUIRE_RC(open_with(&db, path, &key), PIER_OK);
    char *body = NULL;
    CHECK_RC(pier_db_get(db, &body, NULL, "customers", "c1"), PIER_OK);
    CHECK_STR(body, "{\"name\":\"Ada Secret\"}");
    pier_free(body);
    pier_db_free(db);

    char *info = NULL;
    CHECK_RC(pier_encryption_info(path, &info, NULL), PIER_OK);
    CHECK_CONTAINS(info, "\"encrypted\":true");
    CHECK_CONTAINS(info, "\"kdf\":\"PBKDF2-HMAC-SHA256\"");
    CHECK_CONTAINS(info, "\"iterations\":2000");
    pier_free(info);
}

static void test_wrong_keys(void) {
    const char *path = t_path("wrong.pier");
    pier_key right = raw_key();
    pier_db *db = NULL;
    REQUIRE_RC(open_with(&db, path, &right), PIER_OK);
    CHECK_RC(t_put(db, "c", "1", "{}"), PIER_OK);
    pier_db_free(db);
    size_t before_len = 0;
    unsigned char *before = t_read_file(path, &before_len);

    pier_key wrong = passphrase_key("guess");
    db = NULL;
    CHECK_RC(open_with(&db, path, &wrong), PIER_EKEY);
    CHECK(db == NULL);
    CHECK_RC(pier_db_open(&db, path, NULL), PIER_EKEY);
    CHECK_CONTAINS(pier_errmsg(), "encrypted");
    pier_key bad = PIER_KEY_INIT;
    CHECK_RC(open_with(&db, path, &bad), PIER_EINVALID);
    bad.raw_key = RAW;
    bad.raw_key_len = 16;
    CHECK_RC(open_with(&db, path, &bad), PIER_EINVALID);
    bad.raw_key_len = 32;
    bad.passphrase = "both";
    CHECK_RC(open_with(&db, path, &bad), PIER_EINVALID);

    size_t after_len = 0;
    unsigned char *after = t_read_file(path, &after_len);
    CHECK(before && after && before_len == after_len && memcmp(before, after, before_len) == 0);
    free(before);
    free(after);

    /* A key for a plain store is PIER_EKEY too; version-1 options open it as before. */
    const char *plain = t_path("plain.pier");
    pier_open_options v1 = PIER_OPEN_OPTIONS_INIT;
    v1.version = 1;
    REQUIRE_RC(pier_db_open(&db, plain, &v1), PIER_OK);
    pier_db_free(db);
    db = NULL;
    CHECK_RC(open_with(&db, plain, &right), PIER_EKEY);
    CHECK_CONTAINS(pier_errmsg(), "not encrypted");
    char *info = NULL;
    CHECK_RC(pier_encryption_info(plain, &info, NULL), PIER_OK);
    CHECK_STR(info, "{\"encrypted\":false}");
    pier_free(info);
}

static void test_tamper(void) {
    const char *path = t_path("tamper.pier");
    pier_key key = raw_key();
    pier_db *db = NULL;
    REQUIRE_RC(open_with(&db, path, &key), PIER_OK);
    char id[32];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "r%03d", i);
        CHECK_RC(t_put(db, "c", id, "{\"text\":\"some words to fill the page\"}"), PIER_OK);
    }
    pier_db_free(db);
    /* Flip one byte in the middle of page 2 (after the 4096-byte key header). */
    FILE *file = fopen(path, "r+b");
    REQUIRE(file != NULL);
    fseek(file, 4096 + 4096 + 2000, SEEK_SET);
    int c = fgetc(file);
    fseek(file, 4096 + 4096 + 2000, SEEK_SET);
    fputc(c ^ 0x10, file);
    fclose(file);
    db = NULL;
    int rc = open_with(&db, path, &key);
    if (rc == PIER_OK) {
        char *json = NULL;
        rc = pier_db_query(db, &json, NULL, "SELECT count(*) AS n, sum(length(body)) AS b FROM records", NULL);
        pier_free(json);
        pier_db_free(db);
    }
    CHECK_RC(rc, PIER_ECORRUPT);
}

static void test_change_key_and_rekey(void) {
    const char *path = t_path("keys.pier");
    pier_key one = passphrase_key("one");
    pier_key two = passphrase_key("two");
    pier_key raw = raw_key();
    pier_db *db = NULL;
    REQUIRE_RC(open_with(&db, path, &one), PIER_OK);
    CHECK_RC(t_put(db, "c", "1", "{\"v\":1}"), PIER_OK);
    CHECK_RC(pier_db_change_key(db, &two), PIER_OK);
    CHECK_RC(pier_db_rekey(db, NULL), PIER_OK);
    CHECK_RC(t_put(db, "c", "2", "{\"v\":2}"), PIER_OK);
    pier_db *other = NULL;
    REQUIRE_RC(open_with(&other, path, &two), PIER_OK);
    CHECK_RC(pier_db_rekey(db, &raw), PIER_EBUSY);
    pier_db_free(other);
    CHECK_RC(pier_db_rekey(db, &raw), PIER_OK);
    char *body = NULL;
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "2"), PIER_OK);
    CHECK_STR(body, "{\"v\":2}");
    pier_free(body);
    CHECK_RC(pier_db_change_key(db, NULL), PIER_EINVALID);
    pier_db_free(db);
    db = NULL;
    CHECK_RC(open_with(&db, path, &two), PIER_EKEY);
    REQUIRE_RC(open_with(&db, path, &raw), PIER_OK);
    pier_db_free(db);

    const char *plain = t_path("plain-keys.pier");
    REQUIRE_RC(pier_db_open(&db, plain, NULL), PIER_OK);
    CHECK_RC(pier_db_change_key(db, &raw), PIER_ESTATE);
    CHECK_RC(pier_db_rekey(db, NULL), PIER_ESTATE);
    pier_db_free(db);
}

static void test_encrypt_and_decrypt_files(void) {
    const char *plain = t_path("to-encrypt.pier");
    pier_db *db = NULL;
    REQUIRE_RC(pier_db_open(&db, plain, NULL), PIER_OK);
    CHECK_RC(t_put(db, "notes", "n1", "{\"text\":\"visible before\"}"), PIER_OK);
    pier_db_free(db);
    pier_key key = raw_key();
    CHECK_RC(pier_encrypt_file(plain, NULL, &key), PIER_OK);
    size_t len = 0;
    unsigned char *bytes = t_read_file(plain, &len);
    CHECK(bytes && !contains_bytes(bytes, len, "visible before"));
    free(bytes);
    CHECK_RC(pier_encrypt_file(plain, NULL, &key), PIER_EINVALID);
    const char *copy = t_path("decrypted.pier");
    CHECK_RC(pier_decrypt_file(plain, &key, copy), PIER_OK);
    CHECK_RC(pier_decrypt_file(plain, &key, copy), PIER_EINVALID);
    db = NULL;
    REQUIRE_RC(pier_db_open(&db, copy, NULL), PIER_OK);
    char *body = NULL;
    CHECK_RC(pier_db_get(db, &body, NULL, "notes", "n1"), PIER_OK);
    CHECK_STR(body, "{\"text\":\"visible before\"}");
    pier_free(body);
    pier_db_free(db);
    CHECK_RC(pier_encrypt_file(NULL, NULL, &key), PIER_EINVALID);
    CHECK_RC(pier_decrypt_file(plain, NULL, t_path("x.pier")), PIER_EINVALID);
    CHECK_RC(pier_encryption_info(t_path("missing.pier"), NULL, NULL), PIER_EINVALID);
}

/* NULL handles, closed handles and NULL arguments: a clear code and message, never a crash. */
static void test_bad_arguments(void) {
    pier_key key = raw_key();
    CHECK_RC(pier_db_change_key(NULL, &key), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "db is NULL");
    CHECK_RC(pier_db_rekey(NULL, NULL), PIER_EINVALID);
    CHECK_CONTAINS(pier_errmsg(), "db is NULL");

    const char *path = t_path("closed-keys.pier");
    pier_db *db = NULL;
    REQUIRE_RC(open_with(&db, path, &key), PIER_OK);
    CHECK_RC(t_put(db, "c", "1", "{\"v\":1}"), PIER_OK);
    REQUIRE_RC(pier_db_close(db), PIER_OK);
    pier_key other = passphrase_key("other");
    CHECK_RC(pier_db_change_key(db, &other), PIER_ECLOSED);
    CHECK_RC(pier_db_rekey(db, NULL), PIER_ECLOSED);
    pier_db_free(db);
    db = NULL;
    /* Nothing changed: the old key still opens the store and its record is there. */
    REQUIRE_RC(open_with(&db, path, &key), PIER_OK);
    char *body = NULL;
    CHECK_RC(pier_db_get(db, &body, NULL, "c", "1"), PIER_OK);
    CHECK_STR(body, "{\"v\":1}");
    pier_free(body);
    pier_db_free(db);

    char *json = (char *)0x1;
    size_t len = 7;
    CHECK_RC(pier_encryption_info(NULL, &json, &len), PIER_EINVALID);
    CHECK(json == NULL && len == 0);
    CHECK_ERRMSG();
    json = NULL;
    CHECK_RC(pier_encryption_info(t_path("missing-info.pier"), &json, &len), PIER_ENOTFOUND);
    CHECK(json == NULL);
    CHECK_ERRMSG();
    CHECK_RC(pier_encryption_info(path, &json, &len), PIER_OK);
    CHECK_STR(t_json_type(json, "$.encrypted"), "true");
    pier_free(json);
    CHECK_RC(pier_encrypt_file(t_path("missing-plain.pier"), NULL, NULL), PIER_EINVALID);
    CHECK_ERRMSG();
    CHECK_RC(pier_decrypt_file(NULL, &key, t_path("y.pier")), PIER_EINVALID);
    CHECK_ERRMSG();
    CHECK_RC(pier_decrypt_file(path, NULL, t_path("y.pier")), PIER_EINVALID);
    CHECK_ERRMSG();
}

static const pier_test tests[] = {
    {"round_trip", test_round_trip},
    {"wrong_keys", test_wrong_keys},
    {"tamper", test_tamper},
    {"change_key_and_rekey", test_change_key_and_rekey},
    {"encrypt_and_decrypt_files", test_encrypt_and_decrypt_files},
    {"bad_arguments", test_bad_arguments},
};

int main(int argc, char **argv) { return RUN_TESTS(tests); }
