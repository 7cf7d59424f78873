import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import IssuerHost
import NIOCore
import PaymentCore
import PaymentCrypto
import QR
import Switch
import TokenService

/// The operator's console: server-rendered pages over the same services as the API — banks and
/// their ranges and keys (by KCV), token requestors, tokens (masked) with lifecycle actions,
/// live transactions, one transaction's whole trace, clearing and settlement.
///
/// Signing in: a one-time link (`POST /v1/operator/console-link`, or the one `serve` prints at
/// start), or the operator key typed into the sign-in form. The session lives in an HttpOnly,
/// SameSite=Strict cookie; every form carries the session's form token.
public struct Console: Sendable {
    let network: NetworkSwitch
    let settlement: Settlement
    let sessions = ConsoleSessions()
    /// Mark the cookie Secure (the API is served over TLS).
    let secureCookies: Bool

    public init(network: NetworkSwitch, settlement: Settlement, secureCookies: Bool = false) {
        self.network = network
        self.settlement = settlement
        self.secureCookies = secureCookies
    }

    /// A one-time sign-in path, valid for five minutes; `next` is the console page to open.
    public func signInPath(next: String? = nil) -> String {
        "/console/login?once=\(sessions.mintLink())" + (next.map { "&next=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "/-_"))) ?? "") } ?? "")
    }

    static let cookieName = "cloudtap_console"

    func cookie(_ id: String?) -> String {
        guard let id else { return "\(Self.cookieName)=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict" }
        return "\(Self.cookieName)=\(id); Path=/console; Max-Age=\(Int(sessions.sessionLifetime)); HttpOnly; SameSite=Strict\(secureCookies ? "; Secure" : "")"
    }

    func sessionID(_ request: Request) -> String? {
        for field in request.headers[values: .cookie] {
            for part in field.split(separator: ";") {
                let pair = part.trimmingCharacters(in: .whitespaces)
                if pair.hasPrefix(Self.cookieName + "=") { return String(pair.dropFirst(Self.cookieName.count + 1)) }
            }
        }
        return nil
    }

    func session(_ request: Request) -> ConsoleSessions.Session? { sessionID(request).flatMap { sessions.session($0) } }
}

struct ConsoleForm: Decodable {
    var formToken: String?
    var key: String?
    var reason: String?
}

extension CloudAPI {
    func addConsoleRoutes(_ router: Router<CloudRequestContext>, console: Console) {
        let pages = router.group("console")

        pages.get("login") { request, _ -> Response in
            if let once = request.uri.queryParameters.get("once") {
                guard let id = console.sessions.redeem(once) else {
                    return HTML.page("Sign in", section: "", body: "<p class=\"bad\">That sign-in link was used or has expired.</p>" + Self.signInForm, formToken: nil)
                }
                // Only a console page may follow (never another site).
                let next = request.uri.queryParameters.get("next").map { String($0) }
                let safe = next.flatMap { $0.hasPrefix("/console") && !$0.contains("//") && !$0.contains("\\") ? $0 : nil } ?? "/console"
                return HTML.redirect(safe, cookie: console.cookie(id))
            }
            return HTML.page("Sign in", section: "", body: Self.signInForm, formToken: nil)
        }
        pages.post("login") { request, context -> Response in
            let form = try await Self.form(request)
            guard let expected = operatorKeyHash, let key = form.key, constantTimeEqual(Array(SHA256.hash(data: Array(key.utf8))), expected) else {
                return HTML.page("Sign in", section: "", body: "<p class=\"bad\">That is not the operator key.</p>" + Self.signInForm, formToken: nil)
            }
            return HTML.redirect("/console", cookie: console.cookie(console.sessions.open()))
        }
        pages.post("logout") { request, _ -> Response in
            if let id = console.sessionID(request), let session = console.sessions.session(id), try await Self.form(request).formToken == session.formToken {
                console.sessions.close(id)
            }
            return HTML.redirect("/console/login", cookie: console.cookie(nil))
        }

        pages.get("") { request, _ -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            let banks = try await issuer.banks()
            let counts = try await tsp.tokenCounts()
            let recent = try await console.network.recentTransactions(limit: 10)
            let trial = try await issuer.trialBalance()
            let mismatches = try await issuer.balanceMismatches()
            var body = "<div>"
            body += "<div class=\"card\">Banks<b>\(banks.count)</b></div>"
            body += "<div class=\"card\">Active tokens<b>\(counts[.active] ?? 0)</b><span class=\"muted\">\(counts[.suspended] ?? 0) suspended, \(counts[.deleted] ?? 0) deleted</span></div>"
            body += "<div class=\"card\">Trial balance<b class=\"\(trial == 0 ? "ok" : "bad")\">\(HTML.money(trial))</b><span class=\"muted\">\(mismatches.count) accounts off their ledger</span></div>"
            body += "</div><h2>Latest transactions</h2>" + Self.transactionTable(recent)
            return HTML.page("Overview", section: "/console", body: body, formToken: session.formToken)
        }

        pages.get("banks") { request, _ -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            var body = ""
            for bank in try await issuer.banks() {
                let view = try await bankView(bank)
                body += "<h2>\(HTML.escape(view.id)) — \(HTML.escape(view.name))</h2><p class=\"muted\">institution \(HTML.escape(view.institutionId))</p>"
                body += HTML.table(["Kind", "Low", "High"], view.binRanges.map { [HTML.escape($0.kind), HTML.escape($0.low), HTML.escape($0.high)] }, empty: "no BIN ranges")
                body += HTML.table(["Key", "Usage", "Algorithm", "KCV"], view.keys.map {
                    [HTML.escape($0.name), HTML.escape($0.usage), "\(HTML.escape($0.algorithm))-\($0.lengthBits)", "<code>\(HTML.escape($0.kcv))</code>"]
                }, empty: "no keys")
            }
            return HTML.page("Banks, BIN ranges and keys", section: "/console/banks", body: body, formToken: session.formToken)
        }

        pages.get("requestors") { request, _ -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            let rows = try await tsp.requestors().map { [HTML.escape($0.id), HTML.escape($0.name), "<a href=\"/console/tokens?requestor=\(HTML.escape($0.id))\">tokens</a>"] }
            return HTML.page("Token requestors", section: "/console/requestors", body: HTML.table(["Id", "Name", ""], rows), formToken: session.formToken)
        }

        pages.get("tokens") { request, _ -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            let state = request.uri.queryParameters.get("state").flatMap(TokenState.init(rawValue:))
            let requestor: String? = request.uri.queryParameters.get("requestor").map { String($0) }
            let tokens = try await tsp.tokens(requestor: requestor, state: state, limit: 200)
            let filters = ([nil] + TokenState.allCases).map { s in
                "<a href=\"/console/tokens\(s.map { "?state=\($0.rawValue)" } ?? "")\">\(s?.rawValue ?? "all")</a>"
            }.joined(separator: " · ")
            let rows = tokens.map { t -> [String] in
                let actions = [LifecycleAction.suspend, .resume, .delete].filter { $0.target(from: t.state) != nil }.map { action in
                    let reasons = action.allowedReasons.map(\.rawValue).sorted().map { "<option>\($0)</option>" }.joined()
                    return "<form class=\"inline\" method=\"post\" action=\"/console/tokens/\(t.id)/\(action.rawValue)\">"
                        + "<input type=\"hidden\" name=\"formToken\" value=\"\(HTML.escape(session.formToken))\">"
                        + "<select name=\"reason\" aria-label=\"reason\">\(reasons)</select> <button>\(action.rawValue)</button></form>"
                }.joined(separator: " ")
                return ["\(t.id)", "<code>\(HTML.escape(t.maskedToken))</code>", HTML.escape(t.tokenExpiry), HTML.escape(t.state.rawValue), HTML.escape(t.bankID),
                        HTML.escape(t.requestorID), HTML.escape(t.deviceID), actions]
            }
            let body = "<p>\(filters)</p>" + HTML.table(["Id", "Token", "Expiry", "State", "Bank", "Requestor", "Device", "Lifecycle"], rows, empty: "no tokens")
            return HTML.page("Tokens", section: "/console/tokens", body: body, formToken: session.formToken)
        }
        pages.post("tokens/:id/:action") { request, context -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            let form = try await Self.form(request)
            guard let given = form.formToken, constantTimeEqual(Array(given.utf8), Array(session.formToken.utf8)) else {
                return HTML.page("Refused", section: "/console/tokens", body: "<p class=\"bad\">The form is stale; reload the page and try again.</p>",
                                 formToken: session.formToken)
            }
            guard let id = context.parameters.get("id", as: Int64.self), let action = context.parameters.get("action").flatMap(LifecycleAction.init(rawValue:)),
                  let reason = form.reason.flatMap(TokenReason.init(rawValue:)) else { throw APIProblem.notFound }
            do {
                _ = try await tsp.change(tokenID: id, action, actor: .system, reason: reason)
            } catch {
                return HTML.page("Refused", section: "/console/tokens", body: "<p class=\"bad\">\(HTML.escape("\(error)"))</p>", formToken: session.formToken)
            }
            return HTML.redirect("/console/tokens")
        }

        pages.get("transactions") { request, _ -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            let recent = try await console.network.recentTransactions(limit: 100)
            let body = "<p class=\"muted\">The latest 100, newest first; the page refreshes every two seconds.</p>" + Self.transactionTable(recent)
            return HTML.page("Live transactions", section: "/console/transactions", body: body, formToken: session.formToken, refreshSeconds: 2)
        }
        pages.get("transactions/:id") { request, context -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            guard let id = context.parameters.get("id", as: Int64.self), let trace = try await console.network.trace(transactionID: id) else { throw APIProblem.notFound }
            var body = Self.transactionTable([trace.summary])
            body += "<p>Reason: \(HTML.escape(trace.summary.reason))</p>"
            for line in trace.lines {
                body += "<h2>\(HTML.escape(line.direction))\(line.mti.isEmpty ? "" : " · \(HTML.escape(line.mti))")</h2><pre>\(HTML.escape(line.text))</pre>"
            }
            if let decision = trace.issuerDecision {
                body += "<h2>Issuer decision \(HTML.escape(decision)) — ledger</h2>"
                body += HTML.table(["Account", "Amount", "Memo"], trace.postings.map { [HTML.escape($0.account), "<span class=\"n\">\(HTML.money($0.amount))</span>", HTML.escape($0.memo)] })
            }
            if !trace.followUps.isEmpty {
                body += "<h2>Owed to the issuer</h2><ul>" + trace.followUps.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>"
            }
            return HTML.page("Transaction #\(id)", section: "/console/transactions", body: body, formToken: session.formToken)
        }

        // A merchant's QR code (EMV MPM with UnionPay's ID 15), static or for one amount, as its
        // counter would show it, and the payments made by scanning it.
        pages.get("qr") { request, _ -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            let q = request.uri.queryParameters
            let merchantID = q.get("merchant").map { String($0) } ?? "MERCHANT0000001"
            let acquirer = q.get("acquirer").map { String($0) } ?? "01020000"
            let name = q.get("name").map { String($0) } ?? "CLOUDTAP COFFEE"
            let city = q.get("city").map { String($0) } ?? "SHANGHAI"
            let amount = q.get("amount").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
            func field(_ label: String, _ key: String, _ value: String) -> String {
                "<label>\(HTML.escape(label)) <input name=\"\(key)\" value=\"\(HTML.escape(value))\"></label> "
            }
            var body = "<form method=\"get\" action=\"/console/qr\">" + field("Merchant id", "merchant", merchantID) + field("Acquirer IIN", "acquirer", acquirer)
                + field("Name", "name", name) + field("City", "city", city) + field("Amount (empty: static)", "amount", amount ?? "") + "<button>Show</button></form>"
            guard merchantID.count == 15, acquirer.count == 8, amount.map({ (try? Amount($0, currency: .cny)) != nil }) ?? true else {
                body += "<p class=\"bad\">A merchant id is 15 characters, an acquirer IIN 8, an amount a decimal such as 38.50.</p>"
                return HTML.page("QR codes", section: "/console/qr", body: body, formToken: session.formToken)
            }
            let code = MerchantPresentedCode(
                initiation: amount == nil ? .staticCode : .dynamicCode,
                merchantAccounts: [UnionPayMerchant(acquirerIIN: acquirer, forwardingIIN: "00090000", merchantID: merchantID).object],
                merchantCategoryCode: "5814", currency: "156", amount: amount, countryCode: "CN", merchantName: String(name.prefix(25)), merchantCity: String(city.prefix(15)))
            let payload = code.payload
            let symbol = try QRCode(text: payload, errorCorrection: .medium)
            body += "<h2>\(amount == nil ? "Static code" : "Dynamic code for \(HTML.escape(amount!)) CNY") — QR \(symbol.version)-M</h2>"
            body += "<div style=\"width:240px;background:#fff;padding:8px;border:1px solid #e3e6eb\">" + symbol.svg(moduleSize: 4, border: 2) + "</div>"
            body += "<pre>\(HTML.escape(payload))</pre>"
            let payments = try await console.network.qrPayments(merchantID: merchantID)
            body += "<h2>Payments by QR code to \(HTML.escape(merchantID))</h2>" + HTML.table(["#", "Time", "Reference", "Code", "Amount", "Token", "Answer", "Approval"], payments.reversed().map {
                ["\($0.id)", HTML.escape($0.createdAt), HTML.escape($0.reference), $0.staticCode ? "static" : "dynamic", HTML.money($0.amount), "…\(HTML.escape($0.tokenLastFour))",
                 "<span class=\"\($0.responseCode == "00" ? "ok" : "bad")\">\(HTML.escape($0.responseCode))</span>", HTML.escape($0.authorizationCode ?? "")]
            }, empty: "no payments yet")
            return HTML.page("QR codes", section: "/console/qr", body: body, formToken: session.formToken)
        }

        pages.get("settlement") { request, _ -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            let batches = try await console.settlement.batches()
            var body = "<form method=\"post\" action=\"/console/settlement\"><input type=\"hidden\" name=\"formToken\" value=\"\(HTML.escape(session.formToken))\">"
                + "<button>Cut off now and clear</button> <span class=\"muted\">clears every approved, unreversed transaction not yet cleared, and takes back cleared ones reversed since</span></form>"
            body += "<h2>Batches</h2>" + HTML.table(["Batch", "Cut-off", "Transactions", "Reversals", "Total"], batches.map {
                ["<a href=\"/console/settlement/\($0.id)\">#\($0.id)</a>", HTML.escape($0.cutoff), "\($0.transactions)", "\($0.reversals)", HTML.money($0.total)]
            }, empty: "no batches yet")
            return HTML.page("Clearing and settlement", section: "/console/settlement", body: body, formToken: session.formToken)
        }
        pages.post("settlement") { request, _ -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            guard let given = try await Self.form(request).formToken, constantTimeEqual(Array(given.utf8), Array(session.formToken.utf8)) else {
                return HTML.redirect("/console/settlement")
            }
            let report = try await console.settlement.run()
            return HTML.redirect("/console/settlement/\(report.batch)")
        }
        pages.get("settlement/:batch") { request, context -> Response in
            guard let session = console.session(request) else { return HTML.redirect("/console/login") }
            guard let batch = context.parameters.get("batch", as: Int64.self), let report = try await Self.report(batch, from: console.settlement) else { throw APIProblem.notFound }
            var body = "<p>Cut-off \(HTML.escape(report.cutoff)): \(report.transactions) transactions, \(report.reversals) earlier ones reversed and taken back, \(HTML.money(report.total)). "
                + "Positions and network income \(report.balances ? "<span class=\"ok\">sum to zero</span>" : "<span class=\"bad\">do not sum to zero</span>").</p>"
            body += "<h2>Net position per bank</h2>" + HTML.table(["Bank", "Issued", "Acquired", "Interchange", "Fees", "Net"], report.positions.map {
                [HTML.escape($0.bank), HTML.money($0.issued), HTML.money($0.acquired), HTML.money($0.interchange), HTML.money($0.fees), "<b>\(HTML.money($0.net))</b>"]
            })
            body += "<p>Network fee income: \(HTML.money(report.networkIncome)) · <a href=\"/console/settlement/\(batch)/positions.csv\">positions CSV</a> · "
                + "<a href=\"/console/settlement/\(batch)/merchants.csv\">merchant settlement file (CSV)</a></p>"
            body += "<h2>Merchants</h2>" + HTML.table(["Acquirer", "Merchant", "Sales", "Gross", "Discount", "Paid"], report.merchants.map {
                [HTML.escape($0.acquirer), HTML.escape($0.merchant), "\($0.transactions)", HTML.money($0.gross), HTML.money($0.discount), HTML.money($0.net)]
            })
            return HTML.page("Settlement batch #\(batch)", section: "/console/settlement", body: body, formToken: session.formToken)
        }
        pages.get("settlement/:batch/:file") { request, context -> Response in
            guard console.session(request) != nil else { return HTML.redirect("/console/login") }
            guard let batch = context.parameters.get("batch", as: Int64.self), let report = try await Self.report(batch, from: console.settlement) else { throw APIProblem.notFound }
            let csv: String
            switch context.parameters.get("file") {
            case "positions.csv": csv = report.positionsCSV
            case "merchants.csv": csv = report.merchantCSV
            default: throw APIProblem.notFound
            }
            var headers = HTTPFields()
            headers[.contentType] = "text/csv; charset=utf-8"
            headers[.contentDisposition] = "attachment; filename=\"batch-\(batch)-\(context.parameters.get("file") ?? "")\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: csv)))
        }
    }

    static let signInForm = """
        <form method="post" action="/console/login"><p>Operator key<br><input type="password" name="key" size="70" autocomplete="off" autofocus></p>
        <p><button>Sign in</button></p></form>
        <p class="muted">Or open the one-time link <code>cloudtap serve</code> printed, or one from <code>POST /v1/operator/console-link</code>.</p>
        """

    static func form(_ request: Request) async throws -> ConsoleForm {
        let buffer = try await request.body.collect(upTo: 16_384)
        return (try? URLEncodedFormDecoder().decode(ConsoleForm.self, from: String(buffer: buffer))) ?? ConsoleForm()
    }

    static func transactionTable(_ rows: [TransactionTrace.Summary]) -> String {
        HTML.table(["#", "Time", "Terminal", "STAN", "Token", "Amount", "Bank", "Answer", "Approval", "State"], rows.map { t in
            let code = t.responseCode ?? "--"
            return ["<a href=\"/console/transactions/\(t.id)\">\(t.id)</a>", HTML.escape(t.createdAt), HTML.escape(t.terminalID), HTML.escape(t.stan),
                    "…\(HTML.escape(t.tokenLastFour))", HTML.money(t.amount), HTML.escape(t.bank ?? ""),
                    "<span class=\"\(code == "00" ? "ok" : "bad")\">\(HTML.escape(code))</span>", HTML.escape(t.authorizationCode ?? ""), HTML.escape(t.state)]
        }, empty: "no transactions yet")
    }
}
