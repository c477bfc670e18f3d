import Foundation
import Images
import LinuxKernel
import Testing

@Suite("ImageError as a CheckpointError")
struct ImageErrorConversionTests {
    @Test("the same one-line text, code image, the ImageError as its cause")
    func converts() {
        let e = ImageError("/tmp/x/core-1.img", "truncated record")
        let c = CheckpointError(e)
        #expect(c.message == "image /tmp/x/core-1.img: truncated record")
        #expect(c.code == .image)
        #expect(c.cause is ImageError)
        #expect(c.firstErrno == nil)
    }
}
