import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Throughput and memory of a training or inference step.")
    func run() throws { throw ValidationError("bench: not built yet") }
}
