import Crypto
import Foundation
import PaymentCore
import PaymentCrypto
import SQLKit
import Storage

/// The token vault's envelope encryption: card numbers sealed with AES-GCM under data keys;
/// data keys stored only wrapped by a key-encryption key (KEK) held in the key component; a
/// keyed hash (HMAC-SHA-256 in the key component) to find a card without decrypting any.
///
/// Rotation without downtime: ``rotateDataKey()`` makes a new active data key (new cards use
/// it; old ones stay readable under theirs), ``rewrap(toKEK:)`` re-wraps every data key under a
/// new KEK in one transaction — no card number is re-encrypted and none is exposed.
public final class Vault: Sendable {
    let db: Database
    let keys: any KeyHolding
    let lookupKeyName: String
    let cache = DataKeyCache()

    public init(database: Database, keys: any KeyHolding, lookupKeyName: String = "tsp-lookup") {
        self.db = database
        self.keys = keys
        self.lookupKeyName = lookupKeyName
    }

    static let wrapContext = Array("cloudtap-tsp-data-key".utf8)

    /// The keyed hash used to find and de-duplicate a number.
    public func lookupHash(_ digits: String) throws -> Data {
        Data(try keys.keyedHash(Array(digits.utf8), keyName: lookupKeyName))
    }

    /// Makes a new data key under `kekName` and makes it the active one.
    @discardableResult
    public func rotateDataKey(kekName: String = "tsp-kek") async throws -> Int64 {
        let key = SymmetricKey(size: .bits256)
        let wrapped = Data(try keys.seal(key.withUnsafeBytes { Array($0) }, keyName: kekName, authenticating: Vault.wrapContext))
        let now = Date().ISO8601Format()
        return try await db.transaction { tx in
            try await tx.raw("UPDATE tsp_data_keys SET state = 'retired' WHERE state = 'active'").run()
            return try await tx.raw("INSERT INTO tsp_data_keys (kek_name, wrapped, state, created_at) VALUES (\(bind: kekName), \(bind: wrapped), 'active', \(bind: now)) RETURNING id")
                .first()!.decode(column: "id", as: Int64.self)
        }
    }

    /// Re-wraps every data key under `newKEK`.
    public func rewrap(toKEK newKEK: String) async throws {
        let keys = self.keys
        try await db.transaction { tx in
            for row in try await tx.raw("SELECT id, kek_name, wrapped FROM tsp_data_keys").all() {
                let id = try row.decode(column: "id", as: Int64.self)
                let clear = try keys.open(Array(try row.decode(column: "wrapped", as: Data.self)), keyName: try row.decode(column: "kek_name", as: String.self),
                                          authenticating: Vault.wrapContext)
                let wrapped = Data(try keys.seal(clear, keyName: newKEK, authenticating: Vault.wrapContext))
                try await tx.raw("UPDATE tsp_data_keys SET kek_name = \(bind: newKEK), wrapped = \(bind: wrapped) WHERE id = \(bind: id)").run()
            }
        }
        cache.clear()
    }

    /// The active data key's id.
    /// Whether a data key is active (a fresh vault needs ``rotateDataKey(kekName:)`` once).
    public func hasActiveDataKey() async throws -> Bool {
        try await db.sql.raw("SELECT id FROM tsp_data_keys WHERE state = 'active'").first() != nil
    }

    func activeDataKey(_ tx: any SQLDatabase) async throws -> Int64 {
        guard let row = try await tx.raw("SELECT id FROM tsp_data_keys WHERE state = 'active'").first() else {
            throw StorageError("the vault has no active data key (rotateDataKey first)")
        }
        return try row.decode(column: "id", as: Int64.self)
    }

    /// Seals `digits` under data key `id`, binding `context` (so a sealed value cannot be moved to another row).
    func seal(_ digits: String, dataKey id: Int64, context: String, _ tx: any SQLDatabase) async throws -> Data {
        let key = try await dataKey(id, tx)
        let box = try AES.GCM.seal(Array(digits.utf8), using: key, authenticating: Array(context.utf8))
        return box.combined!
    }

    func open(_ sealed: Data, dataKey id: Int64, context: String, _ tx: any SQLDatabase) async throws -> String {
        let key = try await dataKey(id, tx)
        let clear = try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Array(context.utf8))
        return String(decoding: clear, as: UTF8.self)
    }

    /// The token number from a row holding `token_sealed`, `data_key_id` and `token_last4`.
    func openToken(_ row: any SQLRow, _ tx: any SQLDatabase) async throws -> PAN {
        try PAN(try await open(try row.decode(column: "token_sealed", as: Data.self), dataKey: try row.decode(column: "data_key_id", as: Int64.self),
                               context: "token:\(try row.decode(column: "token_last4", as: String.self))", tx))
    }

    /// The card number from a row holding `pan_sealed`, `data_key_id` and `par`.
    func openCard(_ row: any SQLRow, _ tx: any SQLDatabase) async throws -> PAN {
        try PAN(try await open(try row.decode(column: "pan_sealed", as: Data.self), dataKey: try row.decode(column: "data_key_id", as: Int64.self),
                               context: "card:\(try row.decode(column: "par", as: String.self))", tx))
    }

    private func dataKey(_ id: Int64, _ tx: any SQLDatabase) async throws -> SymmetricKey {
        if let k = cache.get(id) { return k }
        guard let row = try await tx.raw("SELECT kek_name, wrapped FROM tsp_data_keys WHERE id = \(bind: id)").first() else {
            throw StorageError("no data key \(id)")
        }
        let clear = try keys.open(Array(try row.decode(column: "wrapped", as: Data.self)), keyName: try row.decode(column: "kek_name", as: String.self),
                                  authenticating: Vault.wrapContext)
        let key = SymmetricKey(data: clear)
        cache.put(id, key)
        return key
    }
}

/// Unwrapped data keys kept in memory for the process's life (never written anywhere).
final class DataKeyCache: @unchecked Sendable {
    private let lock = NSLock()
    private var keys: [Int64: SymmetricKey] = [:]
    func get(_ id: Int64) -> SymmetricKey? { lock.withLock { keys[id] } }
    func put(_ id: Int64, _ k: SymmetricKey) { lock.withLock { keys[id] = k } }
    func clear() { lock.withLock { keys.removeAll() } }
}
