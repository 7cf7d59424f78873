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
        Migration(id: 3001, name: "clearing and settlement") { e in [
            "ALTER TABLE net_transactions ADD COLUMN merchant_id TEXT",
            "ALTER TABLE net_transactions ADD COLUMN acquirer_id TEXT",
            "CREATE TABLE net_settlement_batches (id \(e.autoID), cutoff TEXT NOT NULL, transactions INTEGER NOT NULL, total \(e.bigint) NOT NULL, created_at TEXT NOT NULL)",
            // One row per cleared transaction: cleared once, in one batch.
            """
            CREATE TABLE net_clearing (transaction_id \(e.bigint) PRIMARY KEY REFERENCES net_transactions(id), batch_id \(e.bigint) NOT NULL REFERENCES net_settlement_batches(id),
                issuer_bank TEXT NOT NULL, acquirer_bank TEXT NOT NULL, merchant_id TEXT NOT NULL, amount \(e.bigint) NOT NULL, currency INTEGER NOT NULL,
                interchange \(e.bigint) NOT NULL, issuer_fee \(e.bigint) NOT NULL, acquirer_fee \(e.bigint) NOT NULL, merchant_fee \(e.bigint) NOT NULL)
            """,
        ] },
        Migration(id: 3002, name: "what crossed the switch, per transaction (masked)") { e in [
            "CREATE TABLE net_messages (transaction_id \(e.bigint) NOT NULL REFERENCES net_transactions(id), seq INTEGER NOT NULL, direction TEXT NOT NULL, mti TEXT NOT NULL, described TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (transaction_id, seq))",
        ] },
        Migration(id: 3003, name: "stand-in advices owed to issuers") { e in [
            // The 0120 for a stand-in approval, sealed in the key component (it carries the card
            // number), kept until the issuer has answered it.
            """
            CREATE TABLE net_advices (transaction_id \(e.bigint) PRIMARY KEY REFERENCES net_transactions(id), bank_id TEXT NOT NULL, sealed \(e.blob) NOT NULL,
                state TEXT NOT NULL, attempts INTEGER NOT NULL, created_at TEXT NOT NULL, delivered_at TEXT)
            """,
            "CREATE INDEX net_advices_due ON net_advices (state)",
        ] },
        Migration(id: 3004, name: "payments by merchant-presented QR code") { e in [
            """
            CREATE TABLE net_qr_payments (id \(e.autoID), request_key TEXT NOT NULL UNIQUE, token_id \(e.bigint) NOT NULL, token_last4 TEXT NOT NULL,
                merchant_id TEXT NOT NULL, reference TEXT NOT NULL, static_code INTEGER NOT NULL, amount \(e.bigint) NOT NULL, day TEXT NOT NULL,
                response_code TEXT NOT NULL, auth_code TEXT, created_at TEXT NOT NULL)
            """,
            "CREATE INDEX net_qr_payments_merchant ON net_qr_payments (merchant_id, id)",
            "CREATE INDEX net_qr_payments_token_day ON net_qr_payments (token_id, day)",
        ] },
        Migration(id: 3005, name: "messages kept masked in binary, described when read") { e in [
            // A message is kept as its masked record (ISO8583's Message.masked(spec:)) with the
            // dialect that describes it; `described` is then empty. Notes, and messages that
            // cannot be masked in place, keep their description as before.
            "ALTER TABLE net_messages ADD COLUMN dialect TEXT",
            "ALTER TABLE net_messages ADD COLUMN masked \(e.blob)",
        ] },
        Migration(id: 3006, name: "no index nothing reads") { _ in [
            // Requests are found by their key (duplicates, reversals) or id; nothing looks them
            // up by terminal and STAN, and every sale paid for the index.
            "DROP INDEX net_transactions_terminal",
        ] },
        Migration(id: 3007, name: "request keys with the transmission time first") { _ in [
            // NetworkSwitch.requestKey: terminal (DE41, 8) / STAN (DE11, 6) / time (DE7, 10)
            // becomes time / terminal / STAN, so a duplicate or reversal of a request recorded
            // before the change still finds it. The two layouts put their separators at
            // different places, so no rewritten key can meet an old one.
            """
            UPDATE net_transactions SET request_key = substr(request_key, 17, 10) || '/' || substr(request_key, 1, 8) || '/' || substr(request_key, 10, 6)
            WHERE length(request_key) = 26 AND substr(request_key, 9, 1) = '/' AND substr(request_key, 16, 1) = '/'
            """,
        ] },
        Migration(id: 3008, name: "a transaction's trace as one record") { e in [
            // Trace.record: every line of the request's trace in one value, written with the
            // answer. net_messages keeps the traces written before, a row a line.
            """
            CREATE TABLE net_traces (transaction_id \(e.bigint) PRIMARY KEY REFERENCES net_transactions(id), lines \(e.blob) NOT NULL,
                created_at TEXT NOT NULL)
            """,
        ] },
        Migration(id: 3009, name: "reversals of transactions already cleared") { e in [
            // A reversal can arrive after its sale was cleared (a sale just before the cut-off,
            // its POS's reversal just after): the next batch clears the reversal, the sale's
            // amount, interchange and fees taken back. The time of a reversal decides its batch.
            "ALTER TABLE net_transactions ADD COLUMN reversed_at TEXT",
            "ALTER TABLE net_settlement_batches ADD COLUMN reversals INTEGER NOT NULL DEFAULT 0",
            """
            CREATE TABLE net_clearing_reversals (transaction_id \(e.bigint) PRIMARY KEY REFERENCES net_clearing(transaction_id),
                batch_id \(e.bigint) NOT NULL REFERENCES net_settlement_batches(id))
            """,
        ] },
        Migration(id: 3010, name: "reversals owed to issuers") { e in [
            // A reversal the switch has accepted from a terminal (or owes for an approval that
            // came after one) is recorded with it and sent until the issuer takes it (00, or 25:
            // it never had the request). `generation` counts how often it was owed: a delivery
            // under an older generation does not settle a newer one.
            """
            CREATE TABLE net_issuer_reversals (transaction_id \(e.bigint) PRIMARY KEY REFERENCES net_transactions(id), bank_id TEXT NOT NULL,
                issuer_key TEXT NOT NULL, terminal_id TEXT NOT NULL, reason TEXT NOT NULL, state TEXT NOT NULL, generation INTEGER NOT NULL,
                attempts INTEGER NOT NULL, created_at TEXT NOT NULL, delivered_at TEXT)
            """,
            "CREATE INDEX net_issuer_reversals_due ON net_issuer_reversals (state)",
        ] },
    ]
}
