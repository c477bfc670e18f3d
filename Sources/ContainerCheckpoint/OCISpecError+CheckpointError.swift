import LinuxKernel
import OCISpec

// Declared here, not in OCISpec, so the runtime-spec model keeps no dependency: a
// config.json or state that does not decode is a damaged part of the checkpoint.
extension OCISpecError: @retroactive CheckpointErrorConvertible {
    public var checkpointError: CheckpointError { CheckpointError(.image, description, cause: self) }
}
