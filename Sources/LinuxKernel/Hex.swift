extension UInt64 {
    /// "0x7f12..." as addresses are written in errors and logs.
    public var hex: String { "0x" + String(self, radix: 16) }
}
