/// The CRIU release whose images and RPC the engine implements, as runtimes see it: runc
/// needs >= 3.0.0 over the RPC; podman and checkpoint annotations compare numbers such as
/// 31701 (major * 10000 + minor * 100 + sublevel).
public enum CriuRelease {
    public static let major: Int32 = 3, minor: Int32 = 17, sublevel: Int32 = 1
    public static var number: Int32 { major * 10000 + minor * 100 + sublevel }
}
