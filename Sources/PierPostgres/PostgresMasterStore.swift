// PierPostgres: the master store in PostgreSQL, the scale path of DESIGN.md section 7 —
// several stateless `pier serve` processes in front of one database.
//
// Owns: the PostgreSQL schema and its migrations, the connection pool, and the locking
// that keeps versions and records consistent across processes. Depends on PierServer
// (the MasterStore protocol), PierStore (errors, HLC) and postgres-nio. Must not be a
// dependency of Pier or PierC: libpier.so never links NIO.
public import PierServer
public import PierStore

import PostgresNIO

#if canImport(Glibc)
import Glibc
#endif

/// The master store in a PostgreSQL schema. Several stores (in several processes) may
/// share one schema: records are locked row by row, and versions become visible in the
/// order they are taken.
///
/// `MasterStore` is synchronous, so every call blocks its thread until PostgreSQL
/// answers (postgres-nio's futures are waited on). Call it from ordinary threads, such
/// as the HTTP server's handler pool — never from a SwiftNIO event-loop thread, where
/// waiting would deadlock (NIO stops the process instead).
///
/// Concurrent calls from many threads are fine: each takes a connection from a pool of
/// at most `pool_size` (a URL parameter, default 10) and waits up to 30 s for one.
public final class PostgresMasterStore: MasterStore {
    /// The schema holding Pier's tables.
    public let schema: String
    private let pool: ConnectionPool
    private let names: Names

    /// How many times `write` runs its body when PostgreSQL aborts the transaction for a
    /// deadlock or a serialisation failure before it gives up with `.busy`.
    static let maximumAttempts = 5

    /// Connects to the database at `url` and prepares `schema` (creating it, or applying
    /// the migrations it lacks, under an advisory lock).
    ///
    /// - Parameters:
    ///   - url: `postgres://user:password@host:port/database` (or `postgresql://`), with
    ///     libpq-style parameters such as `?sslmode=disable` or `?host=/run/postgresql` for
    ///     a Unix socket; see `PostgresURL`.
    ///   - schema: 1-63 ASCII letters, digits or underscores, not starting with a digit.
    /// - Throws: `.invalid` for a malformed URL or schema name; `.network` when the server
    ///   cannot be reached; `.auth` when it refuses the login; `.notFound` for a missing
    ///   database; `.notADatabase` for a schema holding other tables; `.version` for a
    ///   schema written by a newer Pier.
    public init(url: String, schema: String = "pier") throws(PierError) {
        let parsed = try PostgresURL(url)
        guard Names.isValid(schema) else {
            throw PierError(.invalid, "PostgreSQL schema name must be 1-63 ASCII letters, digits or underscores, not starting with a digit; got '\(schema)'")
        }
        let names = Names(schema: schema)
        let pool = try ConnectionPool(url: parsed)
        do throws(PierError) {
            let session = try pool.acquire()
            defer { pool.release(session) }
            try Migrations.run(session, names)
        } catch {
            pool.close(wait: true)
            throw error
        }
        self.schema = schema
        self.names = names
        self.pool = pool
    }

    deinit {
        pool.close(wait: false)
    }

    /// Closes the connections; later calls fail with `.closed`. Calls in progress finish
    /// and their connections close when they return.
    public func close() {
        pool.close(wait: true)
    }

    /// Runs `body` in one transaction: READ COMMITTED, with a record's row (and an
    /// advisory lock on its key) locked by `lockRecord` and the version counter locked
    /// from the first `nextVersion` until commit.
    ///
    /// When PostgreSQL aborts the transaction for a deadlock or a serialisation failure,
    /// `body` runs again on a fresh transaction (up to five times), so it must not leave
    /// effects outside the transaction that a second run would duplicate.
    public func write<T>(_ body: (any MasterTransaction) throws(PierError) -> T) throws(PierError) -> T {
        var attempt = 1
        while true {
            let session = try pool.acquire()
            var began = false
            do throws(PierError) {
                try session.rows("BEGIN ISOLATION LEVEL READ COMMITTED", "starting a write transaction")
                began = true
                let value = try Self.run(session, names, writable: true) { (tx) throws(PierError) in try body(tx) }
                pool.release(session)
                return value
            } catch {
                pool.release(session)
                // Safe to go again: the server rolled back (deadlock, serialisation), or
                // the pooled connection was dead before anything ran.
                let again = session.retryable || (!began && session.lost)
                guard again, attempt < Self.maximumAttempts else { throw error }
                attempt += 1
                if session.retryable { usleep(UInt32.random(in: 1_000...(5_000 * UInt32(attempt)))) }
            }
        }
    }

    /// Runs `body` on a REPEATABLE READ, read-only snapshot: everything it reads belongs
    /// to one moment, including `currentVersion`.
    public func read<T>(_ body: (any MasterReader) throws(PierError) -> T) throws(PierError) -> T {
        var attempt = 1
        while true {
            let session = try pool.acquire()
            var began = false
            do throws(PierError) {
                try session.rows("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting a read transaction")
                began = true
                let value = try Self.run(session, names, writable: false) { (tx) throws(PierError) in try body(tx) }
                pool.release(session)
                return value
            } catch {
                pool.release(session)
                guard !began, session.lost, attempt < Self.maximumAttempts else { throw error }
                attempt += 1
            }
        }
    }

    private static func run<T>(_ session: Session, _ names: Names, writable: Bool,
                               _ body: (PostgresTransaction) throws(PierError) -> T) throws(PierError) -> T {
        let tx = PostgresTransaction(session, names, writable: writable)
        let value: T
        do throws(PierError) {
            value = try body(tx)
            try tx.finish()
        } catch {
            if !session.lost {
                do throws(PierError) { try session.rows("ROLLBACK", "rolling back") } catch { session.markLost() }
            }
            throw error
        }
        do throws(PierError) {
            try session.rows("COMMIT", "committing")
        } catch {
            if session.lost {
                throw PierError(.network, "the PostgreSQL connection was lost during COMMIT: the transaction may or may not have been applied",
                                underlying: error.description)
            }
            throw error
        }
        return value
    }
}

extension PostgresMasterStore {
    /// Runs SQL statements outside any Pier transaction; for tests that need to set up or
    /// inspect the database behind Pier's back.
    func execute(_ sql: String) throws(PierError) -> [[String]] {
        let session = try pool.acquire()
        defer { pool.release(session) }
        return try session.rows(PostgresQuery(unsafeSQL: sql), "running test SQL").map { row in
            row.map { cell in cell.bytes.map { String(decoding: $0.readableBytesView, as: UTF8.self) } ?? "NULL" }
        }
    }
}
