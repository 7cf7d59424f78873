import IssuerHost
import PaymentCore
import TokenService

/// Connects the token service's eligibility questions to the issuer hosts of this deployment.
public struct IssuerHostEligibility: EligibilityService {
    let host: IssuerHost
    public init(host: IssuerHost) { self.host = host }

    public func eligibility(pan: PAN, expiry: String, cvn2: String?) async throws -> EligibilityAnswer {
        let e = try await host.eligibility(pan: pan, expiry: expiry, cvn2: cvn2)
        let reason: String? = if case .ineligible(let why) = e.verdict { why } else { nil }
        return EligibilityAnswer(ineligibleReason: reason, bank: e.bank, mobile: e.mobile, deviceLimit: e.deviceLimit)
    }
}
