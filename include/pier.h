/*
 * pier.h — the public C interface of Pier, an embeddable offline-first sync library.
 *
 * This header is the contract. Everything libpier exports is declared here, every
 * declaration here is exported, and a test in the build checks both directions.
 * docs/C-API.md is the guide with worked examples.
 *
 * VERSIONING
 *   PIER_VERSION_MAJOR changes only when a declaration changes incompatibly; the
 *   library's SONAME is libpier.so.<major>. Status codes are never renumbered or reused.
 *   Options and report structs only ever grow at the end; their first field `version`
 *   tells the library which fields the caller knows about, so always initialise them
 *   with their PIER_<NAME>_INIT macro.
 *
 * THREADING
 *   Every function may be called from any thread. A pier_db handle may be shared by
 *   threads: calls on one handle are serialised by a lock inside the handle (so two
 *   threads using one handle wait for each other; use one handle per thread for
 *   parallel reads). A transaction opened with pier_db_begin belongs to the handle, not
 *   to the thread. pier_errmsg() is per thread. Callbacks say which thread they run on.
 *   A callback must not call Pier on the handle whose call is running it (pier_sync's
 *   callbacks on that pier_db, a resolver on its pier_server): such calls, the close and
 *   free functions included, return PIER_ESTATE and change nothing.
 *
 * ERRORS
 *   Functions return PIER_OK (0) or a negative PIER_E... code. After a failure,
 *   pier_errmsg() on the same thread describes it (failing calls the log callback makes
 *   meanwhile do not replace it). On failure, out-pointers are set to NULL (and
 *   out-lengths to 0).
 *
 * MEMORY
 *   Input strings are NUL-terminated UTF-8 and input buffers are (pointer, length);
 *   the library copies what it keeps. Buffers the library returns belong to the caller
 *   and are released with pier_free(). Handles are released with their *_free function.
 *   Every free function accepts NULL.
 */
#ifndef PIER_H
#define PIER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------- */
/* Version                                                                              */
/* ---------------------------------------------------------------------------------- */

#define PIER_VERSION_MAJOR 0
#define PIER_VERSION_MINOR 1
#define PIER_VERSION_PATCH 0
#define PIER_VERSION_STRING "0.1.0"
/** MAJOR * 10000 + MINOR * 100 + PATCH. */
#define PIER_VERSION_NUMBER (PIER_VERSION_MAJOR * 10000 + PIER_VERSION_MINOR * 100 + PIER_VERSION_PATCH)

/**
 * The version of the loaded library, such as "0.1.0".
 * @return a static string; never NULL, never freed.
 */
const char *pier_version(void);

/**
 * The version of the loaded library as PIER_VERSION_NUMBER computes it. Compare it with
 * the header's PIER_VERSION_NUMBER to detect a library older than the header.
 * @return MAJOR * 10000 + MINOR * 100 + PATCH.
 */
int pier_version_number(void);

/* ---------------------------------------------------------------------------------- */
/* Status codes                                                                         */
/* ---------------------------------------------------------------------------------- */

#define PIER_OK          0   /**< Success. */
#define PIER_ERROR      -1   /**< Internal error: a bug in Pier; pier_errmsg() has details. */
#define PIER_EINVALID   -2   /**< An argument is invalid: NULL, bad name or id, body not a JSON object, too large. */
#define PIER_ENOTFOUND  -3   /**< No such record, store file or object. */
#define PIER_ECLOSED    -4   /**< The handle was closed. */
#define PIER_ENOTDB     -5   /**< The file is not a Pier store (garbage, or another application's SQLite file). */
#define PIER_EVERSION   -6   /**< The store was written by a newer Pier (or the format version is unknown). */
#define PIER_EREADONLY  -7   /**< A write on a read-only store, or a query that would write. */
#define PIER_ESTATE     -8   /**< The call is not valid now (commit with no transaction open, ...). */
#define PIER_EBUSY      -9   /**< Another connection holds the database lock past the busy timeout. */
#define PIER_EIO        -10  /**< An I/O error or a full disk. Nothing half-written survives. */
#define PIER_ENOMEM     -11  /**< Out of memory. */
#define PIER_ECORRUPT   -12  /**< Stored data failed an integrity check. */
#define PIER_EKEY       -13  /**< Wrong or missing encryption key or passphrase. */
#define PIER_ECONFLICT  -14  /**< Unresolved conflicts block the operation. */
#define PIER_EPROTOCOL  -15  /**< A malformed, truncated or oversized frame or message. */
#define PIER_ENETWORK   -16  /**< The sync server could not be reached or the link failed. */
#define PIER_EAUTH      -17  /**< Authentication failed (bad, expired or missing credentials). */
#define PIER_EFORBIDDEN -18  /**< Authenticated, but not allowed to do this. */
#define PIER_ELIMIT     -19  /**< A configured limit was exceeded. */
#define PIER_ECANCELLED -20  /**< A callback asked to stop, or the operation was interrupted. */

/**
 * The message of the last failure on the calling thread: what went wrong and what to do
 * about it. Calls that succeed leave it unchanged.
 * @return a thread-local string, valid until the next failing Pier call on this thread;
 *         never NULL ("not an error" before any failure).
 */
const char *pier_errmsg(void);

/**
 * A short fixed description of a status code, such as "invalid argument".
 * @param code a PIER_OK or PIER_E... value.
 * @return a static string; never NULL ("unknown status code" for other values).
 */
const char *pier_errstr(int code);

/**
 * The name of a status code's constant, such as "PIER_EINVALID".
 * @return a static string; never NULL.
 */
const char *pier_errname(int code);

/**
 * Releases a buffer that Pier returned (bodies, JSON, ids). Accepts NULL.
 */
void pier_free(void *buffer);

/* ---------------------------------------------------------------------------------- */
/* Logging                                                                              */
/* ---------------------------------------------------------------------------------- */

#define PIER_LOG_DEBUG 0
#define PIER_LOG_INFO  1
#define PIER_LOG_WARN  2
#define PIER_LOG_ERROR 3

/**
 * Receives one log line.
 * @param ctx     the pointer given to pier_log_set_callback.
 * @param level   PIER_LOG_DEBUG .. PIER_LOG_ERROR.
 * @param message NUL-terminated UTF-8, borrowed for the duration of the call.
 * Runs on the thread that made the Pier call producing the line (the lines of pier_sync's
 * helper thread, see pier_sync, are delivered on the thread that called pier_sync once the
 * helper is done); it may run on several threads at once and must not call back into Pier
 * on the same handle.
 */
typedef void (*pier_log_cb)(void *ctx, int level, const char *message);

/**
 * Installs the process-wide log callback (replacing any earlier one), or removes it when
 * callback is NULL. Lines below min_level are never formatted.
 * @return PIER_OK, or PIER_EINVALID for a level outside PIER_LOG_DEBUG..PIER_LOG_ERROR.
 */
int pier_log_set_callback(pier_log_cb callback, void *ctx, int min_level);

/* ---------------------------------------------------------------------------------- */
/* Ids                                                                                  */
/* ---------------------------------------------------------------------------------- */

/** Bytes needed for a UUID in text form, with its NUL. */
#define PIER_UUID_BUFFER_SIZE 37

/**
 * Writes a new time-ordered UUIDv7 (RFC 9562) into out, such as
 * "01932c07-a3f1-7c2e-9a0b-4f6d2e8c1b3a". Ids made later sort after ids made earlier in
 * this process; ids made on different devices do not collide, so a record created
 * offline keeps its id forever.
 * @param out a buffer of at least PIER_UUID_BUFFER_SIZE bytes; receives 36 characters and a NUL.
 * @return PIER_OK, or PIER_EINVALID if out is NULL.
 */
int pier_uuid7(char *out);

/* ---------------------------------------------------------------------------------- */
/* Local store                                                                          */
/* ---------------------------------------------------------------------------------- */

/** An open local store: one SQLite file (plus its -wal and -shm files). Opaque. */
typedef struct pier_db pier_db;

/* Limits (bytes of UTF-8). */
#define PIER_MAX_COLLECTION_BYTES 128       /**< Collection names: 1..128 bytes, no control characters. */
#define PIER_MAX_ID_BYTES 256               /**< Record ids: 1..256 bytes, no control characters. */
#define PIER_MAX_SCOPE_BYTES 256            /**< Scope names: 1..256 bytes, no control characters. */
#define PIER_DEFAULT_MAX_BODY_BYTES 1048576 /**< Default body limit (1 MiB). */
#define PIER_MAX_BODY_BYTES_CEILING 67108864 /**< The largest body limit a store accepts (64 MiB). */

/* Durability (pier_open_options.durability). */
#define PIER_DURABILITY_NORMAL 0 /**< WAL + synchronous=NORMAL: survives an app crash (default). */
#define PIER_DURABILITY_FULL   1 /**< WAL + synchronous=FULL: survives a power failure too. */

/* Open flags (pier_open_options.flags). */
#define PIER_OPEN_READONLY    0x1 /**< Read only; the file must exist. Writes fail with PIER_EREADONLY. */
#define PIER_OPEN_MUST_EXIST  0x2 /**< Fail with PIER_ENOTFOUND instead of creating the file. */

/* PBKDF2-HMAC-SHA256 iterations used when a passphrase wraps the data key (OWASP's count). */
#define PIER_DEFAULT_KDF_ITERATIONS 600000
/* The smallest count accepted (for tests and benchmarks only). */
#define PIER_MIN_KDF_ITERATIONS 1000

/**
 * The key of an encrypted store (docs/SECURITY.md): a passphrase or a raw 32-byte key,
 * exactly one of them. Initialise with PIER_KEY_INIT. Pier copies what it needs; the
 * caller may wipe its buffers after the call returns.
 */
typedef struct pier_key {
    unsigned int version;          /**< PIER_KEY_VERSION. */
    const char *passphrase;        /**< NUL-terminated UTF-8, not empty; or NULL. */
    const unsigned char *raw_key;  /**< 32 random bytes; or NULL. */
    size_t raw_key_len;            /**< 32 when raw_key is set. */
    unsigned int kdf_iterations;   /**< PBKDF2 iterations when this passphrase wraps a key (new file,
                                        change, rekey); 0 = PIER_DEFAULT_KDF_ITERATIONS. Opening reads
                                        the count from the file. */
} pier_key;

#define PIER_KEY_VERSION 1
#define PIER_KEY_INIT { PIER_KEY_VERSION, NULL, NULL, 0, 0 }

/** Options for pier_db_open. Initialise with PIER_OPEN_OPTIONS_INIT. */
typedef struct pier_open_options {
    unsigned int version;       /**< PIER_OPEN_OPTIONS_VERSION. */
    int durability;             /**< PIER_DURABILITY_NORMAL (default) or PIER_DURABILITY_FULL. */
    unsigned int flags;         /**< PIER_OPEN_* bits; 0 = read-write, create if missing. */
    const char *default_scope;  /**< Scope of records written without one; NULL = "default". Copied. */
    size_t max_body_bytes;      /**< Largest body accepted; 0 = PIER_DEFAULT_MAX_BODY_BYTES. */
    int busy_timeout_ms;        /**< How long a write waits for another connection's lock; 0 = 5000, negative = no wait. */
    /* Version 2: */
    const pier_key *key;        /**< Encryption at rest: NULL = a plain file. A new file is created
                                     encrypted; an existing one must match (PIER_EKEY otherwise). */
} pier_open_options;

#define PIER_OPEN_OPTIONS_VERSION 2
#define PIER_OPEN_OPTIONS_INIT { PIER_OPEN_OPTIONS_VERSION, PIER_DURABILITY_NORMAL, 0, NULL, 0, 0, NULL }

/**
 * Opens a store, creating the file if it does not exist.
 *
 * The file is left untouched when it is not a Pier store: garbage gives PIER_ENOTDB, an
 * SQLite database of another application gives PIER_ENOTDB, a store written by a newer
 * Pier gives PIER_EVERSION. An older store is migrated forward in one transaction.
 *
 * @param out_db   receives the handle; release it with pier_db_free. NULL on failure.
 * @param path     file path, NUL-terminated UTF-8.
 * @param options  NULL for the defaults.
 * An encrypted file opened without options->key, or with the wrong passphrase or key,
 * gives PIER_EKEY (the message says when the file is encrypted); a plain file opened with
 * a key gives PIER_EKEY too. A damaged key header gives PIER_ECORRUPT. None of these
 * modifies the file.
 *
 * @return PIER_OK, PIER_EINVALID, PIER_ENOTFOUND, PIER_ENOTDB, PIER_EVERSION, PIER_EIO, PIER_EBUSY,
 *         PIER_EKEY, PIER_ECORRUPT.
 */
int pier_db_open(pier_db **out_db, const char *path, const pier_open_options *options);

/* ---------------------------------------------------------------------------------- */
/* Encryption at rest                                                                   */
/* ---------------------------------------------------------------------------------- */

/*
 * Every page of an encrypted store, its WAL and its journal is encrypted with
 * AES-256-GCM under a random data key; the data key is wrapped by the passphrase (PBKDF2)
 * or raw key and kept in a 4096-byte header inside the file. A page that fails
 * authentication (a modified byte) is PIER_ECORRUPT, never wrong data.
 */

/**
 * Changes the passphrase or key of an open encrypted store: the data key is rewrapped,
 * no page is rewritten, other connections may stay open. A crash leaves either the old
 * or the new key working.
 * @return PIER_OK, PIER_EINVALID (bad key struct), PIER_ESTATE (store not encrypted),
 *         PIER_EREADONLY, PIER_EKEY, PIER_ECORRUPT (damaged key header), PIER_EBUSY, PIER_EIO,
 *         PIER_ECLOSED.
 */
int pier_db_change_key(pier_db *db, const pier_key *new_key);

/**
 * Rotates the data key of an open encrypted store: every page is rewritten under a new
 * random key into a temporary file beside the store, synced and renamed over it; a crash
 * leaves either the old file (old key) or the new one. The handle is closed and reopened
 * on the new file. No other connection may have the store open.
 * @param new_key the passphrase or key to wrap the new data key with; NULL keeps the current one.
 * If the rewrite succeeds but reopening fails, the error says "rekeyed": from then on
 * only the new key opens the file.
 * @return PIER_OK, PIER_EINVALID, PIER_ESTATE (not encrypted, or in a transaction),
 *         PIER_EBUSY (another connection has it open), PIER_EKEY, PIER_ECORRUPT (a page fails
 *         authentication while copying), PIER_EIO, PIER_ECLOSED.
 */
int pier_db_rekey(pier_db *db, const pier_key *new_key);

/**
 * Encrypts a plain store (no handle may have it open) to dest, which must not exist, or in
 * place when dest is NULL (through a temporary file and a rename: crash-safe).
 * @return PIER_OK, PIER_EINVALID (bad key, dest exists, already encrypted), PIER_ENOTFOUND,
 *         PIER_EBUSY, PIER_EIO.
 */
int pier_encrypt_file(const char *path, const char *dest, const pier_key *key);

/**
 * Writes a plain copy of an encrypted store to dest, which must not exist. The encrypted
 * file is not modified.
 * @return PIER_OK, PIER_EINVALID, PIER_EKEY, PIER_ECORRUPT, PIER_ENOTFOUND, PIER_EIO.
 */
int pier_decrypt_file(const char *path, const pier_key *key, const char *dest);

/**
 * Says whether a file is encrypted, without the key, as JSON:
 * {"encrypted":false} or {"encrypted":true,"cipher":"AES-256-GCM","kdf":"PBKDF2-HMAC-SHA256",
 * "iterations":600000,"page_size":4096,"reserve_bytes":28,"header_bytes":4096,
 * "key_generation":1,"interrupted_key_change":false}.
 * @param out_json receives the object; free with pier_free.
 * @return PIER_OK, PIER_EINVALID, PIER_ENOTFOUND, PIER_ECORRUPT (damaged key header).
 */
int pier_encryption_info(const char *path, char **out_json, size_t *out_len);

/**
 * Closes the store: an open transaction is rolled back, the file is closed. The handle
 * stays valid and every later call on it returns PIER_ECLOSED; release it with pier_db_free.
 * @return PIER_OK (also when already closed), PIER_EINVALID if db is NULL, PIER_ESTATE
 *         from a callback of a call on this handle (pier_sync's transport, progress or
 *         resolver): the store stays open; close it after that call returns.
 */
int pier_db_close(pier_db *db);

/**
 * Closes the store if it is open and releases the handle. Accepts NULL.
 * From a callback of a call on this handle (pier_sync's transport, progress or resolver)
 * it does nothing: the handle stays open and valid, and must be freed after that call
 * returns. It sets pier_errmsg() (code PIER_ESTATE) and logs a PIER_LOG_WARN line.
 */
void pier_db_free(pier_db *db);

/**
 * Stores a record: body (a JSON object) becomes the record id of collection, replacing any
 * earlier body. The write is tracked for sync (pending until the server acknowledges it).
 * A new record gets the store's default scope; an existing one keeps its scope.
 *
 * @param collection 1..PIER_MAX_COLLECTION_BYTES of UTF-8.
 * @param id         1..PIER_MAX_ID_BYTES of UTF-8 (pier_uuid7 makes good ids).
 * @param body       JSON object text, body_len bytes (no NUL needed); copied.
 * @return PIER_OK; PIER_EINVALID (bad name or id, not a JSON object, over the body limit),
 *         PIER_EREADONLY, PIER_ECLOSED, PIER_EBUSY, PIER_EIO.
 */
int pier_db_put(pier_db *db, const char *collection, const char *id, const char *body, size_t body_len);

/**
 * pier_db_put with an explicit scope (the partition the record belongs to: a user, a
 * team, a tenant). The record moves to that scope.
 * @param scope 1..PIER_MAX_SCOPE_BYTES of UTF-8.
 * @return as pier_db_put.
 */
int pier_db_put_scoped(pier_db *db, const char *collection, const char *id, const char *scope,
                       const char *body, size_t body_len);

/**
 * Stores count records of one collection atomically: all are written or none is.
 * @param ids         count record ids.
 * @param bodies      count JSON object texts.
 * @param body_lens   count lengths, one per body.
 * @return as pier_db_put; pier_errmsg() names the index of the first bad record.
 */
int pier_db_put_many(pier_db *db, const char *collection, const char *const *ids,
                     const char *const *bodies, const size_t *body_lens, size_t count);

/**
 * Applies a JSON merge patch (RFC 7396) to a live record: each member of patch replaces
 * the record's member of that name, a null member removes it, nested objects merge.
 * @param patch JSON object text, patch_len bytes.
 * @return PIER_OK; PIER_ENOTFOUND if there is no live record; PIER_EINVALID; PIER_ELIMIT if
 *         the patched body would exceed the body limit (nothing is written).
 */
int pier_db_patch(pier_db *db, const char *collection, const char *id, const char *patch, size_t patch_len);

/**
 * Reads a live record's body.
 * @param out_body receives the JSON text, NUL-terminated; free with pier_free. NULL on failure.
 * @param out_len  receives its length without the NUL; may be NULL.
 * @return PIER_OK, PIER_ENOTFOUND, PIER_EINVALID, PIER_ECLOSED.
 */
int pier_db_get(pier_db *db, char **out_body, size_t *out_len, const char *collection, const char *id);

/**
 * Deletes a live record. A record the server knows stays as a tombstone until the server
 * acknowledges the delete; one never pushed is removed outright and never reaches it (one
 * in a pushed batch whose reply has not arrived becomes a tombstone: the server may have it).
 * @return PIER_OK, PIER_ENOTFOUND, PIER_EINVALID, PIER_EREADONLY, PIER_ECLOSED.
 */
int pier_db_delete(pier_db *db, const char *collection, const char *id);

/**
 * Lists live records of a collection in id order, a page at a time.
 * @param out_json receives a JSON array of {"id": "...", "body": {...}}; free with pier_free.
 * @param out_len  receives its length; may be NULL.
 * @param after_id list records whose id sorts after this one; NULL or "" from the start.
 *                 Pass the last id of a page to get the next.
 * @param limit    most records to return (SIZE_MAX: no limit).
 * @return PIER_OK, PIER_EINVALID, PIER_ECLOSED.
 */
int pier_db_list(pier_db *db, char **out_json, size_t *out_len, const char *collection,
                 const char *after_id, size_t limit);

/**
 * Counts the live records of a collection.
 * @return PIER_OK, PIER_EINVALID, PIER_ECLOSED.
 */
int pier_db_count(pier_db *db, int64_t *out_count, const char *collection);

/**
 * Runs one read-only SQL statement and returns its rows.
 *
 * The view `records(collection, id, body, scope, sync_state, version, hlc, local_seq)`
 * holds the live records; sync_state is 'synced', 'pending', 'conflicted' or 'rejected'.
 * Use json_extract(body, '$.field') to reach into bodies (it uses indexes made by
 * pier_db_create_index). Statements that write, PRAGMA, ATTACH and more than one
 * statement are refused with PIER_EREADONLY or PIER_EINVALID.
 *
 * @param out_json    receives a JSON array with one object per row, keyed by column name;
 *                    columns read straight from `body` are embedded as JSON objects, blobs
 *                    as base64 strings. Free with pier_free.
 * @param out_len     receives its length; may be NULL.
 * @param sql         one statement, NUL-terminated UTF-8, with ?1, ?2 ... parameters.
 * @param params_json a JSON array of parameter values (null, numbers, strings, booleans;
 *                    objects and arrays bind as JSON text), or NULL when there are none.
 * @return PIER_OK, PIER_EINVALID (does not compile, wrong parameter count, bad params),
 *         PIER_EREADONLY, PIER_ECLOSED.
 */
int pier_db_query(pier_db *db, char **out_json, size_t *out_len, const char *sql, const char *params_json);

/**
 * Creates (if missing) an index on a JSON field of one collection's live records, so
 * that queries filtering with json_extract(body, '$.field') on that collection use it.
 * @param field a dotted path of identifiers: "city", "address.city".
 * @return PIER_OK, PIER_EINVALID, PIER_EREADONLY, PIER_ECLOSED.
 */
int pier_db_create_index(pier_db *db, const char *collection, const char *field);

/**
 * Opens a transaction on the handle: later writes are committed together by
 * pier_db_commit or discarded by pier_db_rollback. Transactions do not nest. A write that
 * fails inside a transaction leaves the transaction open and unchanged by that write.
 * @return PIER_OK, PIER_ESTATE (one is already open), PIER_EBUSY, PIER_EREADONLY, PIER_ECLOSED.
 */
int pier_db_begin(pier_db *db);

/** Commits the open transaction. @return PIER_OK, PIER_ESTATE (none open), PIER_EIO, PIER_ECLOSED. */
int pier_db_commit(pier_db *db);

/** Discards the open transaction. @return PIER_OK, PIER_ESTATE (none open), PIER_ECLOSED. */
int pier_db_rollback(pier_db *db);

/* Record sync states (pier_db_state). */
#define PIER_STATE_SYNCED     0 /**< The server has this exact version. */
#define PIER_STATE_PENDING    1 /**< A local change waits to be pushed or acknowledged. */
#define PIER_STATE_CONFLICTED 2 /**< A conflict waits for a resolution. */
#define PIER_STATE_REJECTED   3 /**< The server refused the last push of this record. */

/**
 * The sync state of a record (a deleted record awaiting acknowledgement counts).
 * @param out_state receives a PIER_STATE_* value.
 * @return PIER_OK, PIER_ENOTFOUND, PIER_EINVALID, PIER_ECLOSED.
 */
int pier_db_state(pier_db *db, int *out_state, const char *collection, const char *id);

/**
 * All sync metadata of a record, live or tombstone, as a JSON object: collection, id,
 * body, scope, is_from_server, is_modified, is_active, base_version, hlc, local_seq,
 * changed_fields (array or null), server_body, server_version, sync_state.
 * @param out_json receives the object; free with pier_free.
 * @return PIER_OK, PIER_ENOTFOUND, PIER_EINVALID, PIER_ECLOSED.
 */
int pier_db_metadata(pier_db *db, char **out_json, size_t *out_len, const char *collection, const char *id);

/**
 * The store's client id: a random UUID fixed when the store was created.
 * @param out_id receives it, NUL-terminated; free with pier_free.
 * @return PIER_OK, PIER_EINVALID, PIER_ECLOSED.
 */
int pier_db_client_id(pier_db *db, char **out_id);

/**
 * A summary of the store as JSON (what `pier inspect` prints): path, schema_version,
 * client_id, pull_cursor, pending, conflicts, and per collection its records, pending
 * changes, conflicts and tombstones.
 * @param out_json receives the object; free with pier_free.
 * @return PIER_OK, PIER_EINVALID, PIER_ECLOSED.
 */
int pier_db_info(pier_db *db, char **out_json, size_t *out_len);

/* ---------------------------------------------------------------------------------- */
/* Collection sync modes                                                                */
/* ---------------------------------------------------------------------------------- */

#define PIER_MODE_TWO_WAY    0 /**< Pushed and pulled (the default). */
#define PIER_MODE_PULL_ONLY  1 /**< Reference data: pulled only; local writes fail with PIER_EREADONLY. */
#define PIER_MODE_PUSH_ONLY  2 /**< Telemetry: pushed only, never pulled. */
#define PIER_MODE_LOCAL_ONLY 3 /**< Never synced: writes are not tracked and never leave the device. */

/**
 * Sets how a collection takes part in sync. The setting is stored in the store.
 * @param mode             a PIER_MODE_* value.
 * @param purge_after_push for PIER_MODE_PUSH_ONLY: nonzero removes records locally once
 *                         the server has acknowledged them; must be 0 for other modes.
 * @return PIER_OK, PIER_EINVALID, PIER_EREADONLY, PIER_ECLOSED.
 */
int pier_db_set_collection_mode(pier_db *db, const char *collection, int mode, int purge_after_push);

/* ---------------------------------------------------------------------------------- */
/* Sync server (sans-I/O handler over an SQLite master store)                           */
/* ---------------------------------------------------------------------------------- */

/** A sync server: a handler and its master store. Opaque. Safe to use from several threads at once. */
typedef struct pier_server pier_server;

/** Who is syncing, as the caller verified it. Initialise with PIER_IDENTITY_INIT. */
typedef struct pier_identity {
    unsigned int version;              /**< PIER_IDENTITY_VERSION. */
    const char *user;                  /**< The user; NULL = "local". */
    const char *const *read_scopes;    /**< Scopes the user may read; NULL (with a count of 0) = every scope. */
    size_t read_scope_count;           /**< 0..PIER_MAX_IDENTITY_SCOPES; NULL read_scopes with a count > 0 is PIER_EINVALID. */
    const char *const *write_scopes;   /**< Scopes the user may write; NULL (with a count of 0) = every scope. */
    size_t write_scope_count;          /**< 0..PIER_MAX_IDENTITY_SCOPES; NULL write_scopes with a count > 0 is PIER_EINVALID. */
    int is_admin;                      /**< Nonzero: may read the business log and conflicts. */
} pier_identity;

#define PIER_IDENTITY_VERSION 1
/** The longest scope list a pier_identity may carry; a longer one is PIER_EINVALID. */
#define PIER_MAX_IDENTITY_SCOPES 65536
#define PIER_IDENTITY_INIT { PIER_IDENTITY_VERSION, NULL, NULL, 0, NULL, 0, 0 }

/**
 * Opens a sync server on an SQLite master file (created if missing).
 * @param out_server  receives the handle; release it with pier_server_free.
 * @param path        the master store file.
 * @param config_json NULL for the defaults, or the configuration as JSON: collection
 *                    policies (last_write_wins, arrival_wins, first_write_wins, client_wins,
 *                    merge_fields, manual, custom), update/delete rules, limits, drift
 *                    bound, tombstone horizon. docs/C-API.md shows the format. Unknown keys
 *                    are PIER_EINVALID.
 * @return PIER_OK, PIER_EINVALID, PIER_ENOTDB, PIER_EVERSION, PIER_EIO.
 */
int pier_server_open(pier_server **out_server, const char *path, const char *config_json);

/**
 * Closes the master store; later calls return PIER_ECLOSED.
 * @return PIER_OK, PIER_EINVALID, PIER_ESTATE from this server's resolver (the server
 *         stays open; close it after pier_server_handle or pier_sync returns).
 */
int pier_server_close(pier_server *server);

/**
 * Closes the server if open and releases the handle. Accepts NULL.
 * From this server's resolver it does nothing: the handle stays open and valid, and must
 * be freed after pier_server_handle or pier_sync returns. It sets pier_errmsg() (code
 * PIER_ESTATE) and logs a PIER_LOG_WARN line.
 */
void pier_server_free(pier_server *server);

/**
 * Handles one request frame (what a client's transport delivered) for a verified
 * identity, and returns the response frame to send back. A malformed or refused request
 * still gets a frame: an error message the client understands.
 * @param out_frame receives the response frame; free with pier_free.
 * @param identity  NULL for a trusted local identity with every scope.
 * @return PIER_OK (with a response or error frame), PIER_EINVALID (also a bad identity:
 *         a NULL scope list with a count > 0, a count over PIER_MAX_IDENTITY_SCOPES),
 *         PIER_ECLOSED, PIER_ESTATE from this server's resolver.
 */
int pier_server_handle(pier_server *server, unsigned char **out_frame, size_t *out_len,
                       const unsigned char *request, size_t request_len, const pier_identity *identity);

/**
 * Queries the business log: one entry per change the server processed.
 * @param out_json    receives a JSON array of entries (seq, server_time, client_id, user,
 *                    collection, record_id, op, outcome, base_version, new_version,
 *                    client_hlc, detail); free with pier_free.
 * @param filter_json NULL for the first 100 entries, or a JSON object with any of
 *                    collection, record_id, client_id, outcome, since, until (Unix ms),
 *                    after_seq (paging) and limit.
 * @return PIER_OK, PIER_EINVALID, PIER_ECLOSED, PIER_ESTATE from this server's resolver.
 */
int pier_server_log(pier_server *server, char **out_json, size_t *out_len, const char *filter_json);

/**
 * Conflicts registered on the server, newest first, as a JSON array.
 * @param collection NULL for every collection.
 * @param open_only  nonzero hides resolved conflicts.
 * @return PIER_OK, PIER_EINVALID, PIER_ECLOSED, PIER_ESTATE from this server's resolver.
 */
int pier_server_conflicts(pier_server *server, char **out_json, size_t *out_len, const char *collection, int open_only);

/**
 * Purges tombstones every active client has pulled and that are older than the horizon.
 * Clients whose cursor is behind the purge are told to resync.
 * @param out_purged receives the number purged; may be NULL.
 * @param horizon_ms minimum tombstone age in ms; negative = the configured horizon.
 * @return PIER_OK, PIER_ECLOSED, PIER_EIO, PIER_ESTATE from this server's resolver.
 */
int pier_server_purge_tombstones(pier_server *server, int64_t *out_purged, int64_t horizon_ms);

/** What a custom resolver sees (policy "custom"). Bodies are borrowed for the call. */
typedef struct pier_resolver_input {
    unsigned int version;      /**< 1. */
    const char *collection;
    const char *id;
    const char *client_body;   /**< The pushed body; NULL when the client deletes. */
    size_t client_body_len;
    const char *server_body;   /**< The server copy; NULL when deleted on the server. */
    size_t server_body_len;
    int64_t base_version;
    int64_t server_version;
    int64_t client_hlc;
    int64_t server_hlc;
    const char *client_id;
    const char *user;
} pier_resolver_input;

#define PIER_DECIDE_KEEP_BODY   0 /**< Keep *out_body (the client's, the server's or a new JSON object). */
#define PIER_DECIDE_KEEP_SERVER 1 /**< Keep the server copy; the change is superseded. */
#define PIER_DECIDE_REJECT      2 /**< Refuse the change (reason "custom"). */
#define PIER_DECIDE_MANUAL      3 /**< Register a conflict for the user to resolve. */

/**
 * A server-side resolver: business rules such as "cancelled beats completed".
 * Runs on the thread calling pier_server_handle, inside the batch's transaction: it must
 * not call back into this server: every pier_server_* call on it, and pier_sync with it as
 * options->server, returns PIER_ESTATE and changes nothing (pier_server_free does nothing).
 * @param out_body for PIER_DECIDE_KEEP_BODY: the body to keep, owned by the callback and
 *                 valid until the callback is called again or pier_server_handle returns.
 * @return a PIER_DECIDE_* value; anything else is treated as PIER_DECIDE_MANUAL.
 */
typedef int (*pier_resolver_cb)(void *ctx, const pier_resolver_input *input, const char **out_body, size_t *out_len);

/**
 * Installs the resolver of a collection whose policy is "custom" (NULL removes it; a
 * custom collection without a resolver registers conflicts).
 * @return PIER_OK, PIER_EINVALID, PIER_ECLOSED, PIER_ESTATE from this server's resolver.
 */
int pier_server_set_resolver(pier_server *server, const char *collection, pier_resolver_cb callback, void *ctx);

/* ---------------------------------------------------------------------------------- */
/* Client sync                                                                          */
/* ---------------------------------------------------------------------------------- */

/**
 * A host transport: send request_len bytes to the sync server (POST /v1/sync or the
 * app's own channel) and return the response frame.
 * @param out_response the response bytes, owned by the callback and valid until it is
 *                     called again or pier_sync returns.
 * @return PIER_OK, or a negative code (PIER_ENETWORK for a failed link) that ends the
 *         sync with that code; the batch in flight is sent again by the next sync.
 * Runs on the thread that called pier_sync; it must not call Pier functions on the
 * handle being synced (they return PIER_ESTATE).
 */
typedef int (*pier_transport_cb)(void *ctx, const unsigned char *request, size_t request_len,
                                 const unsigned char **out_response, size_t *out_response_len);

/** Progress after each round trip. */
typedef struct pier_sync_progress {
    unsigned int version;  /**< 1. */
    int64_t round_trips;
    int64_t pushed;
    int64_t pending;       /**< Local changes still to push. */
    int64_t pulled;
    int pulling;           /**< Nonzero while the server has more to send. */
} pier_sync_progress;

/** Called after each round trip on the thread that called pier_sync; must not call Pier
 *  functions on the handle being synced (they return PIER_ESTATE). */
typedef void (*pier_progress_cb)(void *ctx, const pier_sync_progress *progress);

/** A conflict waiting on this device. Strings are borrowed for the call. */
typedef struct pier_conflict {
    unsigned int version;      /**< 1. */
    const char *conflict_id;
    const char *collection;
    const char *id;
    const char *local_body;    /**< NULL when this device deleted the record. */
    const char *server_body;   /**< NULL when the server deleted it. */
    const char *base_body;     /**< The server copy the local edit was based on; may be NULL. */
    int64_t base_version;
    int64_t server_version;
} pier_conflict;

#define PIER_RESOLVE_LEAVE      -1 /**< (Resolver callbacks only) leave the conflict for the user. */
#define PIER_RESOLVE_KEEP_LOCAL  0 /**< Keep this device's version. */
#define PIER_RESOLVE_KEEP_SERVER 1 /**< Take the server's version. */
#define PIER_RESOLVE_MERGED      2 /**< Keep a merged body given with the resolution. */

/**
 * A client-side resolver that settles incoming conflicts during pier_sync. Runs after the
 * sync applied a response, on the thread that called pier_sync. It must not call Pier
 * functions on the handle being synced (they return PIER_ESTATE); resolutions it returns
 * are pushed by the same pier_sync.
 * @param out_body for PIER_RESOLVE_MERGED: the merged JSON object, valid until the
 *                 callback returns to Pier.
 * @return a PIER_RESOLVE_* value.
 */
typedef int (*pier_conflict_cb)(void *ctx, const pier_conflict *conflict, const char **out_body, size_t *out_len);

/**
 * Options of pier_sync. Initialise with PIER_SYNC_OPTIONS_INIT and set exactly one
 * transport: server (in-process), transport (a host callback) or url (the built-in HTTP
 * transport). Fields are only ever appended; version says which ones the caller knows.
 */
typedef struct pier_sync_options {
    unsigned int version;              /**< PIER_SYNC_OPTIONS_VERSION (1 is still accepted: no HTTP fields). */
    pier_server *server;               /**< In-process transport into this server, or NULL. */
    const pier_identity *identity;     /**< With server: who syncs; NULL = trusted local. */
    pier_transport_cb transport;       /**< Host transport, or NULL. */
    void *transport_ctx;
    size_t max_batch_changes;          /**< 0 = 500. */
    size_t max_batch_bytes;            /**< 0 = 1 MiB. */
    unsigned int pull_max_records;     /**< 0 = 1000 per page. */
    unsigned int pull_max_bytes;       /**< 0 = 1 MiB per page. */
    int block_only_conflicted;         /**< Nonzero: unresolved conflicts block only their records. */
    pier_progress_cb progress;         /**< May be NULL. */
    void *progress_ctx;
    pier_conflict_cb resolver;         /**< May be NULL: conflicts wait for pier_db_resolve. */
    void *resolver_ctx;
    /* Version 2: the built-in HTTP(S) transport (libcurl). */
    const char *url;                   /**< Base URL of a Pier server ("https://host[:port][/prefix]");
                                            each round trip is POST <url>/v1/sync. Copied. Or NULL. */
    const char *token;                 /**< With url: sent as "Authorization: Bearer <token>"; may be NULL. */
    const char *ca_file;               /**< With url: PEM CA certificates to verify the server with
                                            instead of the system's; NULL = the system's. */
    unsigned int connect_timeout_ms;   /**< 0 = 10 s. */
    unsigned int timeout_ms;           /**< Per request, first byte sent to last received; 0 = 60 s. */
    unsigned int max_attempts;         /**< Tries per round trip, the first included; 0 = 5 (4 retries),
                                            1 = never retry. */
    unsigned int retry_base_delay_ms;  /**< Backoff ceiling of the first retry; 0 = 200 ms. */
    unsigned int retry_max_delay_ms;   /**< Longest wait between tries (caps Retry-After too); 0 = 10 s. */
    size_t max_response_bytes;         /**< Larger responses are refused (PIER_EPROTOCOL); 0 = 80 MiB. */
} pier_sync_options;

#define PIER_SYNC_OPTIONS_VERSION 2
#define PIER_SYNC_OPTIONS_INIT { PIER_SYNC_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, \
                                 NULL, NULL, NULL, 0, 0, 0, 0, 0, 0 }

/** What a sync did. Set version (PIER_SYNC_REPORT_INIT) before passing it. */
typedef struct pier_sync_report {
    unsigned int version;      /**< PIER_SYNC_REPORT_VERSION. */
    int64_t pushed;
    int64_t applied;
    int64_t merged;
    int64_t superseded;
    int64_t rejected;
    int64_t conflicts;
    int64_t pulled;
    int64_t bytes_sent;        /**< Frame bytes on the wire... */
    int64_t bytes_sent_raw;    /**< ...and before compression. */
    int64_t bytes_received;
    int64_t bytes_received_raw;
    int64_t round_trips;
    double duration_ms;
    int resynced;              /**< The server asked for a full re-pull. */
    int replayed_batch;        /**< A batch whose reply was lost was sent again. */
} pier_sync_report;

#define PIER_SYNC_REPORT_VERSION 1
#define PIER_SYNC_REPORT_INIT { PIER_SYNC_REPORT_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0 }

/**
 * Syncs the store: pushes every pending change in batches and pulls until the server has
 * nothing more. Each response is applied in one local transaction, so an interrupted sync
 * resumes where it stopped and never loses a local change.
 *
 * With options->url, the built-in HTTP transport POSTs each request frame to
 * <url>/v1/sync (docs/PROTOCOL.md section 12). During a long pull the request for the
 * next page is sent from a helper thread while the calling thread applies the page
 * before it (the two overlap; one request is out at a time); no callback runs on the
 * helper, and its log lines reach the log callback on the calling thread. When the page
 * cannot be applied, the request sent ahead is cancelled (its retries stop, a transfer in
 * progress is aborted within about a second) and its answer dropped. Connection failures,
 * timeouts and the statuses 429, 500, 502, 503 and 504 are retried with exponential
 * backoff and full jitter, waiting at least the server's Retry-After (up to
 * retry_max_delay_ms); a resent batch is answered from the server's stored results, so
 * nothing applies twice. Other 4xx statuses are not retried. The server's error frame
 * gives the code (PIER_EAUTH, PIER_EFORBIDDEN, PIER_ELIMIT, ...); a body that is not a
 * frame is mapped from the status (401 PIER_EAUTH, 403 PIER_EFORBIDDEN, 413 PIER_ELIMIT,
 * 400/415 PIER_EPROTOCOL). When the retries run out the result is PIER_ENETWORK and the
 * changes stay pending.
 * @param out_report receives the report (also on failure, with what was done); may be NULL.
 * @return PIER_OK; PIER_ECONFLICT (unresolved conflicts block the sync; pier_errmsg lists
 *         them); PIER_ENETWORK or the transport's code; PIER_EPROTOCOL; PIER_EAUTH;
 *         PIER_EFORBIDDEN; PIER_ELIMIT; PIER_ESTATE (a transaction is open on the handle,
 *         or options->server is running its resolver on this thread);
 *         PIER_EINVALID (no options, a version of 0, not exactly one of server, transport
 *         and url, a url that is not http:// or https://); PIER_ECLOSED.
 */
int pier_sync(pier_db *db, pier_sync_report *out_report, const pier_sync_options *options);

/**
 * The conflicts waiting on this device, as a JSON array of objects: conflict_id,
 * collection, id, local_body, server_body, base_body (objects or null), local_deleted,
 * server_deleted, base_version, server_version.
 * @return PIER_OK, PIER_ECLOSED.
 */
int pier_db_conflicts(pier_db *db, char **out_json, size_t *out_len);

/**
 * Settles a conflict. Keeping the local version or a merged body makes a new local write
 * based on the server's version, pushed by the next sync.
 * @param resolution PIER_RESOLVE_KEEP_LOCAL, PIER_RESOLVE_KEEP_SERVER or PIER_RESOLVE_MERGED.
 * @param body       with PIER_RESOLVE_MERGED: the merged JSON object; otherwise NULL.
 * @return PIER_OK, PIER_ENOTFOUND (no such conflict), PIER_EINVALID, PIER_ECLOSED.
 */
int pier_db_resolve(pier_db *db, const char *conflict_id, int resolution, const char *body, size_t body_len);

#ifdef __cplusplus
}
#endif

#endif /* PIER_H */
