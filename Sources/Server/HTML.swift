import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Server-rendered HTML for the console: every value escaped, no scripts, a strict content
/// security policy.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A table: headers and rows of cells already rendered (escape them when building).
    static func table(_ headers: [String], _ rows: [[String]], empty: String = "none yet") -> String {
        guard !rows.isEmpty else { return "<p class=\"muted\">\(escape(empty))</p>" }
        let head = headers.map { "<th>\(escape($0))</th>" }.joined()
        let body = rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>" }.joined(separator: "\n")
        return "<table><thead><tr>\(head)</tr></thead><tbody>\n\(body)\n</tbody></table>"
    }

    static let style = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
        header{background:#10365c;color:#fff;padding:10px 24px;display:flex;gap:20px;align-items:center}
        header b{font-size:16px;margin-right:12px}header a{color:#cfe0f5;text-decoration:none}header a.on{color:#fff;font-weight:600}
        header form{margin-left:auto}main{padding:18px 24px;max-width:1200px}h1{font-size:20px;margin:4px 0 14px}
        h2{font-size:16px;margin:22px 0 8px}table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:12px}
        th,td{border-bottom:1px solid #e3e6eb;padding:6px 9px;text-align:left;vertical-align:top}th{background:#eef1f5;font-weight:600}
        td.n{text-align:right;font-variant-numeric:tabular-nums}pre{background:#fff;border:1px solid #e3e6eb;padding:10px;overflow-x:auto;font-size:12px}
        .muted{color:#6b7280}.ok{color:#137333;font-weight:600}.bad{color:#b3261e;font-weight:600}.card{background:#fff;border:1px solid #e3e6eb;padding:12px 16px;display:inline-block;vertical-align:top;margin:0 12px 12px 0;min-width:150px;min-height:64px}
        .card b{display:block;font-size:22px}button{font:inherit;padding:3px 10px;cursor:pointer}select{font:inherit}form.inline{display:inline}
        """

    static let sections: [(path: String, title: String)] = [
        ("/console", "Overview"), ("/console/banks", "Banks"), ("/console/requestors", "Requestors"), ("/console/tokens", "Tokens"),
        ("/console/transactions", "Transactions"), ("/console/qr", "QR codes"), ("/console/settlement", "Settlement"),
    ]

    /// A whole page in the console's frame.
    static func page(_ title: String, section: String, body: String, formToken: String?, refreshSeconds: Int? = nil) -> Response {
        let nav = sections.map { "<a href=\"\($0.path)\"\($0.path == section ? " class=\"on\"" : "")>\($0.title)</a>" }.joined()
        let signOut = formToken.map { "<form method=\"post\" action=\"/console/logout\"><input type=\"hidden\" name=\"formToken\" value=\"\(escape($0))\"><button>Sign out</button></form>" } ?? ""
        let refresh = refreshSeconds.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? ""
        let html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title)) — CloudTap console</title>\(refresh)
            <meta name="viewport" content="width=device-width, initial-scale=1"><style>\(style)</style></head>
            <body><header><b>CloudTap</b>\(formToken == nil ? "" : nav)\(signOut)</header>
            <main><h1>\(escape(title))</h1>
            \(body)
            </main></body></html>
            """
        return response(html)
    }

    static func response(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func redirect(_ location: String, cookie: String? = nil) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        if let cookie { headers[.setCookie] = cookie }
        headers[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: headers)
    }

    /// Minor units as a decimal amount with two places (CNY and the like).
    static func money(_ minor: Int64) -> String {
        let sign = minor < 0 ? "-" : ""
        let v = minor.magnitude
        return "\(sign)\(v / 100).\(String(format: "%02d", Int(v % 100)))"
    }
}
