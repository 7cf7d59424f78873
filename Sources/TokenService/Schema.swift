import Storage

/// The token service's tables (migration ids 2000–2999).
public enum TokenSchema {
    public static let migrations: [Migration] = [
        Migration(id: 2000, name: "vault, requestors, tokens, audit") { e in [
            // Data keys: AES-256, stored only wrapped (sealed) under a key-encryption key in the key component.
            "CREATE TABLE tsp_data_keys (id \(e.autoID), kek_name TEXT NOT NULL, wrapped \(e.blob) NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL)",
            // Card numbers: sealed under a data key, found by keyed hash.
            "CREATE TABLE tsp_vault (id \(e.autoID), pan_hash \(e.blob) NOT NULL UNIQUE, pan_sealed \(e.blob) NOT NULL, data_key_id \(e.bigint) NOT NULL REFERENCES tsp_data_keys(id), pan_last4 TEXT NOT NULL, expiry TEXT NOT NULL, par TEXT NOT NULL UNIQUE, bank_id TEXT NOT NULL, created_at TEXT NOT NULL)",
            "CREATE TABLE tsp_requestors (id TEXT PRIMARY KEY, name TEXT NOT NULL, api_key_hash \(e.blob) NOT NULL, created_at TEXT NOT NULL)",
            "CREATE TABLE tsp_token_ranges (bank_id TEXT NOT NULL, low TEXT NOT NULL, high TEXT NOT NULL, PRIMARY KEY (low, high))",
            "CREATE TABLE tsp_tokens (id \(e.autoID), token_hash \(e.blob) NOT NULL UNIQUE, token_sealed \(e.blob) NOT NULL, data_key_id \(e.bigint) NOT NULL, token_last4 TEXT NOT NULL, token_bin TEXT NOT NULL, token_expiry TEXT NOT NULL, vault_id \(e.bigint) NOT NULL REFERENCES tsp_vault(id), requestor_id TEXT NOT NULL REFERENCES tsp_requestors(id), device_id TEXT NOT NULL, bank_id TEXT NOT NULL, state TEXT NOT NULL, assurance TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (vault_id, device_id))",
            "CREATE TABLE tsp_token_events (id \(e.autoID), token_id \(e.bigint) NOT NULL REFERENCES tsp_tokens(id), from_state TEXT NOT NULL, to_state TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL)",
            "CREATE TABLE tsp_notifications (id \(e.autoID), requestor_id TEXT NOT NULL, token_id \(e.bigint) NOT NULL, event TEXT NOT NULL, delivered INTEGER NOT NULL, created_at TEXT NOT NULL)",
        ] },
        Migration(id: 2001, name: "device keys, limited-use keys, ATCs") { e in [
            "CREATE TABLE tsp_bank_keys (bank_id TEXT PRIMARY KEY, imk_name TEXT NOT NULL, profile TEXT NOT NULL)",
            "CREATE TABLE tsp_device_keys (token_id \(e.bigint) PRIMARY KEY REFERENCES tsp_tokens(id), public_key \(e.blob) NOT NULL)",
            "CREATE TABLE tsp_luks (id \(e.autoID), token_id \(e.bigint) NOT NULL REFERENCES tsp_tokens(id), generation_hour \(e.bigint) NOT NULL, sequence INTEGER NOT NULL, max_transactions INTEGER NOT NULL, ttl_seconds \(e.bigint) NOT NULL, max_amount \(e.bigint) NOT NULL, uses INTEGER NOT NULL, cumulative \(e.bigint) NOT NULL, state TEXT NOT NULL, issued_at TEXT NOT NULL, UNIQUE (token_id, generation_hour, sequence))",
            "CREATE TABLE tsp_atcs (token_id \(e.bigint) NOT NULL, atc INTEGER NOT NULL, seen_at TEXT NOT NULL, PRIMARY KEY (token_id, atc))",
        ] },
        Migration(id: 2002, name: "enrollments and SMS outbox") { e in [
            "CREATE TABLE tsp_enrollments (id \(e.autoID), requestor_id TEXT NOT NULL, device_id TEXT NOT NULL, device_key \(e.blob) NOT NULL, vault_id \(e.bigint) NOT NULL REFERENCES tsp_vault(id), holder_name TEXT NOT NULL, otp_hash \(e.blob) NOT NULL, otp_expires TEXT NOT NULL, attempts INTEGER NOT NULL, state TEXT NOT NULL, token_id \(e.bigint), created_at TEXT NOT NULL)",
            "CREATE TABLE tsp_sms_outbox (id \(e.autoID), mobile TEXT NOT NULL, message TEXT NOT NULL, sent INTEGER NOT NULL, created_at TEXT NOT NULL)",
        ] },
        Migration(id: 2003, name: "amounts and keys of validated transactions; replenishment nonces") { e in [
            "ALTER TABLE tsp_atcs ADD COLUMN amount \(e.bigint) NOT NULL DEFAULT 0",
            "ALTER TABLE tsp_atcs ADD COLUMN key_sequence INTEGER NOT NULL DEFAULT 0",
            "CREATE TABLE tsp_replenish_nonces (token_id \(e.bigint) NOT NULL, nonce TEXT NOT NULL, seen_at TEXT NOT NULL, PRIMARY KEY (token_id, nonce))",
        ] },
        Migration(id: 2004, name: "bank API credentials and pinned client certificates") { e in [
            "CREATE TABLE tsp_bank_credentials (bank_id TEXT PRIMARY KEY, api_key_hash \(e.blob) NOT NULL, client_cert_sha256 \(e.blob), created_at TEXT NOT NULL)",
            "CREATE INDEX tsp_tokens_bank ON tsp_tokens (bank_id, id)",
            "CREATE INDEX tsp_tokens_requestor ON tsp_tokens (requestor_id, device_id, id)",
        ] },
        Migration(id: 2005, name: "validated transactions reconciled with the phone's log") { _ in [
            "ALTER TABLE tsp_atcs ADD COLUMN reconciled INTEGER NOT NULL DEFAULT 0",
        ] },
        // A replenishment reads and marks the token's transactions not yet reconciled — a few
        // dozen — where the token's whole history, growing with every sale, had been scanned.
        Migration(id: 2006, name: "transactions not yet reconciled found by index") { _ in [
            "CREATE INDEX tsp_atcs_unreconciled ON tsp_atcs (token_id, atc) WHERE reconciled = 0",
        ] },
        Migration(id: 2007, name: "a count of the changes to what a reading reads and no sale writes") { e in
            // As the issuer's (migration 1004): ``TokenService/readingVersion`` for a caller that
            // verifies from rows it read before. No sale sets these columns.
            Migration.changeCount("tsp_changes", of: [
                ("tsp_tokens", ["id", "token_expiry", "bank_id", "vault_id"]),
                ("tsp_vault", ["id", "pan_sealed", "data_key_id", "par"]),
                ("tsp_bank_keys", ["bank_id", "imk_name", "profile"]),
            ], on: e)
        },
    ]
}
