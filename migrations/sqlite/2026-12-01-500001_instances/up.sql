-- Several instances (PostgreSQL): which instance holds a charger's live connection, under
-- which connection epoch; the instances and their heartbeat leases; commands to chargers as
-- rows (routed to the owning instance, answered on the row). SQLite is one instance only; the
-- tables exist so both backends share one schema. An instance is alive until `expires_at`
-- (its last heartbeat plus its own lease).
ALTER TABLE charge_points ADD COLUMN owner_instance TEXT;
ALTER TABLE charge_points ADD COLUMN connection_epoch BIGINT NOT NULL DEFAULT 0;

CREATE TABLE instances (
    id TEXT PRIMARY KEY NOT NULL,
    started_at TIMESTAMP NOT NULL,
    heartbeat_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE TABLE charger_commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    charge_point_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    target_instance TEXT NOT NULL,
    status TEXT NOT NULL,
    answer TEXT,
    failure TEXT,
    created_at TIMESTAMP NOT NULL,
    deadline_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX charger_commands_target_idx ON charger_commands (target_instance, status);
