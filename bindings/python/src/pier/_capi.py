"""1:1 ctypes declarations of include/pier.h.

Every function of the header is declared here with its C prototype as a comment and
both ``argtypes`` and ``restype`` set. Nothing here is Pythonic on purpose: the classes
in ``database.py`` and ``errors.py`` build on it.

Out-buffers (``char **``) are declared as ``POINTER(c_void_p)`` so ctypes never turns
them into ``bytes`` behind our back (which would leak the C buffer); the caller copies
them with ``ctypes.string_at`` and releases them with ``pier_free``. Functions that
return static strings use ``c_char_p``: those are never freed.
"""

from __future__ import annotations

from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_double,
    c_int,
    c_int64,
    c_size_t,
    c_uint,
    c_void_p,
)

from ._lib import library as _library

# ------------------------------------------------------------------------------------
# Version
# ------------------------------------------------------------------------------------

PIER_VERSION_MAJOR = 0
PIER_VERSION_MINOR = 1
PIER_VERSION_PATCH = 0
PIER_VERSION_STRING = "0.1.0"
PIER_VERSION_NUMBER = PIER_VERSION_MAJOR * 10000 + PIER_VERSION_MINOR * 100 + PIER_VERSION_PATCH

# const char *pier_version(void);
pier_version = _library.pier_version
pier_version.argtypes = []
pier_version.restype = c_char_p

# int pier_version_number(void);
pier_version_number = _library.pier_version_number
pier_version_number.argtypes = []
pier_version_number.restype = c_int

# ------------------------------------------------------------------------------------
# Status codes
# ------------------------------------------------------------------------------------

PIER_OK = 0
PIER_ERROR = -1
PIER_EINVALID = -2
PIER_ENOTFOUND = -3
PIER_ECLOSED = -4
PIER_ENOTDB = -5
PIER_EVERSION = -6
PIER_EREADONLY = -7
PIER_ESTATE = -8
PIER_EBUSY = -9
PIER_EIO = -10
PIER_ENOMEM = -11
PIER_ECORRUPT = -12
PIER_EKEY = -13
PIER_ECONFLICT = -14
PIER_EPROTOCOL = -15
PIER_ENETWORK = -16
PIER_EAUTH = -17
PIER_EFORBIDDEN = -18
PIER_ELIMIT = -19
PIER_ECANCELLED = -20

# const char *pier_errmsg(void);
pier_errmsg = _library.pier_errmsg
pier_errmsg.argtypes = []
pier_errmsg.restype = c_char_p

# const char *pier_errstr(int code);
pier_errstr = _library.pier_errstr
pier_errstr.argtypes = [c_int]
pier_errstr.restype = c_char_p

# const char *pier_errname(int code);
pier_errname = _library.pier_errname
pier_errname.argtypes = [c_int]
pier_errname.restype = c_char_p

# void pier_free(void *buffer);
pier_free = _library.pier_free
pier_free.argtypes = [c_void_p]
pier_free.restype = None

# ------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------

PIER_LOG_DEBUG = 0
PIER_LOG_INFO = 1
PIER_LOG_WARN = 2
PIER_LOG_ERROR = 3

# typedef void (*pier_log_cb)(void *ctx, int level, const char *message);
pier_log_cb = CFUNCTYPE(None, c_void_p, c_int, c_char_p)

# int pier_log_set_callback(pier_log_cb callback, void *ctx, int min_level);
pier_log_set_callback = _library.pier_log_set_callback
pier_log_set_callback.argtypes = [pier_log_cb, c_void_p, c_int]
pier_log_set_callback.restype = c_int

# ------------------------------------------------------------------------------------
# Ids
# ------------------------------------------------------------------------------------

PIER_UUID_BUFFER_SIZE = 37

# int pier_uuid7(char *out);
pier_uuid7 = _library.pier_uuid7
pier_uuid7.argtypes = [POINTER(c_char)]
pier_uuid7.restype = c_int

# ------------------------------------------------------------------------------------
# Local store
# ------------------------------------------------------------------------------------


class pier_db(Structure):
    """typedef struct pier_db pier_db;  (opaque)"""


pier_db_p = POINTER(pier_db)

PIER_MAX_COLLECTION_BYTES = 128
PIER_MAX_ID_BYTES = 256
PIER_MAX_SCOPE_BYTES = 256
PIER_DEFAULT_MAX_BODY_BYTES = 1048576
PIER_MAX_BODY_BYTES_CEILING = 67108864

PIER_DURABILITY_NORMAL = 0
PIER_DURABILITY_FULL = 1

PIER_OPEN_READONLY = 0x1
PIER_OPEN_MUST_EXIST = 0x2

PIER_DEFAULT_KDF_ITERATIONS = 600000
PIER_MIN_KDF_ITERATIONS = 1000

PIER_KEY_VERSION = 1


class pier_key(Structure):
    """typedef struct pier_key { ... } pier_key;

    Build it with ``key_init()`` (PIER_KEY_INIT).
    """

    _fields_ = [
        ("version", c_uint),  # unsigned int version;
        ("passphrase", c_char_p),  # const char *passphrase;
        ("raw_key", c_void_p),  # const unsigned char *raw_key;  (32 bytes, may contain NUL)
        ("raw_key_len", c_size_t),  # size_t raw_key_len;
        ("kdf_iterations", c_uint),  # unsigned int kdf_iterations;
    ]


def key_init() -> pier_key:
    """PIER_KEY_INIT: { PIER_KEY_VERSION, NULL, NULL, 0, 0 }"""
    return pier_key(PIER_KEY_VERSION, None, None, 0, 0)


PIER_OPEN_OPTIONS_VERSION = 2


class pier_open_options(Structure):
    """typedef struct pier_open_options { ... } pier_open_options;

    Build it with ``open_options_init()`` (PIER_OPEN_OPTIONS_INIT).
    """

    _fields_ = [
        ("version", c_uint),  # unsigned int version;
        ("durability", c_int),  # int durability;
        ("flags", c_uint),  # unsigned int flags;
        ("default_scope", c_char_p),  # const char *default_scope;
        ("max_body_bytes", c_size_t),  # size_t max_body_bytes;
        ("busy_timeout_ms", c_int),  # int busy_timeout_ms;
        ("key", POINTER(pier_key)),  # const pier_key *key;
    ]


def open_options_init() -> pier_open_options:
    """PIER_OPEN_OPTIONS_INIT: { PIER_OPEN_OPTIONS_VERSION, PIER_DURABILITY_NORMAL, 0, NULL, 0, 0, NULL }"""
    return pier_open_options(PIER_OPEN_OPTIONS_VERSION, PIER_DURABILITY_NORMAL, 0, None, 0, 0, None)


# int pier_db_open(pier_db **out_db, const char *path, const pier_open_options *options);
pier_db_open = _library.pier_db_open
pier_db_open.argtypes = [POINTER(pier_db_p), c_char_p, POINTER(pier_open_options)]
pier_db_open.restype = c_int

# ------------------------------------------------------------------------------------
# Encryption at rest
# ------------------------------------------------------------------------------------

# int pier_db_change_key(pier_db *db, const pier_key *new_key);
pier_db_change_key = _library.pier_db_change_key
pier_db_change_key.argtypes = [pier_db_p, POINTER(pier_key)]
pier_db_change_key.restype = c_int

# int pier_db_rekey(pier_db *db, const pier_key *new_key);
pier_db_rekey = _library.pier_db_rekey
pier_db_rekey.argtypes = [pier_db_p, POINTER(pier_key)]
pier_db_rekey.restype = c_int

# int pier_encrypt_file(const char *path, const char *dest, const pier_key *key);
pier_encrypt_file = _library.pier_encrypt_file
pier_encrypt_file.argtypes = [c_char_p, c_char_p, POINTER(pier_key)]
pier_encrypt_file.restype = c_int

# int pier_decrypt_file(const char *path, const pier_key *key, const char *dest);
pier_decrypt_file = _library.pier_decrypt_file
pier_decrypt_file.argtypes = [c_char_p, POINTER(pier_key), c_char_p]
pier_decrypt_file.restype = c_int

# int pier_encryption_info(const char *path, char **out_json, size_t *out_len);
pier_encryption_info = _library.pier_encryption_info
pier_encryption_info.argtypes = [c_char_p, POINTER(c_void_p), POINTER(c_size_t)]
pier_encryption_info.restype = c_int

# int pier_db_close(pier_db *db);
pier_db_close = _library.pier_db_close
pier_db_close.argtypes = [pier_db_p]
pier_db_close.restype = c_int

# void pier_db_free(pier_db *db);
pier_db_free = _library.pier_db_free
pier_db_free.argtypes = [pier_db_p]
pier_db_free.restype = None

# int pier_db_put(pier_db *db, const char *collection, const char *id, const char *body, size_t body_len);
pier_db_put = _library.pier_db_put
pier_db_put.argtypes = [pier_db_p, c_char_p, c_char_p, c_char_p, c_size_t]
pier_db_put.restype = c_int

# int pier_db_put_scoped(pier_db *db, const char *collection, const char *id, const char *scope,
#                        const char *body, size_t body_len);
pier_db_put_scoped = _library.pier_db_put_scoped
pier_db_put_scoped.argtypes = [pier_db_p, c_char_p, c_char_p, c_char_p, c_char_p, c_size_t]
pier_db_put_scoped.restype = c_int

# int pier_db_put_many(pier_db *db, const char *collection, const char *const *ids,
#                      const char *const *bodies, const size_t *body_lens, size_t count);
pier_db_put_many = _library.pier_db_put_many
pier_db_put_many.argtypes = [pier_db_p, c_char_p, POINTER(c_char_p), POINTER(c_char_p), POINTER(c_size_t), c_size_t]
pier_db_put_many.restype = c_int

# int pier_db_patch(pier_db *db, const char *collection, const char *id, const char *patch, size_t patch_len);
pier_db_patch = _library.pier_db_patch
pier_db_patch.argtypes = [pier_db_p, c_char_p, c_char_p, c_char_p, c_size_t]
pier_db_patch.restype = c_int

# int pier_db_get(pier_db *db, char **out_body, size_t *out_len, const char *collection, const char *id);
pier_db_get = _library.pier_db_get
pier_db_get.argtypes = [pier_db_p, POINTER(c_void_p), POINTER(c_size_t), c_char_p, c_char_p]
pier_db_get.restype = c_int

# int pier_db_delete(pier_db *db, const char *collection, const char *id);
pier_db_delete = _library.pier_db_delete
pier_db_delete.argtypes = [pier_db_p, c_char_p, c_char_p]
pier_db_delete.restype = c_int

# int pier_db_list(pier_db *db, char **out_json, size_t *out_len, const char *collection,
#                  const char *after_id, size_t limit);
pier_db_list = _library.pier_db_list
pier_db_list.argtypes = [pier_db_p, POINTER(c_void_p), POINTER(c_size_t), c_char_p, c_char_p, c_size_t]
pier_db_list.restype = c_int

# int pier_db_count(pier_db *db, int64_t *out_count, const char *collection);
pier_db_count = _library.pier_db_count
pier_db_count.argtypes = [pier_db_p, POINTER(c_int64), c_char_p]
pier_db_count.restype = c_int

# int pier_db_query(pier_db *db, char **out_json, size_t *out_len, const char *sql, const char *params_json);
pier_db_query = _library.pier_db_query
pier_db_query.argtypes = [pier_db_p, POINTER(c_void_p), POINTER(c_size_t), c_char_p, c_char_p]
pier_db_query.restype = c_int

# int pier_db_create_index(pier_db *db, const char *collection, const char *field);
pier_db_create_index = _library.pier_db_create_index
pier_db_create_index.argtypes = [pier_db_p, c_char_p, c_char_p]
pier_db_create_index.restype = c_int

# int pier_db_begin(pier_db *db);
pier_db_begin = _library.pier_db_begin
pier_db_begin.argtypes = [pier_db_p]
pier_db_begin.restype = c_int

# int pier_db_commit(pier_db *db);
pier_db_commit = _library.pier_db_commit
pier_db_commit.argtypes = [pier_db_p]
pier_db_commit.restype = c_int

# int pier_db_rollback(pier_db *db);
pier_db_rollback = _library.pier_db_rollback
pier_db_rollback.argtypes = [pier_db_p]
pier_db_rollback.restype = c_int

PIER_STATE_SYNCED = 0
PIER_STATE_PENDING = 1
PIER_STATE_CONFLICTED = 2
PIER_STATE_REJECTED = 3

# int pier_db_state(pier_db *db, int *out_state, const char *collection, const char *id);
pier_db_state = _library.pier_db_state
pier_db_state.argtypes = [pier_db_p, POINTER(c_int), c_char_p, c_char_p]
pier_db_state.restype = c_int

# int pier_db_metadata(pier_db *db, char **out_json, size_t *out_len, const char *collection, const char *id);
pier_db_metadata = _library.pier_db_metadata
pier_db_metadata.argtypes = [pier_db_p, POINTER(c_void_p), POINTER(c_size_t), c_char_p, c_char_p]
pier_db_metadata.restype = c_int

# int pier_db_client_id(pier_db *db, char **out_id);
pier_db_client_id = _library.pier_db_client_id
pier_db_client_id.argtypes = [pier_db_p, POINTER(c_void_p)]
pier_db_client_id.restype = c_int

# int pier_db_info(pier_db *db, char **out_json, size_t *out_len);
pier_db_info = _library.pier_db_info
pier_db_info.argtypes = [pier_db_p, POINTER(c_void_p), POINTER(c_size_t)]
pier_db_info.restype = c_int

# ------------------------------------------------------------------------------------
# Collection sync modes
# ------------------------------------------------------------------------------------

PIER_MODE_TWO_WAY = 0
PIER_MODE_PULL_ONLY = 1
PIER_MODE_PUSH_ONLY = 2
PIER_MODE_LOCAL_ONLY = 3

# int pier_db_set_collection_mode(pier_db *db, const char *collection, int mode, int purge_after_push);
pier_db_set_collection_mode = _library.pier_db_set_collection_mode
pier_db_set_collection_mode.argtypes = [pier_db_p, c_char_p, c_int, c_int]
pier_db_set_collection_mode.restype = c_int

# ------------------------------------------------------------------------------------
# Sync server
# ------------------------------------------------------------------------------------


class pier_server(Structure):
    """typedef struct pier_server pier_server;  (opaque)"""


pier_server_p = POINTER(pier_server)

PIER_IDENTITY_VERSION = 1
PIER_MAX_IDENTITY_SCOPES = 65536


class pier_identity(Structure):
    """typedef struct pier_identity { ... } pier_identity;

    Build it with ``identity_init()`` (PIER_IDENTITY_INIT). The scope arrays are borrowed:
    keep them referenced for as long as C may read the struct.
    """

    _fields_ = [
        ("version", c_uint),  # unsigned int version;
        ("user", c_char_p),  # const char *user;
        ("read_scopes", POINTER(c_char_p)),  # const char *const *read_scopes;
        ("read_scope_count", c_size_t),  # size_t read_scope_count;
        ("write_scopes", POINTER(c_char_p)),  # const char *const *write_scopes;
        ("write_scope_count", c_size_t),  # size_t write_scope_count;
        ("is_admin", c_int),  # int is_admin;
    ]


def identity_init() -> pier_identity:
    """PIER_IDENTITY_INIT: { PIER_IDENTITY_VERSION, NULL, NULL, 0, NULL, 0, 0 }"""
    return pier_identity(PIER_IDENTITY_VERSION, None, None, 0, None, 0, 0)


# int pier_server_open(pier_server **out_server, const char *path, const char *config_json);
pier_server_open = _library.pier_server_open
pier_server_open.argtypes = [POINTER(pier_server_p), c_char_p, c_char_p]
pier_server_open.restype = c_int

# int pier_server_close(pier_server *server);
pier_server_close = _library.pier_server_close
pier_server_close.argtypes = [pier_server_p]
pier_server_close.restype = c_int

# void pier_server_free(pier_server *server);
pier_server_free = _library.pier_server_free
pier_server_free.argtypes = [pier_server_p]
pier_server_free.restype = None

# int pier_server_handle(pier_server *server, unsigned char **out_frame, size_t *out_len,
#                        const unsigned char *request, size_t request_len, const pier_identity *identity);
pier_server_handle = _library.pier_server_handle
pier_server_handle.argtypes = [pier_server_p, POINTER(c_void_p), POINTER(c_size_t), c_char_p, c_size_t, POINTER(pier_identity)]
pier_server_handle.restype = c_int

# int pier_server_log(pier_server *server, char **out_json, size_t *out_len, const char *filter_json);
pier_server_log = _library.pier_server_log
pier_server_log.argtypes = [pier_server_p, POINTER(c_void_p), POINTER(c_size_t), c_char_p]
pier_server_log.restype = c_int

# int pier_server_conflicts(pier_server *server, char **out_json, size_t *out_len, const char *collection, int open_only);
pier_server_conflicts = _library.pier_server_conflicts
pier_server_conflicts.argtypes = [pier_server_p, POINTER(c_void_p), POINTER(c_size_t), c_char_p, c_int]
pier_server_conflicts.restype = c_int

# int pier_server_purge_tombstones(pier_server *server, int64_t *out_purged, int64_t horizon_ms);
pier_server_purge_tombstones = _library.pier_server_purge_tombstones
pier_server_purge_tombstones.argtypes = [pier_server_p, POINTER(c_int64), c_int64]
pier_server_purge_tombstones.restype = c_int


class pier_resolver_input(Structure):
    """typedef struct pier_resolver_input { ... } pier_resolver_input;  (borrowed for the call)

    The bodies are ``(pointer, length)`` and not NUL-terminated, hence ``c_void_p``.
    """

    _fields_ = [
        ("version", c_uint),  # unsigned int version;
        ("collection", c_char_p),  # const char *collection;
        ("id", c_char_p),  # const char *id;
        ("client_body", c_void_p),  # const char *client_body;
        ("client_body_len", c_size_t),  # size_t client_body_len;
        ("server_body", c_void_p),  # const char *server_body;
        ("server_body_len", c_size_t),  # size_t server_body_len;
        ("base_version", c_int64),  # int64_t base_version;
        ("server_version", c_int64),  # int64_t server_version;
        ("client_hlc", c_int64),  # int64_t client_hlc;
        ("server_hlc", c_int64),  # int64_t server_hlc;
        ("client_id", c_char_p),  # const char *client_id;
        ("user", c_char_p),  # const char *user;
    ]


PIER_DECIDE_KEEP_BODY = 0
PIER_DECIDE_KEEP_SERVER = 1
PIER_DECIDE_REJECT = 2
PIER_DECIDE_MANUAL = 3

# typedef int (*pier_resolver_cb)(void *ctx, const pier_resolver_input *input, const char **out_body, size_t *out_len);
pier_resolver_cb = CFUNCTYPE(c_int, c_void_p, POINTER(pier_resolver_input), POINTER(c_void_p), POINTER(c_size_t))

# int pier_server_set_resolver(pier_server *server, const char *collection, pier_resolver_cb callback, void *ctx);
pier_server_set_resolver = _library.pier_server_set_resolver
pier_server_set_resolver.argtypes = [pier_server_p, c_char_p, pier_resolver_cb, c_void_p]
pier_server_set_resolver.restype = c_int

# ------------------------------------------------------------------------------------
# Client sync
# ------------------------------------------------------------------------------------

# typedef int (*pier_transport_cb)(void *ctx, const unsigned char *request, size_t request_len,
#                                  const unsigned char **out_response, size_t *out_response_len);
pier_transport_cb = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t, POINTER(c_void_p), POINTER(c_size_t))


class pier_sync_progress(Structure):
    """typedef struct pier_sync_progress { ... } pier_sync_progress;"""

    _fields_ = [
        ("version", c_uint),  # unsigned int version;
        ("round_trips", c_int64),  # int64_t round_trips;
        ("pushed", c_int64),  # int64_t pushed;
        ("pending", c_int64),  # int64_t pending;
        ("pulled", c_int64),  # int64_t pulled;
        ("pulling", c_int),  # int pulling;
    ]


# typedef void (*pier_progress_cb)(void *ctx, const pier_sync_progress *progress);
pier_progress_cb = CFUNCTYPE(None, c_void_p, POINTER(pier_sync_progress))


class pier_conflict(Structure):
    """typedef struct pier_conflict { ... } pier_conflict;  (strings borrowed for the call)"""

    _fields_ = [
        ("version", c_uint),  # unsigned int version;
        ("conflict_id", c_char_p),  # const char *conflict_id;
        ("collection", c_char_p),  # const char *collection;
        ("id", c_char_p),  # const char *id;
        ("local_body", c_char_p),  # const char *local_body;
        ("server_body", c_char_p),  # const char *server_body;
        ("base_body", c_char_p),  # const char *base_body;
        ("base_version", c_int64),  # int64_t base_version;
        ("server_version", c_int64),  # int64_t server_version;
    ]


PIER_RESOLVE_LEAVE = -1
PIER_RESOLVE_KEEP_LOCAL = 0
PIER_RESOLVE_KEEP_SERVER = 1
PIER_RESOLVE_MERGED = 2

# typedef int (*pier_conflict_cb)(void *ctx, const pier_conflict *conflict, const char **out_body, size_t *out_len);
pier_conflict_cb = CFUNCTYPE(c_int, c_void_p, POINTER(pier_conflict), POINTER(c_void_p), POINTER(c_size_t))

PIER_SYNC_OPTIONS_VERSION = 2


class pier_sync_options(Structure):
    """typedef struct pier_sync_options { ... } pier_sync_options;

    Build it with ``sync_options_init()`` (PIER_SYNC_OPTIONS_INIT). The struct does not
    keep the identity or the CFUNCTYPE objects alive: the caller must.
    """

    _fields_ = [
        ("version", c_uint),  # unsigned int version;
        ("server", pier_server_p),  # pier_server *server;
        ("identity", POINTER(pier_identity)),  # const pier_identity *identity;
        ("transport", pier_transport_cb),  # pier_transport_cb transport;
        ("transport_ctx", c_void_p),  # void *transport_ctx;
        ("max_batch_changes", c_size_t),  # size_t max_batch_changes;
        ("max_batch_bytes", c_size_t),  # size_t max_batch_bytes;
        ("pull_max_records", c_uint),  # unsigned int pull_max_records;
        ("pull_max_bytes", c_uint),  # unsigned int pull_max_bytes;
        ("block_only_conflicted", c_int),  # int block_only_conflicted;
        ("progress", pier_progress_cb),  # pier_progress_cb progress;
        ("progress_ctx", c_void_p),  # void *progress_ctx;
        ("resolver", pier_conflict_cb),  # pier_conflict_cb resolver;
        ("resolver_ctx", c_void_p),  # void *resolver_ctx;
        # Version 2: the built-in HTTP transport.
        ("url", c_char_p),  # const char *url;
        ("token", c_char_p),  # const char *token;
        ("ca_file", c_char_p),  # const char *ca_file;
        ("connect_timeout_ms", c_uint),  # unsigned int connect_timeout_ms;
        ("timeout_ms", c_uint),  # unsigned int timeout_ms;
        ("max_attempts", c_uint),  # unsigned int max_attempts;
        ("retry_base_delay_ms", c_uint),  # unsigned int retry_base_delay_ms;
        ("retry_max_delay_ms", c_uint),  # unsigned int retry_max_delay_ms;
        ("max_response_bytes", c_size_t),  # size_t max_response_bytes;
    ]


def sync_options_init() -> pier_sync_options:
    """PIER_SYNC_OPTIONS_INIT: { PIER_SYNC_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, 0, 0, 0, 0, 0, 0 }"""
    options = pier_sync_options()  # ctypes zero-fills: every pointer NULL, every count 0
    options.version = PIER_SYNC_OPTIONS_VERSION
    return options


PIER_SYNC_REPORT_VERSION = 1


class pier_sync_report(Structure):
    """typedef struct pier_sync_report { ... } pier_sync_report;"""

    _fields_ = [
        ("version", c_uint),  # unsigned int version;
        ("pushed", c_int64),  # int64_t pushed;
        ("applied", c_int64),  # int64_t applied;
        ("merged", c_int64),  # int64_t merged;
        ("superseded", c_int64),  # int64_t superseded;
        ("rejected", c_int64),  # int64_t rejected;
        ("conflicts", c_int64),  # int64_t conflicts;
        ("pulled", c_int64),  # int64_t pulled;
        ("bytes_sent", c_int64),  # int64_t bytes_sent;
        ("bytes_sent_raw", c_int64),  # int64_t bytes_sent_raw;
        ("bytes_received", c_int64),  # int64_t bytes_received;
        ("bytes_received_raw", c_int64),  # int64_t bytes_received_raw;
        ("round_trips", c_int64),  # int64_t round_trips;
        ("duration_ms", c_double),  # double duration_ms;
        ("resynced", c_int),  # int resynced;
        ("replayed_batch", c_int),  # int replayed_batch;
    ]


def sync_report_init() -> pier_sync_report:
    """PIER_SYNC_REPORT_INIT: { PIER_SYNC_REPORT_VERSION, 0, ..., 0.0, 0, 0 }"""
    report = pier_sync_report()
    report.version = PIER_SYNC_REPORT_VERSION
    return report


# int pier_sync(pier_db *db, pier_sync_report *out_report, const pier_sync_options *options);
pier_sync = _library.pier_sync
pier_sync.argtypes = [pier_db_p, POINTER(pier_sync_report), POINTER(pier_sync_options)]
pier_sync.restype = c_int

# int pier_db_conflicts(pier_db *db, char **out_json, size_t *out_len);
pier_db_conflicts = _library.pier_db_conflicts
pier_db_conflicts.argtypes = [pier_db_p, POINTER(c_void_p), POINTER(c_size_t)]
pier_db_conflicts.restype = c_int

# int pier_db_resolve(pier_db *db, const char *conflict_id, int resolution, const char *body, size_t body_len);
pier_db_resolve = _library.pier_db_resolve
pier_db_resolve.argtypes = [pier_db_p, c_char_p, c_int, c_char_p, c_size_t]
pier_db_resolve.restype = c_int
