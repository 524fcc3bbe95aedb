import Foundation

/// The errors the library reports to users. Each message is one line that names the file, flag or tensor at
/// fault and, where there is one, what to do.
public enum BertError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    case io(String)
    case invalidCheckpoint(String)
    case invalidInput(String)
    /// A run stopped because a rank or its data loader made no progress within the time allowed.
    case stalled(String)

    public var description: String {
        switch self {
        case .invalidConfig(let m), .io(let m), .invalidCheckpoint(let m), .invalidInput(let m), .stalled(let m): return m
        }
    }
}

extension BertError {
    /// Foundation's file errors as one line naming the operation, the file (`path` when given: the final name of a
    /// file written through a temporary one; else the one the error names) and the cause; their own text is a dump of codes and dictionaries ("Error Domain=NSCocoaErrorDomain Code=512 …
    /// NSPOSIXErrorDomain Code=28"). Other errors pass through unchanged.
    public static func fromFoundation(_ error: Error, path: String? = nil) -> Error {
        guard !(error is BertError) else { return error }
        let ns = error as NSError
        guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain else { return error }
        let named = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        let file = path ?? named ?? "a file"
        if ns.domain == NSPOSIXErrorDomain { return BertError.io("cannot use \(file): \(String(cString: strerror(Int32(ns.code))))") }
        let operation = (256..<512).contains(ns.code) ? "cannot read" : (512..<1024).contains(ns.code) ? "cannot write" : "cannot use"
        let cause: String
        if let underlying = ns.userInfo[NSUnderlyingErrorKey].map({ $0 as AnyObject as? Error }) ?? nil,
           (underlying as NSError).domain == NSPOSIXErrorDomain {
            cause = String(cString: strerror(Int32((underlying as NSError).code)))
        } else {
            switch ns.code {
            case 4, 260: cause = "No such file or directory"
            case 257, 513: cause = "Permission denied"
            case 516: cause = "it already exists"
            case 640: cause = "No space left on device"
            case 642: cause = "Read-only file system"
            default: cause = ns.localizedDescription.split(separator: "\n").first.map(String.init) ?? "error \(ns.code)"
            }
        }
        return BertError.io("\(operation) \(file): \(cause)")
    }
}
