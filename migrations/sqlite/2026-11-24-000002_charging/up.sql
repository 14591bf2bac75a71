-- Locations, charge points and connectors, RFID cards, charging sessions with their meter
-- values, status history and integrity flags.
CREATE TABLE locations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    timezone TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE charge_points (
    id TEXT PRIMARY KEY NOT NULL,
    location_id BIGINT NOT NULL REFERENCES locations (id),
    key_hash TEXT NOT NULL,
    vendor TEXT,
    model TEXT,
    serial_number TEXT,
    firmware_version TEXT,
    heartbeat_interval BIGINT NOT NULL DEFAULT 300,
    online BOOLEAN NOT NULL DEFAULT FALSE,
    connected_at TIMESTAMP,
    last_seen_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    key_rotated_at TIMESTAMP NOT NULL
);
CREATE INDEX charge_points_location_idx ON charge_points (location_id);

CREATE TABLE connectors (
    charge_point_id TEXT NOT NULL REFERENCES charge_points (id) ON DELETE CASCADE,
    connector_id BIGINT NOT NULL,
    standard TEXT NOT NULL,
    max_power_w BIGINT NOT NULL,
    current_type TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'Unknown',
    error_code TEXT,
    status_at TIMESTAMP,
    PRIMARY KEY (charge_point_id, connector_id)
);

CREATE TABLE rfid_cards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id),
    uid TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX rfid_cards_user_idx ON rfid_cards (user_id);

-- The id tag the app's remote starts use: per driver, random, never an RFID uid.
CREATE TABLE app_id_tags (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users (id),
    id_tag TEXT NOT NULL UNIQUE
);

CREATE TABLE charging_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT REFERENCES users (id),
    charge_point_id TEXT NOT NULL REFERENCES charge_points (id),
    connector_id BIGINT NOT NULL,
    id_tag TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('rfid', 'app')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'finished', 'failed')),
    start_key TEXT UNIQUE,
    started_at TIMESTAMP,
    stopped_at TIMESTAMP,
    meter_start_wh BIGINT,
    meter_stop_wh BIGINT,
    stop_reason TEXT,
    failure_reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX charging_sessions_user_idx ON charging_sessions (user_id, id);
CREATE INDEX charging_sessions_connector_idx ON charging_sessions (charge_point_id, connector_id, status);

CREATE TABLE meter_values (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BIGINT REFERENCES charging_sessions (id),
    charge_point_id TEXT NOT NULL REFERENCES charge_points (id),
    connector_id BIGINT NOT NULL,
    transaction_id BIGINT,
    sampled_at TIMESTAMP NOT NULL,
    measurand TEXT NOT NULL,
    phase TEXT,
    unit TEXT,
    context TEXT,
    location TEXT,
    format TEXT,
    value TEXT NOT NULL,
    normalized BIGINT,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX meter_values_session_idx ON meter_values (session_id, sampled_at);

CREATE TABLE status_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id TEXT NOT NULL REFERENCES charge_points (id),
    connector_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    occurred_at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX status_events_connector_idx ON status_events (charge_point_id, connector_id, occurred_at);

CREATE TABLE session_flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BIGINT NOT NULL REFERENCES charging_sessions (id),
    flag TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX session_flags_session_idx ON session_flags (session_id);
