import Foundation

/// The record `bert prepare` keeps of the shard set it writes: `<prefix>_manifest.json` beside the shards. It is
/// written first marked unfinished and, once every shard is in place, rewritten (atomically) with the list of shards
/// and their instance counts, sizes and checksums. A reader then knows whether a set is whole: a killed `prepare`
/// leaves the unfinished mark, a shard that went missing or changed no longer matches its size, and a shard of an
/// older run left beside the set is not on the list. Shards without a manifest (made by NVIDIA's or Google's
/// scripts) are taken as they are.
public struct ShardManifest: Codable, Equatable {
    public struct Shard: Codable, Equatable {
        public var file: String
        public var instances: Int
        public var bytes: Int
        public var checksum: String
    }

    public var complete: Bool
    public var prefix: String
    public var maxSeqLength: Int
    public var maxPredictionsPerSeq: Int
    public var shards: [Shard]

    static let suffix = "_manifest.json"

    public static func path(directory: String, prefix: String) -> String {
        (directory as NSString).appendingPathComponent(prefix + suffix)
    }

    /// Writes the manifest atomically.
    public func write(directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try writeFileAtomically(try encoder.encode(self), to: Self.path(directory: directory, prefix: prefix))
    }

    /// Whether `name` is a shard file of the set named `prefix`: `<prefix>_training_<k>.hdf5` or `<prefix>_test_<k>.hdf5`.
    static func isShard(_ name: String, of prefix: String) -> Bool {
        guard name.hasPrefix(prefix + "_"), name.hasSuffix(".hdf5") else { return false }
        let middle = name.dropFirst(prefix.count + 1).dropLast(".hdf5".count)
        for kind in ["training_", "test_"] where middle.hasPrefix(kind) {
            let index = middle.dropFirst(kind.count)
            return !index.isEmpty && index.allSatisfy(\.isASCII) && index.allSatisfy(\.isNumber)
        }
        return false
    }

    /// Checks the shards `paths` found in `directory` against every manifest there.
    /// - Throws: `ShardError` naming the manifest or shard at fault and what to do: an unfinished set, a listed shard
    ///   missing or of another size, a shard of a set that its manifest does not list, an unreadable manifest.
    public static func check(_ paths: [String], in directory: String) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        for name in names.sorted() where name.hasSuffix(suffix) {
            let manifestPath = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: manifestPath),
                  let manifest = try? decoder.decode(ShardManifest.self, from: data) else {
                throw ShardError("\(manifestPath): not a readable shard manifest; run `bert prepare` again or remove it")
            }
            guard manifest.complete else {
                throw ShardError("\(manifestPath): `bert prepare` did not finish writing these shards (stopped or killed); "
                                 + "run it again")
            }
            var listed = Set<String>()
            for shard in manifest.shards {
                listed.insert(shard.file)
                let path = (directory as NSString).appendingPathComponent(shard.file)
                guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else { throw ShardError("\(path): missing from the set \(manifestPath) lists; run `bert prepare` again") }
                guard size == shard.bytes else {
                    throw ShardError("\(path): \(size) bytes, but \(manifestPath) recorded \(shard.bytes) (changed or damaged); "
                                     + "run `bert prepare` again")
                }
            }
            for path in paths {
                let file = (path as NSString).lastPathComponent
                if isShard(file, of: manifest.prefix) && !listed.contains(file) {
                    throw ShardError("\(path): not in the set \(manifestPath) lists (left from an earlier `bert prepare`?); remove it")
                }
            }
        }
    }
}
