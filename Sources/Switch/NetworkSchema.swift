import Storage

/// The switch's tables (migration ids 3000–3999).
public enum NetworkSchema {
    public static let migrations: [Migration] = [
        Migration(id: 3000, name: "switch transactions") { e in [
            // One row per terminal request, by its key (terminal, STAN, transmission time): a
            // duplicate finds the first answer here. Card numbers are not stored — only the
            // token's last four digits and the issuer-side key.
            """
            CREATE TABLE net_transactions (id \(e.autoID), request_key TEXT NOT NULL UNIQUE, terminal_id TEXT NOT NULL, stan TEXT NOT NULL,
                token_last4 TEXT NOT NULL, bank_id TEXT, amount \(e.bigint) NOT NULL, currency INTEGER NOT NULL, response_code TEXT,
                auth_code TEXT, arpc \(e.blob), issuer_key TEXT, state TEXT NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL, answered_at TEXT)
            """,
            "CREATE INDEX net_transactions_terminal ON net_transactions (terminal_id, stan)",
        ] },
    ]
}
