-- Least privilege for ndrguard: one role per component, none of which can change the schema.
-- Run as the owner of the schema (the role that ran `ndrguard migrate`), after migrating, and
-- again after an upgrade that adds tables:
--     ndrguard migrate --db "dbname=ndrguard user=ndrguard_owner"
--     psql "dbname=ndrguard user=ndrguard_owner" -v ON_ERROR_STOP=1 -f deploy/postgres/roles.sql
-- Then give each component its own login (peer authentication maps the ndrguard system user;
-- or ALTER ROLE ... PASSWORD) and its own `database =` (or --db):
--     ndrguard serve        user=ndrguard_filter   the filter, the release pages, the metrics
--     ndrguard digest       user=ndrguard_digest   claims items, records digests
--     ndrguard quarantine   user=ndrguard_admin    the administrator's command line
-- Day partitions are created and dropped through sql/0005's SECURITY DEFINER functions; nothing
-- here grants CREATE, DROP, TRUNCATE or ownership. Deleting a message only clears it (audited).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ndrguard_filter') THEN CREATE ROLE ndrguard_filter LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ndrguard_digest') THEN CREATE ROLE ndrguard_digest LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ndrguard_admin') THEN CREATE ROLE ndrguard_admin LOGIN; END IF;
END $$;

-- Every component checks the schema version at start (and migrates nothing).
GRANT SELECT ON schema_migrations TO ndrguard_filter, ndrguard_digest, ndrguard_admin;

-- serve: records outbound Message-IDs and looks bounces up; counts storms; holds messages;
-- releases them from the pages; reads what the metrics show; drops expired days.
GRANT SELECT, INSERT ON sent_log TO ndrguard_filter;
GRANT SELECT, INSERT, UPDATE, DELETE ON ndr_counts TO ndrguard_filter;
GRANT SELECT, INSERT, UPDATE, DELETE ON storms TO ndrguard_filter;
GRANT SELECT, INSERT, UPDATE ON storm_reporters TO ndrguard_filter;
GRANT SELECT, INSERT, UPDATE ON quarantine TO ndrguard_filter;
GRANT SELECT, INSERT, UPDATE ON quarantine_mailboxes TO ndrguard_filter;
GRANT SELECT, INSERT, UPDATE, DELETE ON quarantine_releases TO ndrguard_filter;
GRANT INSERT ON quarantine_audit TO ndrguard_filter;
GRANT SELECT, DELETE ON digests TO ndrguard_filter;
GRANT SELECT, INSERT, UPDATE ON ndrguard_totals TO ndrguard_filter;
GRANT USAGE ON SEQUENCE quarantine_id_seq, storms_id_seq, quarantine_releases_id_seq, quarantine_audit_id_seq
    TO ndrguard_filter;
GRANT EXECUTE ON FUNCTION ndrguard_create_day_partition(text, date), ndrguard_drop_day_partition(text, date)
    TO ndrguard_filter;

-- digest: claims held items (quarantine.digest_id only), records its digests, reads storms.
GRANT SELECT ON quarantine, storms, storm_reporters TO ndrguard_digest;
GRANT UPDATE (digest_id) ON quarantine TO ndrguard_digest;
GRANT SELECT, INSERT, UPDATE, DELETE ON digests TO ndrguard_digest;
GRANT USAGE ON SEQUENCE digests_id_seq TO ndrguard_digest;
GRANT SELECT, INSERT, UPDATE ON ndrguard_totals TO ndrguard_digest;

-- quarantine (the command line): what serve may do with held messages and storms, plus
-- deleting and purging (purge --expired applies the whole retention: quarantine/retention.hpp);
-- reads digests.
GRANT SELECT ON sent_log TO ndrguard_admin;
GRANT SELECT, DELETE ON ndr_counts TO ndrguard_admin;
GRANT SELECT, DELETE ON digests TO ndrguard_admin;
GRANT SELECT, INSERT, UPDATE ON ndrguard_totals TO ndrguard_admin;
GRANT SELECT, UPDATE, DELETE ON storms TO ndrguard_admin;
GRANT SELECT ON storm_reporters TO ndrguard_admin;
GRANT SELECT, UPDATE ON quarantine TO ndrguard_admin;
GRANT SELECT, INSERT, UPDATE ON quarantine_mailboxes TO ndrguard_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON quarantine_releases TO ndrguard_admin;
GRANT INSERT ON quarantine_audit TO ndrguard_admin;
GRANT USAGE ON SEQUENCE quarantine_releases_id_seq, quarantine_audit_id_seq TO ndrguard_admin;
GRANT EXECUTE ON FUNCTION ndrguard_drop_day_partition(text, date) TO ndrguard_admin;
