import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestSupport
import Testing

/// Plain HTTP for the console tests: no redirects followed, no cookies kept (the test carries
/// the session cookie itself, so it sees exactly what the server sets).
final class ConsoleClient: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    struct Page { let status: Int; let headers: [String: String]; let body: String }
    let base: String
    var cookie: String?
    lazy var session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpShouldSetCookies = false
        configuration.httpCookieAcceptPolicy = .never
        return URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
    }()

    init(base: String) { self.base = base }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse, newRequest request: URLRequest,
                    completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)
    }

    func get(_ path: String) async throws -> Page { try await send("GET", path, form: nil) }

    func post(_ path: String, form: [String: String], bearer: String? = nil) async throws -> Page { try await send("POST", path, form: form, bearer: bearer) }

    func send(_ method: String, _ path: String, form: [String: String]?, bearer: String? = nil) async throws -> Page {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        if let cookie { request.setValue(cookie, forHTTPHeaderField: "Cookie") }
        if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
        if let form {
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&").utf8)
        }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields { headers[String(describing: k).lowercased()] = String(describing: v) }
        return Page(status: http.statusCode, headers: headers, body: String(decoding: data, as: UTF8.self))
    }

    /// A one-time sign-in path from the operator API.
    func signInPath(operatorKey: String, next: String? = nil) async throws -> String {
        let page = try await send("POST", "/v1/operator/console-link" + (next.map { "?next=\($0)" } ?? ""), form: nil, bearer: operatorKey)
        let object = try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [String: Any]
        return object?["path"] as? String ?? ""
    }
}

extension NetworkProcessTests {
@Suite("the operator console")
struct ConsoleTests {
    /// Every page of the console, and what each must show.
    static let pages: [(path: String, shows: String)] = [
        ("/console", "Trial balance"), ("/console/banks", "KCV"), ("/console/requestors", "WALLET00001"),
        ("/console/tokens", "suspend"), ("/console/transactions", "approved"), ("/console/qr?amount=18.00", "Dynamic code for 18.00 CNY"),
        ("/console/settlement", "Cut off now"),
    ]

    @Test("sign-in by one-time link or operator key; every page renders, masked; a token suspended and a day settled from the console; headless Chromium screenshots")
    func console() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("console-\(UUID().uuidString.prefix(8))").path
        let serve = try ServeProcess(dataDirectory: (dir as NSString).appendingPathComponent("network"))
        try await serve.start()
        defer { _ = serve.stopBlocking(); try? FileManager.default.removeItem(atPath: dir) }
        // Traffic: two terminals for two seconds.
        let load = try await CLI.run(["load", "--api", serve.api, "--switch", "127.0.0.1:\(serve.switchPort)", "--data-dir", serve.dataDirectory,
                                "--terminals", "2", "--duration", "2", "--rate", "40"])
        #expect(load.status == 0, "\(load.stdout)\(load.stderr)")
        let operatorKey = try serve.operatorKey
        let client = ConsoleClient(base: serve.api)

        // Not signed in: every page sends the browser to the sign-in form.
        for page in Self.pages {
            let answer = try await client.get(page.path)
            #expect(answer.status == 303 && answer.headers["location"] == "/console/login", "\(page.path)")
        }
        #expect(try await client.post("/console/login", form: ["key": "not-the-key"]).body.contains("not the operator key"))
        let byKey = try await client.post("/console/login", form: ["key": operatorKey])
        #expect(byKey.status == 303 && byKey.headers["set-cookie"]?.contains("HttpOnly; SameSite=Strict") == true)

        // A one-time link signs in once.
        let link = try await client.signInPath(operatorKey: operatorKey)
        let first = try await client.get(link)
        #expect(first.status == 303)
        let cookie = try #require(first.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
        #expect(try await client.get(link).body.contains("used or has expired"))
        client.cookie = cookie

        // Every page, with what it must show, and no card or token number in full.
        for page in Self.pages {
            let answer = try await client.get(page.path)
            #expect(answer.status == 200, "\(page.path)")
            #expect(answer.body.contains(page.shows), "\(page.path) lacks \(page.shows)")
            #expect(answer.headers["content-security-policy"]?.contains("default-src 'none'") == true)
            #expect(!Self.showsCardNumber(answer.body), "\(page.path) shows a card number")
        }

        // One transaction's whole trace: the messages, the token service's check, the ledger.
        let list = try await client.get("/console/transactions")
        let id = try #require(list.body.range(of: "/console/transactions/").map { list.body[$0.upperBound...].prefix { $0.isNumber } })
        let trace = try await client.get("/console/transactions/\(id)")
        #expect(trace.body.contains("terminal → switch"))
        #expect(trace.body.contains("switch → issuer BANKA"))
        #expect(trace.body.contains("cryptogram verified"))
        #expect(trace.body.contains("network-payable"))
        #expect(!Self.showsCardNumber(trace.body))
        #expect(Self.showsCardNumber("DE 2: 6234560000000016 ") && !Self.showsCardNumber("DE 2: 623456******0016"))

        // A lifecycle action: refused without the session's form token, done with it.
        let tokens = try await client.get("/console/tokens")
        let formToken = try #require(Self.formToken(in: tokens.body))
        let action = try #require(tokens.body.range(of: "/console/tokens/").map { tokens.body[$0.upperBound...].prefix { $0 != "\"" } })
        #expect(action.hasSuffix("/suspend"))
        #expect(try await client.post("/console/tokens/\(action)", form: ["reason": "lost"]).body.contains("stale"))
        #expect(try await client.get("/console/tokens?state=suspended").body.contains("no tokens"))
        #expect(try await client.post("/console/tokens/\(action)", form: ["reason": "lost", "formToken": formToken]).status == 303)
        #expect(try await client.get("/console/tokens?state=suspended").body.contains(">suspended<"))

        // End of day from the console: the batch, the positions summing to zero, the CSV.
        let settled = try await client.post("/console/settlement", form: ["formToken": formToken])
        let batchPath = try #require(settled.headers["location"])
        let batch = try await client.get(batchPath)
        #expect(batch.body.contains("sum to zero"))
        let csv = try await client.get(batchPath + "/merchants.csv")
        #expect(csv.body.hasPrefix("batch,acquirer,merchant,transactions,gross,discount,net"))
        #expect(csv.body.contains("LOADMERCH000001"))

        // Signed out: the cookie no longer opens a page.
        _ = try await client.post("/console/logout", form: ["formToken": formToken])
        #expect(try await client.get("/console").status == 303)

        // Headless Chromium, where installed: each page rendered and saved as a screenshot.
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: FileManager.default.isExecutableFile) else {
            print("ConsoleTests: no Chromium installed; the pages were checked over HTTP only (apt-get install chromium)")
            return
        }
        let shots = FileManager.default.temporaryDirectory.appendingPathComponent("cloudtap-console-screenshots").path
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)
        @Sendable func chromiumRun(_ arguments: [String]) throws -> (status: Int32, output: String) {
            try runTool(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,900"] + arguments)
        }
        for page in Self.pages + [("/console/transactions/\(id)", "switch → issuer BANKA"), (batchPath, "sum to zero")] {
            // The DOM the browser built, signed in by a one-time link: the page, not the sign-in form.
            let domLink = serve.api + (try await client.signInPath(operatorKey: operatorKey, next: page.path))
            let (status, dom) = try await offPool { try chromiumRun(["--dump-dom", domLink]) }
            #expect(status == 0 && dom.contains(page.shows) && !dom.contains("Operator key"), "Chromium's DOM of \(page.path)")
            let file = (shots as NSString).appendingPathComponent((page.path == "/console" ? "overview" : page.path.dropFirst(9).replacingOccurrences(of: "/", with: "-")) + ".png")
            try? FileManager.default.removeItem(atPath: file)
            let shotLink = serve.api + (try await client.signInPath(operatorKey: operatorKey, next: page.path))
            let (shot, _) = try await offPool { try chromiumRun(["--screenshot=\(file)", shotLink]) }
            let png = (try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()
            #expect(shot == 0 && png.count > 10_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "screenshot of \(page.path): \(png.count) bytes")
            // The merchant's code as the browser drew it scans back to its payload.
            if page.path.hasPrefix("/console/qr"), FileManager.default.isExecutableFile(atPath: "/usr/bin/zbarimg") {
                let scanned = try await offPool { try runTool("/usr/bin/zbarimg", ["--raw", "-q", file]) }.output
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(scanned.hasPrefix("00020101021215") && scanned.contains("540518.00"), "scanned: \(scanned)")
            }
        }
        print("ConsoleTests: screenshots in \(shots)")
    }

    /// Whether the page shows a whole card or token number: 16 to 19 digits in the network's
    /// ranges (62…), standing alone (amounts, RRNs and AIDs are other lengths or prefixes).
    static func showsCardNumber(_ html: String) -> Bool {
        // Form tokens are random hex; only what the page shows counts.
        let shown = html.replacingOccurrences(of: #"value="[^"]*""#, with: "", options: .regularExpression)
        return shown.range(of: #"(?<![0-9A-Fa-f])62[0-9]{14,17}(?![0-9])"#, options: .regularExpression) != nil
    }

    static func formToken(in html: String) -> String? {
        guard let r = html.range(of: #"name="formToken" value=""#) else { return nil }
        return String(html[r.upperBound...].prefix { $0 != "\"" })
    }
}
}
