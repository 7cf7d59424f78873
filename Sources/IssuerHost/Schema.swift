import Storage

/// The issuer hosts' tables (migration ids 1000–1999). Card numbers are stored only sealed
/// (AES-GCM in the key component) with a keyed hash for look-up and the last four digits.
public enum IssuerSchema {
    public static let migrations: [Migration] = [
        Migration(id: 1000, name: "issuer banks, accounts, cards") { e in [
            "CREATE TABLE issuer_banks (id TEXT PRIMARY KEY, name TEXT NOT NULL, institution_id TEXT NOT NULL, card_key_name TEXT NOT NULL, pin_key_name TEXT NOT NULL, pvk_name TEXT NOT NULL, created_at TEXT NOT NULL)",
            "CREATE TABLE issuer_bin_ranges (bank_id TEXT NOT NULL REFERENCES issuer_banks(id), low TEXT NOT NULL, high TEXT NOT NULL, kind TEXT NOT NULL, PRIMARY KEY (low, high))",
            "CREATE TABLE issuer_accounts (id \(e.autoID), bank_id TEXT NOT NULL REFERENCES issuer_banks(id), kind TEXT NOT NULL, currency INTEGER NOT NULL, balance \(e.bigint) NOT NULL, credit_limit \(e.bigint) NOT NULL)",
            "CREATE TABLE issuer_cards (id \(e.autoID), bank_id TEXT NOT NULL REFERENCES issuer_banks(id), account_id \(e.bigint) NOT NULL REFERENCES issuer_accounts(id), pan_hash \(e.blob) NOT NULL UNIQUE, pan_sealed \(e.blob) NOT NULL, pan_last4 TEXT NOT NULL, psn TEXT NOT NULL, expiry TEXT NOT NULL, product TEXT NOT NULL, status TEXT NOT NULL, holder_name TEXT NOT NULL, mobile TEXT NOT NULL, pin_method TEXT NOT NULL, pin_reference TEXT NOT NULL, pin_tries INTEGER NOT NULL, per_transaction_limit \(e.bigint) NOT NULL, daily_limit \(e.bigint) NOT NULL, daily_count_limit INTEGER NOT NULL, hce_allowed INTEGER NOT NULL, device_limit INTEGER NOT NULL)",
            "CREATE TABLE issuer_authorizations (id \(e.autoID), bank_id TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE, card_id \(e.bigint), amount \(e.bigint) NOT NULL, currency INTEGER NOT NULL, response_code TEXT NOT NULL, auth_code TEXT, reason TEXT NOT NULL, day TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL)",
            "CREATE INDEX issuer_authorizations_card_day ON issuer_authorizations (card_id, day)",
            "CREATE TABLE issuer_ledger (id \(e.autoID), bank_id TEXT NOT NULL, authorization_id \(e.bigint), account TEXT NOT NULL, amount \(e.bigint) NOT NULL, currency INTEGER NOT NULL, memo TEXT NOT NULL, created_at TEXT NOT NULL)",
            "CREATE INDEX issuer_ledger_account ON issuer_ledger (account)",
        ] },
        Migration(id: 1001, name: "per-card daily totals") { e in [
            // The day's approved amount and count per card, kept as the approvals are booked
            // (and given back by reversals), so the daily limits read one row instead of
            // adding up the day's authorizations.
            """
            CREATE TABLE issuer_card_days (card_id \(e.bigint) NOT NULL REFERENCES issuer_cards(id), day TEXT NOT NULL, total \(e.bigint) NOT NULL,
                approvals INTEGER NOT NULL, PRIMARY KEY (card_id, day))
            """,
            """
            INSERT INTO issuer_card_days (card_id, day, total, approvals)
            SELECT card_id, day, SUM(amount), COUNT(*) FROM issuer_authorizations WHERE state = 'approved' AND card_id IS NOT NULL GROUP BY card_id, day
            """,
        ] },
        Migration(id: 1002, name: "the check of a decision made before its unit") { e in
            // A decision the switch makes from what is committed is booked by one statement whose
            // writes each check what it was made from; this makes the statement fail whole
            // (serialization_failure, as a retry is the answer) when one of them found it changed.
            e == .postgres ? [
                """
                CREATE FUNCTION issuer_unchanged(written boolean) RETURNS boolean LANGUAGE plpgsql AS $$
                BEGIN
                    IF written IS NOT TRUE THEN
                        RAISE EXCEPTION 'what the authorization was decided on changed before it was booked' USING ERRCODE = 'serialization_failure';
                    END IF;
                    RETURN true;
                END $$
                """,
            ] : []
        },
        Migration(id: 1003, name: "indexes for the reads there are") { _ in [
            // The daily limits read issuer_card_days, not the authorizations by card and day; the
            // ledger is read by authorization (a transaction's postings) and audited whole, not
            // by account. An index written on every sale and read by nothing goes; the one the
            // postings view scanned the ledger for comes.
            "DROP INDEX issuer_authorizations_card_day",
            "DROP INDEX issuer_ledger_account",
            "CREATE INDEX issuer_ledger_authorization ON issuer_ledger (authorization_id)",
        ] },
        Migration(id: 1004, name: "a count of the changes to what a decision reads and no booking writes") { e in
            // A caller that decides from rows it read before (the switch's warm sales) selects
            // the count with them, and its write checks that the count is the same then
            // (``IssuerHost/cardVersion``): a lookup of one row where comparing the rows
            // themselves took a join of three tables. A booking sets none of these columns.
            Migration.changeCount("issuer_changes", of: [
                ("issuer_cards", ["id", "bank_id", "account_id", "pan_hash", "status", "expiry", "product", "pin_method", "pin_reference",
                                  "per_transaction_limit", "daily_limit", "daily_count_limit"]),
                ("issuer_banks", ["id", "pin_key_name", "pvk_name"]),
                ("issuer_accounts", ["id", "credit_limit", "currency"]),
            ], on: e)
        },
    ]
}
