import Foundation
import ISO8583
import PaymentCore

/// The customer's receipt: the token only masked (first six, last four), the application, the
/// cryptogram and the issuer's answer.
public enum Receipt {
    public static func text(merchant: MerchantTerminal, request: AuthorizationRequest, online: OnlineRequest, response: AuthorizationResponse, date: Date) -> String {
        let width = 32
        func line(_ left: String, _ right: String) -> String {
            let gap = max(1, width - left.count - right.count)
            return left + String(repeating: " ", count: gap) + right
        }
        let name = merchant.merchantNameLocation.prefix(25).trimmingCharacters(in: .whitespaces)
        var lines = [
            String(name), line("TID \(merchant.terminalID)", "MID \(merchant.merchantID.suffix(8))"),
            "UnionPay QuickPass (contactless)", request.pan.masked,
            line("AID", online.aid.hexString), line("ATC", online.data[0x9F36]?.hexString ?? ""), line("ARQC", online.data[0x9F26]?.hexString ?? ""),
            line("DATE", UTCTime(date).isoDateTime), line("STAN \(request.stan)", "RRN \(request.retrievalReference ?? "")"),
            "", line("SALE", request.amount.description), "",
        ]
        if response.isApproved {
            lines.append(line("APPROVED", "AUTH \(response.authorizationCode ?? "")"))
            lines.append(request.pinBlock != nil ? "PIN VERIFIED ONLINE" : "NO SIGNATURE REQUIRED")
        } else {
            lines.append(line("DECLINED", "RC \(response.responseCode)"))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
