import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the phone keeps its secrets: on a phone, a file whose key lives in the platform's
/// keystore (Keychain, Android Keystore); here, any implementation of this protocol.
public protocol SecureStore: Sendable {
    /// The stored bytes for `name`, or nil.
    func load(_ name: String) throws -> Data?
    /// Stores `data` under `name`; when this returns, the data survives a crash.
    func save(_ name: String, _ data: Data) throws
}

/// A store of files under a directory, each sealed with AES-256-GCM under one key (which the
/// platform keystore would hold) and bound to its name, so a file renamed or swapped is refused.
/// Writes replace the whole file atomically and are on disk, name and all, before `save` returns.
public struct FileSecureStore: SecureStore {
    public let directory: URL
    let key: SymmetricKey

    public init(directory: URL, key: SymmetricKey) throws {
        guard key.bitCount == 256 else { throw WalletError.storage("the store key must be 256 bits") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.directory = directory
        self.key = key
    }

    func url(_ name: String) -> URL { directory.appendingPathComponent(name + ".sealed") }

    /// The value under `name`; nil only when no file has that name. A file that cannot be read
    /// is an error, not an absence: a wallet that took its unreadable device key for a missing
    /// one would make a new key and write it over the old.
    public func load(_ name: String) throws -> Data? {
        let sealed: Data
        do {
            sealed = try Data(contentsOf: url(name))
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
            return nil
        } catch {
            throw WalletError.storage("cannot read \(name): \(error.localizedDescription)")
        }
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Data(name.utf8))
        } catch {
            throw WalletError.storage("\(name) does not open with the store key (tampered, or another device's)")
        }
    }

    public func save(_ name: String, _ data: Data) throws {
        let sealed = try AES.GCM.seal(data, using: key, authenticating: Data(name.utf8)).combined!
        // A new file, written and flushed, renamed over the old one, then the directory flushed:
        // after a crash the name holds the old state or the new one, whole — never a name
        // pointing at bytes that had not reached the disk, nor a rename the disk forgot (the
        // phone's counter and log going back would make the cloud refuse its next replenishment).
        let path = url(name).path
        let temporary = path + ".new-" + UUID().uuidString.prefix(8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WalletError.storage("cannot create \(name): \(String(cString: strerror(errno)))") }
        var written = false
        defer { if !written { unlink(temporary) } }
        do {
            defer { close(fd) }
            try sealed.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { throw WalletError.storage("cannot write \(name): \(String(cString: strerror(errno)))") }
                    offset += n
                }
            }
            guard fsync(fd) == 0 else { throw WalletError.storage("cannot flush \(name): \(String(cString: strerror(errno)))") }
        }
        guard rename(temporary, path) == 0 else { throw WalletError.storage("cannot replace \(name): \(String(cString: strerror(errno)))") }
        written = true
        let directoryFD = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw WalletError.storage("cannot open the store directory: \(String(cString: strerror(errno)))") }
        defer { close(directoryFD) }
        guard fsync(directoryFD) == 0 else { throw WalletError.storage("cannot flush the store directory: \(String(cString: strerror(errno)))") }
    }
}

/// A store in memory, for tests and benchmarks.
public final class MemorySecureStore: SecureStore, @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String: Data] = [:]
    public init() {}
    public func load(_ name: String) throws -> Data? { lock.withLock { items[name] } }
    public func save(_ name: String, _ data: Data) throws { lock.withLock { items[name] = data } }
}

public enum WalletError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The secure store refused to read or write.
    case storage(String)
    /// No card with this id on the phone.
    case unknownCard(String)
    /// A profile or key batch that cannot be used.
    case invalidProfile(String)
    /// An amount the card cannot put in its cryptogram.
    case invalidAmount(String)

    public var description: String {
        switch self {
        case .storage(let s): "secure storage: \(s)"
        case .unknownCard(let id): "no card \(id) on this phone"
        case .invalidProfile(let s): "invalid card profile: \(s)"
        case .invalidAmount(let s): "invalid amount: \(s)"
        }
    }
}
