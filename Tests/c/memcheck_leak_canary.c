/*
 * memcheck_leak_canary.c — proves the memcheck tests can fail: it forgets to pier_free a
 * body on purpose, and the memcheck_catches_leak test expects valgrind to report that
 * block as definitely lost. Never "fix" this file.
 */
#include "pier.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "canary.pier";
    remove(path);
    pier_db *db = NULL;
    if (pier_db_open(&db, path, NULL) != PIER_OK) return 2;
    if (pier_db_put(db, "c", "leak", "{\"leak\":true}", 13) != PIER_OK) return 2;
    char *body = NULL;
    if (pier_db_get(db, &body, NULL, "c", "leak") != PIER_OK) return 2;
    printf("%s\n", body);
    body = NULL; /* the deliberate missing pier_free(body) */
    pier_db_free(db);
    remove(path);
    return 0;
}
