import Pier
import PierPostgres

/// Opens the master store named on the command line or in the configuration: a file path
/// is an SQLite master store; a `postgres://` or `postgresql://` URL is PostgreSQL.
///
/// The one place that maps a store specification to an implementation, so adding a
/// backend touches nothing else.
func openMasterStore(_ spec: String) throws(PierError) -> any MasterStore {
    let lowered = spec.lowercased()
    if lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") {
        return try PostgresMasterStore(url: spec)
    }
    guard !spec.isEmpty else { throw PierError(.invalid, "the master store path is empty") }
    return try SQLiteMasterStore(path: spec)
}
