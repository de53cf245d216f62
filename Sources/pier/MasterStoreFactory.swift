import Pier
import PierStore

/// Opens the master store named by `spec`: a path is an SQLite master file.
func openMasterStore(_ spec: String) throws(PierError) -> any MasterStore {
    try SQLiteMasterStore(path: spec)
}
