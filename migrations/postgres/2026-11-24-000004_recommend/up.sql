-- Recommendations (issue 5): drivers' stated preferences, charging history imported from a
-- previous system with the mapping of its references, the nightly job's batches (one row per
-- run) and the recommendations of each batch. The API shows only the newest complete batch.

CREATE TABLE driver_preferences (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users (id),
    -- JSON array of {"days": ["mon", …], "start_hour": 0..23, "end_hour": 1..24}
    preferred_windows TEXT NOT NULL DEFAULT '[]',
    -- JSON array of location ids
    favourite_location_ids TEXT NOT NULL DEFAULT '[]',
    max_price_per_kwh_minor BIGINT,
    avoid_fast_charging_surcharge BOOLEAN NOT NULL DEFAULT FALSE,
    home_lat DOUBLE PRECISION,
    home_lon DOUBLE PRECISION,
    work_lat DOUBLE PRECISION,
    work_lon DOUBLE PRECISION,
    updated_at TIMESTAMP NOT NULL
);

-- A reference of the previous system (kind 'driver' → users.id, 'location' → locations.id).
CREATE TABLE external_refs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('driver', 'location')),
    external_ref TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (kind, external_ref)
);

-- Sessions from the previous system. `import_key` (a hash of the row's content) makes a second
-- import of the same rows add nothing.
CREATE TABLE imported_sessions (
    id BIGSERIAL PRIMARY KEY,
    import_key TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    location_id BIGINT NOT NULL REFERENCES locations (id),
    charge_point_ref TEXT,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP NOT NULL,
    local_start TIMESTAMP NOT NULL,
    energy_wh BIGINT NOT NULL,
    imported_at TIMESTAMP NOT NULL
);
CREATE INDEX imported_sessions_started_idx ON imported_sessions (started_at);
CREATE INDEX imported_sessions_location_idx ON imported_sessions (location_id, started_at);

-- One row per run of `laddkoll recommend`; its recommendations become visible together when
-- the status turns 'complete'.
CREATE TABLE recommendation_batches (
    id BIGSERIAL PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
    window_days BIGINT NOT NULL,
    seed BIGINT NOT NULL,
    drivers BIGINT NOT NULL DEFAULT 0,
    sessions BIGINT NOT NULL DEFAULT 0,
    recommendations BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX recommendation_batches_status_idx ON recommendation_batches (status, id);

CREATE TABLE recommendations (
    id BIGSERIAL PRIMARY KEY,
    batch_id BIGINT NOT NULL REFERENCES recommendation_batches (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    sentence TEXT NOT NULL,
    -- JSON object: the numbers behind the sentence (free shares, prices, distance, habit share)
    numbers TEXT NOT NULL,
    location_id BIGINT NOT NULL REFERENCES locations (id),
    from_location_id BIGINT NOT NULL REFERENCES locations (id),
    weekday BIGINT NOT NULL,
    start_hour BIGINT NOT NULL,
    end_hour BIGINT NOT NULL,
    hour_of_week BIGINT NOT NULL,
    from_hour_of_week BIGINT NOT NULL,
    score DOUBLE PRECISION NOT NULL
);
CREATE INDEX recommendations_batch_user_idx ON recommendations (batch_id, user_id);
