#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory, once. The descriptor stays open so that later
/// reads (`pread`) can go around the mapping, and the size is what `fstat` said at open.
///
/// The mapping lives as long as this object; every tensor view keeps a reference to it.
/// Mapping costs no reads: only the pages that are touched are faulted in.
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// The file's size in bytes at the time it was opened.
    public let size: Int
    /// The open descriptor (read-only, close-on-exec).
    public let descriptor: Int32
    private let base: UnsafeRawPointer?

    /// Opens and maps `path`. Refuses anything that is not a regular file (a FIFO would block
    /// forever, a directory cannot be mapped).
    public init(path: String) throws(MoEError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw MoEError(.io, "cannot open the file", path: path, cause: MappedFile.lastErrno())
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let cause = MappedFile.lastErrno()
            close(fd)
            throw MoEError(.io, "cannot stat the file", path: path, cause: cause)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw MoEError(.invalidFile, "not a regular file", path: path)
        }
        let size = Int(info.st_size)
        var base: UnsafeRawPointer? = nil
        if size > 0 {
            let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let pointer, pointer != MAP_FAILED else {
                let cause = MappedFile.lastErrno()
                close(fd)
                throw MoEError(.io, "cannot map the file (\(size) bytes) into memory", path: path, cause: cause)
            }
            base = UnsafeRawPointer(pointer)
        }
        self.descriptor = fd
        self.size = size
        self.base = base
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
        close(descriptor)
    }

    /// The whole mapping. Valid while this object is alive.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Asks the kernel to start reading the whole file into the page cache now (madvise
    /// WILLNEED), so the first tokens do not wait for page faults. Advisory: errors are ignored.
    public func prefetch() {
        guard let base, size > 0 else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), size, MADV_WILLNEED)
    }

    /// Asks the kernel to read `count` bytes at `offset` ahead (madvise WILLNEED on the pages
    /// that hold them). Advisory: out-of-range requests and errors are ignored.
    public func prefetch(offset: Int, count: Int) {
        guard let base, offset >= 0, count > 0, offset < size else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page, end = min(offset + count, size)
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_WILLNEED)
    }

    static func lastErrno() -> String {
        String(cString: strerror(errno))
    }
}
