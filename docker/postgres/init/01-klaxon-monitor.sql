-- Runs once, when the PostgreSQL volume is first initialised.
-- A login role for klaxon's PostgreSQL exporter: pg_monitor lets it read the
-- statistics views and settings (pg_stat_activity of every session,
-- pg_settings, pg_stat_replication) without any write privilege, and the
-- session default makes every transaction read-only on top of that.
CREATE ROLE klaxon_monitor WITH LOGIN PASSWORD 'klaxon-monitor'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
GRANT pg_monitor TO klaxon_monitor;
ALTER ROLE klaxon_monitor SET default_transaction_read_only = on;
