import PaymentCore

extension TLV {
    /// The deepest template nesting the decoder follows (EMV data rarely nests past 3).
    public static let maximumDepth = 16

    /// Decodes a sequence of BER-TLV objects (EMV 4.4 Book 3 Annex B).
    ///
    /// `00` and `FF` bytes before, between and after objects are padding and skipped, as
    /// Book 3 B1 allows. Errors carry the tag and the absolute offset (`baseOffset` + position).
    /// Constructed values are not looked into; see ``decodeTree(_:)``.
    public static func decode(_ bytes: [UInt8], baseOffset: Int = 0) throws(TLVError) -> [TLV] {
        var out: [TLV] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x00 || bytes[i] == 0xFF { i += 1; continue }
            out.append(try decodeOne(bytes, at: &i, baseOffset: baseOffset))
        }
        return out
    }

    /// Decodes `bytes` and checks that every constructed object's value is itself well-formed
    /// BER-TLV, to ``maximumDepth``. Errors name the innermost tag and absolute offset.
    public static func decodeTree(_ bytes: [UInt8]) throws(TLVError) -> [TLV] {
        // Checked in place first (no object built for the levels below), then the top level
        // decoded: the same answer as decoding every level, without building them all.
        try validate(bytes)
        return try decode(bytes)
    }

    /// Decodes exactly one object starting at `bytes[0]`; trailing bytes are an error.
    public static func decodeSingle(_ bytes: [UInt8]) throws(TLVError) -> TLV {
        var i = 0
        let item = try decodeOne(bytes, at: &i, baseOffset: 0)
        if i != bytes.count {
            throw TLVError(.valueOverrun(declared: i, available: bytes.count), tag: item.tag, offset: i)
        }
        return item
    }

    /// Decodes the object at `index`, advancing it past the object.
    static func decodeOne(_ bytes: [UInt8], at index: inout Int, baseOffset: Int) throws(TLVError) -> TLV {
        let tag = try readTag(bytes, at: &index, baseOffset: baseOffset)
        let lengthStart = index
        let length = try readLength(bytes, at: &index, tag: tag, baseOffset: baseOffset)
        let lengthEnd = index
        let available = bytes.count - index
        guard length <= available else {
            throw TLVError(.valueOverrun(declared: length, available: available), tag: tag, offset: baseOffset + lengthStart)
        }
        let value = Array(bytes[index..<index + length])
        index += length
        // The length field is kept only when it was not the minimal encoding (rare), without
        // building either form to compare them.
        if lengthEnd - lengthStart == TLV.encodedLengthCount(length) { return TLV(tag, value) }
        return TLV(tag: tag, value: value, lengthBytes: Array(bytes[lengthStart..<lengthEnd]))
    }

    /// Reads a tag at `index` (EMV 4.4 Book 3 B1: `1F` in the first byte's low bits means more
    /// bytes follow; bit 8 of each following byte means the same), at most four bytes.
    static func readTag(_ bytes: [UInt8], at index: inout Int, baseOffset: Int) throws(TLVError) -> Tag {
        let start = index
        guard index < bytes.count else { throw TLVError(.truncatedTag, tag: nil, offset: baseOffset + index) }
        var raw = UInt32(bytes[index])
        if bytes[index] & 0x1F == 0x1F {
            repeat {
                index += 1
                guard index < bytes.count else { throw TLVError(.truncatedTag, tag: nil, offset: baseOffset + index) }
                guard index - start < 4 else { throw TLVError(.tagTooLong, tag: nil, offset: baseOffset + start) }
                raw = raw << 8 | UInt32(bytes[index])
            } while bytes[index] & 0x80 != 0
        }
        index += 1
        return Tag(raw)
    }

    /// Reads a definite-form length at `index` (EMV 4.4 Book 3 B2): short form below `80`,
    /// long form `81`–`84` followed by one to four length bytes.
    static func readLength(_ bytes: [UInt8], at index: inout Int, tag: Tag, baseOffset: Int) throws(TLVError) -> Int {
        guard index < bytes.count else { throw TLVError(.truncatedLength, tag: tag, offset: baseOffset + index) }
        let lengthStart = index
        let first = bytes[index]
        index += 1
        if first < 0x80 { return Int(first) }
        if first == 0x80 { throw TLVError(.indefiniteLength, tag: tag, offset: baseOffset + lengthStart) }
        let n = Int(first & 0x7F)
        guard n <= 4 else { throw TLVError(.lengthTooLong(lengthBytes: n), tag: tag, offset: baseOffset + lengthStart) }
        guard index + n <= bytes.count else { throw TLVError(.truncatedLength, tag: tag, offset: baseOffset + index) }
        var length = 0
        for _ in 0..<n {
            length = length << 8 | Int(bytes[index])
            index += 1
        }
        return length
    }
}

extension TLV {
    /// Checks that `bytes` is well-formed BER-TLV, templates included (to ``maximumDepth``),
    /// without building any objects — the cheap check a codec makes on every DE55.
    public static func validate(_ bytes: [UInt8], baseOffset: Int = 0) throws(TLVError) {
        try validate(bytes, from: 0, to: bytes.count, baseOffset: baseOffset, depth: 0)
    }

    private static func validate(_ bytes: [UInt8], from start: Int, to end: Int, baseOffset: Int, depth: Int) throws(TLVError) {
        var i = start
        while i < end {
            if bytes[i] == 0x00 || bytes[i] == 0xFF { i += 1; continue }
            let tagStart = i
            // Tag (at most 4 bytes).
            var raw = UInt32(bytes[i])
            if bytes[i] & 0x1F == 0x1F {
                repeat {
                    i += 1
                    guard i < end else { throw TLVError(.truncatedTag, tag: nil, offset: baseOffset + i) }
                    guard i - tagStart < 4 else { throw TLVError(.tagTooLong, tag: nil, offset: baseOffset + tagStart) }
                    raw = raw << 8 | UInt32(bytes[i])
                } while bytes[i] & 0x80 != 0
            }
            i += 1
            let tag = Tag(raw)
            // Length.
            guard i < end else { throw TLVError(.truncatedLength, tag: tag, offset: baseOffset + i) }
            let lengthStart = i
            let first = bytes[i]
            i += 1
            var length = 0
            if first < 0x80 {
                length = Int(first)
            } else if first == 0x80 {
                throw TLVError(.indefiniteLength, tag: tag, offset: baseOffset + lengthStart)
            } else {
                let n = Int(first & 0x7F)
                guard n <= 4 else { throw TLVError(.lengthTooLong(lengthBytes: n), tag: tag, offset: baseOffset + lengthStart) }
                guard i + n <= end else { throw TLVError(.truncatedLength, tag: tag, offset: baseOffset + i) }
                for _ in 0..<n { length = length << 8 | Int(bytes[i]); i += 1 }
            }
            guard length <= end - i else {
                throw TLVError(.valueOverrun(declared: length, available: end - i), tag: tag, offset: baseOffset + lengthStart)
            }
            if bytes[tagStart] & 0x20 != 0 {
                guard depth < maximumDepth else { throw TLVError(.nestingTooDeep, tag: tag, offset: baseOffset + i) }
                try validate(bytes, from: i, to: i + length, baseOffset: baseOffset, depth: depth + 1)
            }
            i += length
        }
    }
}
