/// One header operation a route asks for (VirtualService `headers.request|response`,
/// istio-semantics.md §1.4), as the serializers apply it to a forwarded head:
///
/// * `.remove`: every field of that name is dropped;
/// * `.set`: every field of that name is dropped and `name: value` is written once;
/// * `.add`: `name: value` is written after the fields already there.
///
/// Edits apply in order, so a later `.set` or `.remove` also drops what an earlier edit wrote.
/// `name` is lower-case (the compiler lower-cases it) and is compared case-insensitively with
/// the received names. The views point into the route table image, which outlives the call.
@frozen
public struct HeaderEdit {
    public enum Kind: UInt8, Sendable {
        case set, add, remove
    }
    public var kind: Kind
    public var name: UnsafeRawBufferPointer
    public var value: UnsafeRawBufferPointer

    @inlinable
    public init(kind: Kind, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        self.kind = kind
        self.name = name
        self.value = value
    }
}
