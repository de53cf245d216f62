// PierWire: Pier's binary frame format and the codecs of the sync messages.
//
// This module owns the bytes that travel between a Pier client and a Pier server: the
// fixed frame header, deflate compression, the compact payload layouts of `SyncRequest`,
// `SyncResponse` and `ErrorMessage`, the bounded encoders that split large syncs into
// several frames, and a decoder that treats every input as hostile. docs/PROTOCOL.md is
// the specification; Tests/fixtures/wire/ holds golden frames that pin it.
//
// It performs no I/O and depends on nothing but the system libdeflate (`CDeflate`): no Foundation,
// no PierStore. The sync engine (PierSync) and the server (PierServer) both build on it.

/// Constants of the wire format.
public enum PierWire {
    /// The format version this module writes, and the highest one it reads.
    public static let formatVersion: UInt8 = 2
    /// The size of the fixed frame header in bytes.
    public static let headerSize = 20
    /// The four magic bytes every frame starts with: `PIER`.
    public static let magic: [UInt8] = [0x50, 0x49, 0x45, 0x52]
}
