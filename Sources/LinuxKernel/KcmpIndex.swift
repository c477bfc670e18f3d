/// Kernel objects (open file descriptions, fd tables, fs) told apart with kcmp(2). Its
/// answer also orders them (1: before, 2: after), so, as CRIU's kid tree, one holder per
/// object is kept sorted and a lookup is a binary search: a tree of n tasks costs
/// n log n compares, not one with every holder seen.
public struct KcmpIndex<Value> {
    /// Where an object is held: a task and, for a file, its fd.
    public struct Holder: Sendable {
        public let pid: Int32
        public let fd: Int32
        public init(pid: Int32, fd: Int32 = 0) { self.pid = pid; self.fd = fd }
    }

    private let type: Int
    private var objects: [(holder: Holder, value: Value)] = []

    /// `type`: a KcmpType.
    public init(type: Int) { self.type = type }

    /// The value recorded for the object `holder` refers to.
    public func find(_ holder: Holder) throws -> Value? {
        let (at, found) = try search(holder)
        return found ? objects[at].value : nil
    }

    /// The value of the object `holder` refers to; a new object gets `make()`'s value.
    public mutating func value(of holder: Holder, orAdd make: () throws -> Value) throws -> (value: Value, isNew: Bool) {
        let (at, found) = try search(holder)
        if found { return (objects[at].value, false) }
        let value = try make()
        objects.insert((holder, value), at: at)
        return (value, true)
    }

    private func search(_ h: Holder) throws -> (Int, Bool) {
        var low = 0, high = objects.count
        while low < high {
            let mid = (low + high) / 2
            let o = objects[mid].holder
            let order = try Syscall.raw("kcmp pid \(h.pid) fd \(h.fd) with pid \(o.pid) fd \(o.fd)",
                                        SyscallNumber.kcmp, Int(h.pid), Int(o.pid), type, Int(h.fd), Int(o.fd))
            switch order {
            case 0: return (mid, true)
            case 1: high = mid
            case 2: low = mid + 1
            default: throw CheckpointError(.unsupported, "kcmp of pid \(h.pid) and pid \(o.pid) gives no order (\(order))")
            }
        }
        return (low, false)
    }
}
