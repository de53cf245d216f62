import ArgumentParser

/// `pier frame dump <file>` (placeholder until the wire-format work lands).
struct FrameDump: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dump", abstract: "Print a captured frame in readable form.")

    @Argument(help: "A file holding one frame.") var file: String

    func run() throws {
        throw ValidationError("frame decoding is not built yet")
    }
}
