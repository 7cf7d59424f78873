import CloudWire
import Foundation
import HTTPTypes
import Hummingbird
import ISO8583
import PaymentCore
import QR
import Switch
import Terminal
import TokenService

/// Merchant-presented QR: the wallet scanned a merchant's code and pays it. The cloud acts as
/// the acquiring front for the merchant named in the code's UnionPay account (ID 15): it turns
/// the wallet's credential into the 0200 a terminal would send (DE22 032, the merchant's
/// acquirer, merchant id and terminal label) and puts it through the switch, which checks the
/// cryptogram, de-tokenizes and asks the issuer as for a tap. The merchant's POS learns the
/// result by polling its payments.
extension CloudAPI {
    func addQRRoutes(_ router: Router<CloudRequestContext>) {
        router.post("v1/tokens/:id/qr-payments") { request, context -> MerchantPaymentAnswer in
            let principal = try await authenticate(request, context)
            guard case .requestor = principal else { throw APIProblem(.forbidden, code: "requestor-only", detail: "only the token's wallet pays with it") }
            let token = try await visibleToken(context.parameters.get("id", as: Int64.self), to: principal)
            let bytes = Array(try await request.body.collect(upTo: 64 * 1024).readableBytesView)
            try await requireDevice(request, token: token, body: bytes)
            guard let network else { throw APIProblem(.notFound, code: "qr-payments-disabled", detail: "this server does not reach the switch") }
            guard let body = try? JSONDecoder().decode(QRPaymentBody.self, from: Data(bytes)) else { throw APIProblem.badRequest("payload and credential are required") }
            let code: MerchantPresentedCode
            do { code = try MerchantPresentedCode(payload: body.payload) } catch {
                throw APIProblem(.unprocessableContent, code: "qr-payload-invalid", detail: "\(error)")
            }
            guard let merchant = code.unionPay else {
                throw APIProblem(.unprocessableContent, code: "qr-no-unionpay-account", detail: "the code has no UnionPay merchant account (ID 15)")
            }
            guard code.currency == "156", let currency = Currency(code: code.currency) else {
                throw APIProblem(.unprocessableContent, code: "qr-currency", detail: "only CNY (156) codes are accepted")
            }
            let amountText: String
            switch (code.amount, body.amount) {
            case let (fixed?, given?) where fixed != given: throw APIProblem(.unprocessableContent, code: "qr-amount-mismatch", detail: "the code's amount is \(fixed)")
            case let (fixed?, _): amountText = fixed
            case let (nil, given?): amountText = given
            case (nil, nil): throw APIProblem.badRequest("the code has no amount: the payer keys one (amount)")
            }
            guard let amount = try? Amount(amountText, currency: currency), amount.minorUnits > 0 else { throw APIProblem.badRequest("amount is a positive decimal, e.g. 38.50") }
            // Static codes: the regulator's daily cap per bank, counted per token.
            let isStatic = code.initiation != .dynamicCode
            if isStatic, let cap = configuration.staticQRDailyLimits[token.bankID] ?? configuration.staticQRDailyLimit {
                let spent = try await network.staticQRTotal(tokenID: token.id)
                if spent + amount.minorUnits > cap {
                    throw APIProblem(.forbidden, code: "qr-static-limit", detail: "static-code payments today would exceed \(Amount(minorUnits: cap, currency: currency))")
                }
            }
            let credential: ConsumerPresentedCode
            let online: OnlineRequest
            do {
                credential = try ConsumerPresentedCode(base64: body.credential)
                online = try OnlineRequest(consumerPresented: credential)
            } catch {
                throw APIProblem(.unprocessableContent, code: "qr-credential-invalid", detail: "\(error)")
            }
            guard online.pan.lastFour == token.tokenLastFour, token.maskedToken.hasPrefix(String(online.pan.digits.prefix(6))) else {
                throw APIProblem(.forbidden, code: "qr-credential-other-token", detail: "the credential is for another token")
            }
            let label = code.additionalData.first { $0.id == "07" }?.value
            let terminalID = String((label ?? "QRPAY001").prefix(8)).padding(toLength: 8, withPad: " ", startingAt: 0)
            // DE43 is ASCII: a name or city in another script is replaced by the merchant id.
            let name = code.merchantName.allSatisfy(\.isASCII) ? code.merchantName : merchant.merchantID
            let city = code.merchantCity.allSatisfy(\.isASCII) ? code.merchantCity : ""
            let nameLocation = name.prefix(25).padding(toLength: 25, withPad: " ", startingAt: 0) + city.prefix(13).padding(toLength: 13, withPad: " ", startingAt: 0) + "CN"
            let terminal = MerchantTerminal(terminalID: terminalID, merchantID: merchant.merchantID, acquirerID: merchant.acquirerIIN,
                                            merchantNameLocation: String(nameLocation), merchantType: code.merchantCategoryCode)
            let now = Date()
            var authorization = OnlineAuthorization.request(for: online, amount: amount, stan: UInt32.random(in: 1...999_999), at: now, terminal: terminal, pinBlock: nil)
            authorization.posEntryMode = "032"
            let answer = await network.handle(authorization.message)
            let responseCode = answer[39] ?? "96"
            let reference = "\(authorization.terminalID)/\(authorization.stan)/\(authorization.transmissionDateTime)"
            _ = try await network.recordQRPayment(requestKey: reference, tokenID: token.id, tokenLastFour: token.tokenLastFour, merchantID: merchant.merchantID,
                                                  reference: code.additionalData.first { $0.id == "05" }?.value ?? "", staticCode: isStatic,
                                                  amount: amount.minorUnits, responseCode: responseCode, authorizationCode: answer[38], at: now)
            return MerchantPaymentAnswer(approved: responseCode == "00", responseCode: responseCode, authorizationCode: answer[38], reference: reference,
                                   merchantName: code.merchantName, amount: amountText)
        }
        // The merchant's POS polls for the payments made to it (the acquiring bank's key, or the operator's).
        router.get("v1/merchants/:merchant/qr-payments") { request, context -> QRPaymentList in
            guard let network else { throw APIProblem(.notFound, code: "qr-payments-disabled", detail: "this server does not reach the switch") }
            guard let merchant = context.parameters.get("merchant") else { throw APIProblem.notFound }
            if (try? requireOperator(request)) == nil {
                guard case .bank = try await authenticate(request, context) else { throw APIProblem.unauthorized }
            }
            let after = request.uri.queryParameters.get("after", as: Int64.self) ?? 0
            return QRPaymentList(payments: try await network.qrPayments(merchantID: merchant, after: after))
        }
    }
}

struct QRPaymentBody: Decodable, Sendable {
    let payload: String
    /// The amount keyed by the payer, for a code without one (decimal, e.g. "38.50").
    let amount: String?
    /// The wallet's credential: a CPV01 structure, base64.
    let credential: String
}

extension MerchantPaymentAnswer: ResponseCodable {}

struct QRPaymentList: ResponseCodable { let payments: [QRPaymentRecord] }
extension QRPaymentRecord: ResponseCodable {}
