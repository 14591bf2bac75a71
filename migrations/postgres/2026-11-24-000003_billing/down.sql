DROP TABLE invoice_lines;
DROP TABLE session_billing;
DROP TABLE invoices;
DROP TABLE invoice_series;
ALTER TABLE charge_points DROP COLUMN tariff_id;
DROP TABLE tariffs;
