-- 0001: the sent log. One row per message our users sent, found again by a hash of its
-- normalised Message-ID when a bounce names it. Partitioned by day, so that retention drops
-- whole days (a DROP TABLE, no vacuum debt) instead of deleting rows.

CREATE TABLE sent_log (
    sent_day    date        NOT NULL,  -- UTC day of sent_at: the partition key
    id_hash     bigint      NOT NULL,  -- FNV-1a 64 of message_id (quarantine/src/sql_text.cpp)
    message_id  text        NOT NULL,  -- normalised: no brackets, domain in lower case
    sender      text        NOT NULL,  -- envelope sender as given
    recipients  text[]      NOT NULL,  -- envelope recipients
    sent_at     timestamptz NOT NULL
) PARTITION BY RANGE (sent_day);

-- Lookups come by hash; the id itself is compared to rule out collisions.
CREATE INDEX sent_log_id_hash ON sent_log (id_hash);

COMMENT ON TABLE sent_log IS
    'ndrguard: Message-IDs of outbound mail, one partition per UTC day (sent_log_YYYYMMDD)';
