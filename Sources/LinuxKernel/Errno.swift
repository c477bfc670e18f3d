import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An errno value, typed (swift-system's idiom): callers match `.EEXIST`, not the text of
/// a message. The names are the C ones so a reader finds them in the man pages.
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's errno as it is now.
    public static var current: Errno { Errno(Glibc.errno) }

    /// strerror(3)'s text: "File exists".
    public var description: String { String(cString: strerror(rawValue)) }

    /// The C name ("EEXIST") for the values named here, nil for the others.
    public var name: String? { Errno.names[rawValue] }

    /// "strerror (errno N)", the tail of every syscall failure's message.
    public var detail: String { "\(description) (errno \(rawValue))" }

    /// "strerror (errno N)" of a raw errno value.
    public static func describe(_ err: Int32) -> String { Errno(err).detail }

    public static let EPERM = Errno(Glibc.EPERM)
    public static let ENOENT = Errno(Glibc.ENOENT)
    public static let ESRCH = Errno(Glibc.ESRCH)
    public static let EINTR = Errno(Glibc.EINTR)
    public static let EIO = Errno(Glibc.EIO)
    public static let ENXIO = Errno(Glibc.ENXIO)
    public static let E2BIG = Errno(Glibc.E2BIG)
    public static let EBADF = Errno(Glibc.EBADF)
    public static let ECHILD = Errno(Glibc.ECHILD)
    public static let EAGAIN = Errno(Glibc.EAGAIN)
    public static let ENOMEM = Errno(Glibc.ENOMEM)
    public static let EACCES = Errno(Glibc.EACCES)
    public static let EFAULT = Errno(Glibc.EFAULT)
    public static let EBUSY = Errno(Glibc.EBUSY)
    public static let EEXIST = Errno(Glibc.EEXIST)
    public static let EXDEV = Errno(Glibc.EXDEV)
    public static let ENODEV = Errno(Glibc.ENODEV)
    public static let ENOTDIR = Errno(Glibc.ENOTDIR)
    public static let EISDIR = Errno(Glibc.EISDIR)
    public static let EINVAL = Errno(Glibc.EINVAL)
    public static let EMFILE = Errno(Glibc.EMFILE)
    public static let ENOTTY = Errno(Glibc.ENOTTY)
    public static let ENOSPC = Errno(Glibc.ENOSPC)
    public static let EROFS = Errno(Glibc.EROFS)
    public static let EPIPE = Errno(Glibc.EPIPE)
    public static let ERANGE = Errno(Glibc.ERANGE)
    public static let ENOSYS = Errno(Glibc.ENOSYS)
    public static let ENOTEMPTY = Errno(Glibc.ENOTEMPTY)
    public static let ELOOP = Errno(Glibc.ELOOP)
    public static let ENODATA = Errno(Glibc.ENODATA)
    public static let EOVERFLOW = Errno(Glibc.EOVERFLOW)
    public static let ENOTSOCK = Errno(Glibc.ENOTSOCK)
    public static let EOPNOTSUPP = Errno(Glibc.EOPNOTSUPP)
    public static let EADDRINUSE = Errno(Glibc.EADDRINUSE)
    public static let ENOTCONN = Errno(Glibc.ENOTCONN)
    public static let ETIMEDOUT = Errno(Glibc.ETIMEDOUT)
    public static let ECONNREFUSED = Errno(Glibc.ECONNREFUSED)

    private static let names: [Int32: String] = [
        Glibc.EPERM: "EPERM", Glibc.ENOENT: "ENOENT", Glibc.ESRCH: "ESRCH", Glibc.EINTR: "EINTR",
        Glibc.EIO: "EIO", Glibc.ENXIO: "ENXIO", Glibc.E2BIG: "E2BIG", Glibc.EBADF: "EBADF",
        Glibc.ECHILD: "ECHILD", Glibc.EAGAIN: "EAGAIN", Glibc.ENOMEM: "ENOMEM", Glibc.EACCES: "EACCES",
        Glibc.EFAULT: "EFAULT", Glibc.EBUSY: "EBUSY", Glibc.EEXIST: "EEXIST", Glibc.EXDEV: "EXDEV",
        Glibc.ENODEV: "ENODEV", Glibc.ENOTDIR: "ENOTDIR", Glibc.EISDIR: "EISDIR", Glibc.EINVAL: "EINVAL",
        Glibc.EMFILE: "EMFILE", Glibc.ENOTTY: "ENOTTY", Glibc.ENOSPC: "ENOSPC", Glibc.EROFS: "EROFS",
        Glibc.EPIPE: "EPIPE", Glibc.ERANGE: "ERANGE", Glibc.ENOSYS: "ENOSYS", Glibc.ENOTEMPTY: "ENOTEMPTY",
        Glibc.ELOOP: "ELOOP", Glibc.ENODATA: "ENODATA", Glibc.EOVERFLOW: "EOVERFLOW",
        Glibc.ENOTSOCK: "ENOTSOCK", Glibc.EOPNOTSUPP: "EOPNOTSUPP", Glibc.EADDRINUSE: "EADDRINUSE",
        Glibc.ENOTCONN: "ENOTCONN", Glibc.ETIMEDOUT: "ETIMEDOUT", Glibc.ECONNREFUSED: "ECONNREFUSED",
    ]
}
