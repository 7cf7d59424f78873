#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A failed PC/SC call, with pcsc-lite's return code.
public struct PCSCError: Error, Hashable, Sendable, CustomStringConvertible {
    public let function: String
    public let code: UInt32

    /// SCARD_E_NO_SMARTCARD: no card in the reader (yet).
    public static let noSmartCard: UInt32 = 0x8010_000C
    /// SCARD_E_NO_READERS_AVAILABLE.
    public static let noReaders: UInt32 = 0x8010_002E
    /// SCARD_E_NO_SERVICE: pcscd is not running.
    public static let noService: UInt32 = 0x8010_001D
    /// SCARD_W_REMOVED_CARD.
    public static let removedCard: UInt32 = 0x8010_0069

    public var description: String {
        let name: String = switch code {
        case Self.noSmartCard: "no card in the reader"
        case Self.noReaders: "no readers"
        case Self.noService: "pcscd is not running"
        case Self.removedCard: "the card was removed"
        case 0x8010_0017: "reader unavailable"
        case 0x8010_000A: "timeout"
        default: "error"
        }
        return "\(function): \(name) (0x\(String(code, radix: 16, uppercase: true)))"
    }
}

/// pcsc-lite's client library, loaded when first used (`libpcsclite.so.1`), so that CloudTap
/// builds and runs where it is not installed and only PC/SC use reports its absence.
/// The types follow pcsc-lite on 64-bit Linux: LONG and SCARDCONTEXT are `long`, DWORD is
/// `unsigned long`.
final class PCSCLibrary: Sendable {
    typealias Establish = @convention(c) (UInt, UnsafeRawPointer?, UnsafeRawPointer?, UnsafeMutablePointer<Int>) -> Int
    typealias Release = @convention(c) (Int) -> Int
    typealias ListReaders = @convention(c) (Int, UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<UInt>) -> Int
    typealias Connect = @convention(c) (Int, UnsafePointer<CChar>, UInt, UInt, UnsafeMutablePointer<Int>, UnsafeMutablePointer<UInt>) -> Int
    typealias Disconnect = @convention(c) (Int, UInt) -> Int
    typealias Transmit = @convention(c) (Int, UnsafeRawPointer, UnsafePointer<UInt8>, UInt, UnsafeMutableRawPointer?,
                                         UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt>) -> Int

    let establish: Establish
    let release: Release
    let listReaders: ListReaders
    let connect: Connect
    let disconnect: Disconnect
    let transmit: Transmit
    nonisolated(unsafe) let t0PCI: UnsafeRawPointer
    nonisolated(unsafe) let t1PCI: UnsafeRawPointer

    static let shared: Result<PCSCLibrary, PCSCError> = {
        #if canImport(Glibc)
        guard let handle = dlopen("libpcsclite.so.1", RTLD_NOW) ?? dlopen("libpcsclite.so", RTLD_NOW) else {
            return .failure(PCSCError(function: "dlopen libpcsclite.so.1 (install libpcsclite1)", code: 0))
        }
        func symbol<T>(_ name: String, as: T.Type) -> T? { dlsym(handle, name).map { unsafeBitCast($0, to: T.self) } }
        guard let establish = symbol("SCardEstablishContext", as: Establish.self), let release = symbol("SCardReleaseContext", as: Release.self),
              let list = symbol("SCardListReaders", as: ListReaders.self), let connect = symbol("SCardConnect", as: Connect.self),
              let disconnect = symbol("SCardDisconnect", as: Disconnect.self), let transmit = symbol("SCardTransmit", as: Transmit.self),
              let t0 = dlsym(handle, "g_rgSCardT0Pci"), let t1 = dlsym(handle, "g_rgSCardT1Pci") else {
            return .failure(PCSCError(function: "dlsym in libpcsclite", code: 0))
        }
        return .success(PCSCLibrary(establish: establish, release: release, listReaders: list, connect: connect, disconnect: disconnect,
                                    transmit: transmit, t0PCI: UnsafeRawPointer(t0), t1PCI: UnsafeRawPointer(t1)))
        #else
        return .failure(PCSCError(function: "PC/SC through pcsc-lite is available on Linux", code: 0))
        #endif
    }()

    init(establish: Establish, release: Release, listReaders: ListReaders, connect: Connect, disconnect: Disconnect, transmit: Transmit,
         t0PCI: UnsafeRawPointer, t1PCI: UnsafeRawPointer) {
        self.establish = establish
        self.release = release
        self.listReaders = listReaders
        self.connect = connect
        self.disconnect = disconnect
        self.transmit = transmit
        self.t0PCI = t0PCI
        self.t1PCI = t1PCI
    }
}

/// A PC/SC context: the readers pcscd knows, and connections to the cards in them.
public final class PCSCContext: @unchecked Sendable {
    let library: PCSCLibrary
    let context: Int

    public init() throws {
        library = try PCSCLibrary.shared.get()
        var context = 0
        let rv = library.establish(2, nil, nil, &context)  // SCARD_SCOPE_SYSTEM
        guard rv == 0 else { throw PCSCError(function: "SCardEstablishContext", code: UInt32(truncatingIfNeeded: rv)) }
        self.context = context
    }

    deinit { _ = library.release(context) }

    /// The names of the readers.
    public func readers() throws -> [String] {
        var length: UInt = 0
        var rv = library.listReaders(context, nil, nil, &length)
        if UInt32(truncatingIfNeeded: rv) == PCSCError.noReaders { return [] }
        guard rv == 0 else { throw PCSCError(function: "SCardListReaders", code: UInt32(truncatingIfNeeded: rv)) }
        var buffer = [CChar](repeating: 0, count: Int(length))
        rv = library.listReaders(context, nil, &buffer, &length)
        guard rv == 0 else { throw PCSCError(function: "SCardListReaders", code: UInt32(truncatingIfNeeded: rv)) }
        // A multi-string: names separated by NUL, ended by two.
        return buffer.split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    }

    /// Connects (shared) to the card in `reader`, T=0 or T=1.
    public func connect(reader: String) throws -> PCSCCard {
        var handle = 0
        var active: UInt = 0
        let rv = reader.withCString { library.connect(context, $0, 2, 3, &handle, &active) }  // SCARD_SHARE_SHARED, T0|T1
        guard rv == 0 else { throw PCSCError(function: "SCardConnect", code: UInt32(truncatingIfNeeded: rv)) }
        return PCSCCard(context: self, handle: handle, protocolT1: active == 2)
    }
}

/// A connection to a card.
public final class PCSCCard: @unchecked Sendable {
    let context: PCSCContext
    let handle: Int
    /// Whether T=1 (else T=0) was negotiated.
    public let protocolT1: Bool
    private let lock = NSLock()

    init(context: PCSCContext, handle: Int, protocolT1: Bool) {
        self.context = context
        self.handle = handle
        self.protocolT1 = protocolT1
    }

    deinit { _ = context.library.disconnect(handle, 0) }  // SCARD_LEAVE_CARD

    /// Sends one APDU and returns the card's answer (data ‖ SW1 SW2).
    public func transmit(_ command: [UInt8]) throws -> [UInt8] {
        try lock.withLock {
            var answer = [UInt8](repeating: 0, count: 65538)
            var length = UInt(answer.count)
            let pci = protocolT1 ? context.library.t1PCI : context.library.t0PCI
            let rv = command.withUnsafeBufferPointer { send in
                context.library.transmit(handle, pci, send.baseAddress!, UInt(send.count), nil, &answer, &length)
            }
            guard rv == 0 else { throw PCSCError(function: "SCardTransmit", code: UInt32(truncatingIfNeeded: rv)) }
            return Array(answer.prefix(Int(length)))
        }
    }
}
