import LinuxKernel

extension ContainerRegistryError: CheckpointErrorConvertible {
    public var checkpointError: CheckpointError { CheckpointError(.notFound, message, cause: self) }
}
