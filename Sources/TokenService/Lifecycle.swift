/// Token states: inactive → active ⇄ suspended → deleted.
public enum TokenState: String, Sendable, Hashable, Codable, CaseIterable {
    case inactive, active, suspended, deleted
}

/// Who changes a token.
public enum TokenActor: String, Sendable, Hashable, Codable {
    case cardholder, issuer, requestor, system
}

/// Why a token changes state.
public enum TokenReason: String, Sendable, Hashable, Codable {
    case enrolled, verified, lost, stolen, fraud, found, cardholder, issuer
}

public enum LifecycleAction: String, Sendable, Hashable, Codable {
    case activate, suspend, resume, delete

    /// The state this action leads to from `state`, or nil when it is not allowed.
    public func target(from state: TokenState) -> TokenState? {
        switch (self, state) {
        case (.activate, .inactive): return .active
        case (.suspend, .active): return .suspended
        case (.resume, .suspended): return .active
        case (.delete, .inactive), (.delete, .active), (.delete, .suspended): return .deleted
        default: return nil
        }
    }

    /// Reasons that may accompany the action.
    public var allowedReasons: Set<TokenReason> {
        switch self {
        case .activate: return [.verified, .issuer]
        case .suspend: return [.lost, .stolen, .fraud, .cardholder, .issuer]
        case .resume: return [.found, .cardholder, .issuer]
        case .delete: return [.lost, .stolen, .fraud, .cardholder, .issuer]
        }
    }
}

/// Why a lifecycle change was refused.
public enum LifecycleError: Error, Hashable, Sendable, CustomStringConvertible {
    case notAllowed(action: LifecycleAction, from: TokenState)
    case reasonNotAllowed(action: LifecycleAction, reason: TokenReason)
    case unknownToken
    case notYours

    public var description: String {
        switch self {
        case .notAllowed(let a, let s): return "cannot \(a.rawValue) a token that is \(s.rawValue)"
        case .reasonNotAllowed(let a, let r): return "'\(r.rawValue)' is not a reason to \(a.rawValue)"
        case .unknownToken: return "no such token"
        case .notYours: return "the token belongs to another requestor or bank"
        }
    }
}
