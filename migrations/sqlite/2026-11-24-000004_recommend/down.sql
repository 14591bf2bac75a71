DROP TABLE recommendations;
DROP TABLE recommendation_batches;
DROP TABLE imported_sessions;
DROP TABLE external_refs;
DROP TABLE driver_preferences;
