import CCUDATypes

/// NCCL's entry points for the data-parallel collectives (all-reduce, reduce-scatter, all-gather on device buffers),
/// loaded only when a CUDA backend runs on more than one GPU. The unique id travels over the existing MPI broadcast;
/// MPI stays the launcher. Results are `ncclResult_t` (0 is success); communicators and streams are opaque.
public final class NCCL: @unchecked Sendable {
    public static let libraryName = "libnccl.so.2"

    public typealias Result = Int32
    public typealias Handle = OpaquePointer?
    public typealias UniqueID = bert_nccl_unique_id
    private let library: SharedLibrary
    public let getVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    public let getErrorString: @convention(c) (Result) -> UnsafePointer<CChar>?
    public let getUniqueId: @convention(c) (UnsafeMutablePointer<UniqueID>) -> Result
    /// (communicator, rank count, id, rank)
    public let commInitRank: @convention(c) (UnsafeMutablePointer<Handle>, Int32, UniqueID, Int32) -> Result
    public let commDestroy: @convention(c) (Handle) -> Result
    /// (send, receive, count, ncclDataType_t, ncclRedOp_t, communicator, stream)
    public let allReduce: @convention(c) (UInt64, UInt64, Int, Int32, Int32, Handle, Handle) -> Result
    /// (send, receive, receive count, ncclDataType_t, ncclRedOp_t, communicator, stream)
    public let reduceScatter: @convention(c) (UInt64, UInt64, Int, Int32, Int32, Handle, Handle) -> Result
    /// (send, receive, send count, ncclDataType_t, communicator, stream)
    public let allGather: @convention(c) (UInt64, UInt64, Int, Int32, Handle, Handle) -> Result
    public let groupStart: @convention(c) () -> Result
    public let groupEnd: @convention(c) () -> Result

    /// - Throws: `CUDAError.libraryNotFound` naming the library and how to get it.
    public static func load(candidates: [String] = [libraryName]) throws -> NCCL {
        guard let library = SharedLibrary.open(candidates) else {
            throw CUDAError.libraryNotFound(library: "NCCL", tried: candidates,
                                            purpose: "install the nvidia-nccl-cu13 wheel or NCCL 2 for CUDA 13")
        }
        return try NCCL(library)
    }

    private init(_ library: SharedLibrary) throws {
        self.library = library
        getVersion = try library.function("ncclGetVersion")
        getErrorString = try library.function("ncclGetErrorString")
        getUniqueId = try library.function("ncclGetUniqueId")
        commInitRank = try library.function("ncclCommInitRank")
        commDestroy = try library.function("ncclCommDestroy")
        allReduce = try library.function("ncclAllReduce")
        reduceScatter = try library.function("ncclReduceScatter")
        allGather = try library.function("ncclAllGather")
        groupStart = try library.function("ncclGroupStart")
        groupEnd = try library.function("ncclGroupEnd")
    }
}
