/// What the rules see of one authorization.
public struct AuthorizationContext: Sendable {
    public var status: CardStatus
    /// YYMM on the card and today's YYMM.
    public var cardExpiry: String
    public var currentMonth: String
    public var amount: Int64
    public var product: Product
    /// Debit: the balance; credit: the balance (negative when owing) — in minor units.
    public var balance: Int64
    public var creditLimit: Int64
    public var limits: CardLimits
    /// Approved, unreversed amounts and count on this card today, before this one.
    public var todayAmount: Int64
    public var todayCount: Int
    public var pin: PINOutcome
}

/// The PIN check's outcome, made before the rules run.
public enum PINOutcome: Sendable, Hashable {
    case notPresent, verified, wrong, triesExceeded
    /// A PIN came for a card issued without one (its PIN mailer not yet set).
    case notSet
}

/// One authorization rule: nil to let the transaction through, a decline to stop it.
public protocol AuthorizationRule: Sendable {
    func evaluate(_ c: AuthorizationContext) -> AuthorizationDecision?
}

/// Rules in order; the first decline wins.
public struct RuleSet: Sendable {
    public var rules: [any AuthorizationRule]

    public init(_ rules: [any AuthorizationRule]) { self.rules = rules }

    /// Card status, expiry, PIN, per-transaction limit, daily amount, daily count, funds.
    public static let standard = RuleSet([CardStatusRule(), ExpiryRule(), PINRule(), TransactionLimitRule(),
                                          DailyLimitRule(), VelocityRule(), FundsRule()])

    public func evaluate(_ c: AuthorizationContext, approvalCode: () -> String) -> AuthorizationDecision {
        for rule in rules { if let decline = rule.evaluate(c) { return decline } }
        return .approved(authorizationCode: approvalCode())
    }
}

public struct CardStatusRule: AuthorizationRule {
    public init() {}
    public func evaluate(_ c: AuthorizationContext) -> AuthorizationDecision? {
        switch c.status {
        case .active: return nil
        case .lost: return .declined(.lostCard, reason: "card reported lost")
        case .stolen: return .declined(.stolenCard, reason: "card reported stolen")
        case .blocked: return .declined(.restrictedCard, reason: "card blocked")
        case .closed: return .declined(.doNotHonour, reason: "card closed")
        }
    }
}

public struct ExpiryRule: AuthorizationRule {
    public init() {}
    public func evaluate(_ c: AuthorizationContext) -> AuthorizationDecision? {
        c.cardExpiry < c.currentMonth ? .declined(.expiredCard, reason: "card expired \(c.cardExpiry)") : nil
    }
}

public struct PINRule: AuthorizationRule {
    public init() {}
    public func evaluate(_ c: AuthorizationContext) -> AuthorizationDecision? {
        switch c.pin {
        case .notPresent, .verified: return nil
        case .wrong: return .declined(.incorrectPIN, reason: "incorrect PIN")
        case .triesExceeded: return .declined(.pinTriesExceeded, reason: "PIN tries exceeded")
        case .notSet: return .declined(.incorrectPIN, reason: "no PIN is set for this card")
        }
    }
}

public struct TransactionLimitRule: AuthorizationRule {
    public init() {}
    public func evaluate(_ c: AuthorizationContext) -> AuthorizationDecision? {
        c.amount > c.limits.perTransaction ? .declined(.exceedsAmountLimit, reason: "over the per-transaction limit") : nil
    }
}

public struct DailyLimitRule: AuthorizationRule {
    public init() {}
    public func evaluate(_ c: AuthorizationContext) -> AuthorizationDecision? {
        c.todayAmount + c.amount > c.limits.daily ? .declined(.exceedsAmountLimit, reason: "over the daily limit") : nil
    }
}

public struct VelocityRule: AuthorizationRule {
    public init() {}
    public func evaluate(_ c: AuthorizationContext) -> AuthorizationDecision? {
        c.todayCount + 1 > c.limits.dailyCount ? .declined(.exceedsFrequencyLimit, reason: "too many transactions today") : nil
    }
}

public struct FundsRule: AuthorizationRule {
    public init() {}
    public func evaluate(_ c: AuthorizationContext) -> AuthorizationDecision? {
        let available = c.product == .debit ? c.balance : c.balance + c.creditLimit
        return c.amount > available ? .declined(.insufficientFunds, reason: "insufficient funds") : nil
    }
}
