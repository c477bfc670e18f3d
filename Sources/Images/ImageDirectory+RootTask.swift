import LinuxKernel

extension ImageDirectory {
    /// The root task's kobject ids (ids-PID.img of pstree.img's first entry): the ids of the
    /// tree's own namespaces. Not inventory.img's root_ids: CRIU writes the dumper's there.
    /// nil when the dump has no pstree or no ids image for its root.
    public func rootTaskIds() throws -> TaskKobjIdsEntry? {
        guard exists(.pstree), let root = try read(.pstree, as: PstreeEntry.self).first,
              exists(.ids(root.pid)) else { return nil }
        return try readOne(.ids(root.pid), as: TaskKobjIdsEntry.self)
    }
}
