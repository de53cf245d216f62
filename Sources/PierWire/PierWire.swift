// PierWire: Pier's binary frame format and sync message codecs. No I/O.
// (Placeholder until the wire-format work lands.)
public enum PierWire {
    public static let formatVersion: UInt8 = 1
}
