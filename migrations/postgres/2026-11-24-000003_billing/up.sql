-- Tariffs (versioned, immutable rows), the price record of each session, invoices with one
-- unbroken number sequence per series, and credit notes.
CREATE TABLE tariffs (
    id BIGSERIAL PRIMARY KEY,
    tariff_group BIGINT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    vat_rate TEXT NOT NULL,
    ocpi TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    superseded_at TIMESTAMP,
    UNIQUE (tariff_group, version)
);

-- The tariff group that prices sessions at a charge point (its newest version applies).
ALTER TABLE charge_points ADD COLUMN tariff_id BIGINT;

CREATE TABLE invoice_series (
    series TEXT PRIMARY KEY NOT NULL,
    next_number BIGINT NOT NULL
);

CREATE TABLE invoices (
    id BIGSERIAL PRIMARY KEY,
    series TEXT NOT NULL,
    seq BIGINT NOT NULL,
    number TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    user_id BIGINT REFERENCES users (id),
    period TEXT NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    currency TEXT NOT NULL,
    excl_vat BIGINT NOT NULL,
    vat BIGINT NOT NULL,
    total BIGINT NOT NULL,
    credits_invoice_id BIGINT REFERENCES invoices (id),
    buyer TEXT NOT NULL,
    seller TEXT NOT NULL,
    note TEXT,
    UNIQUE (series, seq)
);
CREATE INDEX invoices_user_idx ON invoices (user_id, id);
-- At most one credit note per invoice, whatever races.
CREATE UNIQUE INDEX invoices_credits_idx ON invoices (credits_invoice_id);

CREATE TABLE session_billing (
    session_id BIGINT PRIMARY KEY NOT NULL REFERENCES charging_sessions (id),
    tariff_id BIGINT REFERENCES tariffs (id),
    status TEXT NOT NULL CHECK (status IN ('open', 'no_tariff', 'priced', 'held', 'billed')),
    currency TEXT,
    excl_vat BIGINT,
    vat BIGINT,
    total BIGINT,
    priced TEXT,
    hold_reason TEXT,
    priced_at TIMESTAMP,
    invoice_id BIGINT REFERENCES invoices (id),
    reviewed_by BIGINT REFERENCES users (id),
    reviewed_at TIMESTAMP
);
CREATE INDEX session_billing_status_idx ON session_billing (status, invoice_id);

CREATE TABLE invoice_lines (
    id BIGSERIAL PRIMARY KEY,
    invoice_id BIGINT NOT NULL REFERENCES invoices (id),
    session_id BIGINT REFERENCES charging_sessions (id),
    description TEXT NOT NULL,
    energy_wh BIGINT NOT NULL,
    charging_seconds BIGINT NOT NULL,
    idle_seconds BIGINT NOT NULL,
    vat_rate TEXT NOT NULL,
    excl_vat BIGINT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX invoice_lines_invoice_idx ON invoice_lines (invoice_id, id);
