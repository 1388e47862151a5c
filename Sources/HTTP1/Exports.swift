// HTTP1 builds on the shared HTTP vocabulary (ByteRange, HeaderField, HTTPMethod): its users
// see those types through `import HTTP1` as before.
@_exported import HTTPCore
