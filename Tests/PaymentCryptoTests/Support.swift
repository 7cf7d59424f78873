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

/// A small deterministic generator for property tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &self) } }
}

struct CipherVector: Decodable { let key: String; let plaintext: String; let ciphertext: String }
struct CipherFile: Decodable { let source: String; let vectors: [CipherVector] }
