/*
 * hello.c — a first Pier program: open a store, write a record, read it back, query it.
 *
 *   cc hello.c $(pkg-config --cflags --libs pier) -o hello && ./hello
 *
 * Every Pier function returns PIER_OK (0) or a negative PIER_E... code; pier_errmsg()
 * says what went wrong. Buffers Pier hands you are yours: release them with pier_free().
 */
#include <pier.h>

#include <stdio.h>
#include <string.h>

/* Prints the failure and jumps to the clean-up code. */
#define TRY(call)                                                                   \
    do {                                                                            \
        int rc_ = (call);                                                           \
        if (rc_ != PIER_OK) {                                                       \
            fprintf(stderr, "%s failed: %s: %s\n", #call, pier_errname(rc_), pier_errmsg()); \
            goto done;                                                              \
        }                                                                           \
    } while (0)

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "hello.pier";
    int status = 1;
    pier_db *db = NULL;
    char *body = NULL, *rows = NULL;

    printf("Pier %s\n", pier_version());

    /* Open (or create) the store. NULL options = the defaults. */
    TRY(pier_db_open(&db, path, NULL));

    /* Write a record: a JSON object under a collection and an id. */
    char id[PIER_UUID_BUFFER_SIZE];
    TRY(pier_uuid7(id));
    const char *customer = "{\"name\": \"Ada Lovelace\", \"city\": \"London\"}";
    TRY(pier_db_put(db, "customers", id, customer, strlen(customer)));
    printf("put    customers/%s\n", id);

    /* Read it back. The body is ours to free. */
    size_t len = 0;
    TRY(pier_db_get(db, &body, &len, "customers", id));
    printf("get    %s (%zu bytes)\n", body, len);

    /* Query the records view with a bound parameter; the result is a JSON array. */
    TRY(pier_db_query(db, &rows, NULL,
                      "SELECT id, json_extract(body, '$.name') AS name FROM records "
                      "WHERE collection = 'customers' AND json_extract(body, '$.city') = ?1",
                      "[\"London\"]"));
    printf("query  %s\n", rows);

    /* Something that fails on purpose, to show the error API. */
    char *missing = NULL;
    int rc = pier_db_get(db, &missing, NULL, "customers", "no-such-id"); /* missing stays NULL */
    printf("error  %s: %s\n", pier_errname(rc), pier_errmsg());

    status = 0;
done:
    pier_free(rows);
    pier_free(body);
    pier_db_free(db); /* closes the store; accepts NULL */
    return status;
}
