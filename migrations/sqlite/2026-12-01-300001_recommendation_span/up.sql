-- A recommendation is about a habit's span of weekdays ("weekdays 8–9"), not one weekday:
-- bit 0 = Monday … bit 6 = Sunday. Rows written before this column existed covered `weekday`.
ALTER TABLE recommendations ADD COLUMN days BIGINT NOT NULL DEFAULT 0;
