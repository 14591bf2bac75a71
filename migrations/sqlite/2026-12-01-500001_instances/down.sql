DROP INDEX charger_commands_target_idx;
DROP TABLE charger_commands;
DROP TABLE instances;
ALTER TABLE charge_points DROP COLUMN connection_epoch;
ALTER TABLE charge_points DROP COLUMN owner_instance;
