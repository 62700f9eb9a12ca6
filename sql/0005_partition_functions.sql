-- 0005: day partitions are created and dropped through these functions, so that the roles
-- ndrguard runs as (deploy/postgres/roles.sql) need no DDL rights at all. They run as the
-- schema's owner (SECURITY DEFINER), with the search_path of this migration, and touch nothing
-- but day partitions (table_YYYYMMDD) of the two partitioned tables.

-- The partition's name, or an error for any other table.
CREATE FUNCTION ndrguard_day_partition_name(parent text, day date) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF parent NOT IN ('sent_log', 'quarantine') THEN
        RAISE EXCEPTION 'ndrguard: % has no day partitions', parent;
    END IF;
    RETURN parent || '_' || to_char(day, 'YYYYMMDD');
END $$;

CREATE FUNCTION ndrguard_create_day_partition(parent text, day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    -- Two instances creating the same day do not collide.
    PERFORM pg_advisory_xact_lock(7426114);
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                   ndrguard_day_partition_name(parent, day), parent, day, day + 1);
END $$;

CREATE FUNCTION ndrguard_drop_day_partition(parent text, day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', ndrguard_day_partition_name(parent, day));
END $$;

REVOKE ALL ON FUNCTION ndrguard_create_day_partition(text, date) FROM PUBLIC;
REVOKE ALL ON FUNCTION ndrguard_drop_day_partition(text, date) FROM PUBLIC;
