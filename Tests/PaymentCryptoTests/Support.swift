import Foundation
import PaymentCore
@testable import PaymentCrypto

/// Loads a vector file shipped with the tests.
func loadVectors<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
    guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Vectors") else {
        throw CryptoError("vector file \(name).json is missing")
    }
    return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
}

func hex(_ s: String) -> [UInt8] { try! [UInt8](hex: s) }

typealias SplitMix64 = SeededRandomNumberGenerator

struct CipherVector: Decodable { let key: String; let plaintext: String; let ciphertext: String }
struct CipherFile: Decodable { let source: String; let vectors: [CipherVector] }
