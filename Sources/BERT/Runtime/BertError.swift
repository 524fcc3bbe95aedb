/// The errors the library reports to users. Each message is one line that names the file, flag or tensor at
/// fault and, where there is one, what to do.
public enum BertError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    case io(String)
    case invalidCheckpoint(String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidConfig(let m), .io(let m), .invalidCheckpoint(let m), .invalidInput(let m): return m
        }
    }
}
