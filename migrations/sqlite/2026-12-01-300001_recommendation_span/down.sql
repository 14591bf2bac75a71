ALTER TABLE recommendations DROP COLUMN days;
