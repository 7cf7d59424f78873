import Foundation
import HTTPTypes
import Hummingbird

/// An error answered as RFC 9457 problem details (`application/problem+json`) with a stable
/// machine-readable code.
public struct APIProblem: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    /// Stable code clients may switch on, e.g. "otp-wrong", "token-not-yours".
    public let code: String
    public let detail: String

    public init(_ status: HTTPResponse.Status, code: String, detail: String) {
        self.status = status
        self.code = code
        self.detail = detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body: [String: Any] = [
            "type": "https://cloudtap.invalid/problems/\(code)", "title": status.reasonPhrase, "status": Int(status.code),
            "code": code, "detail": detail,
        ]
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        return Response(status: status, headers: [.contentType: "application/problem+json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func badRequest(_ detail: String) -> APIProblem { APIProblem(.badRequest, code: "bad-request", detail: detail) }
    static let unauthorized = APIProblem(.unauthorized, code: "unauthorized", detail: "a valid token requestor id and API key are required")
    static let notFound = APIProblem(.notFound, code: "not-found", detail: "no such resource")
}

/// Adds a request id to every response (taken from `X-Request-Id` when the client sent one),
/// and turns errors into problem details so they carry it too.
struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    static var header: HTTPField.Name { HTTPField.Name("X-Request-Id")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = request.headers[Self.header] ?? UUID().uuidString
        var response: Response
        do {
            response = try await next(request, context)
        } catch let problem as APIProblem {
            response = try problem.response(from: request, context: context)
        } catch let error as HTTPResponseError {
            response = try APIProblem(error.status, code: "http-\(error.status.code)", detail: error.status.reasonPhrase).response(from: request, context: context)
        } catch {
            response = try APIProblem(.internalServerError, code: "internal", detail: "the request could not be completed").response(from: request, context: context)
        }
        response.headers[Self.header] = id
        return response
    }
}
