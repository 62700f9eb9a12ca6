-- 0006: running totals for the metrics, so that a scrape reads a handful of rows and the
-- digests and release attempts can be pruned with the quarantine (serve does it hourly):
-- a counter added to in the same transaction as the state change it counts.
CREATE TABLE ndrguard_totals (
    name   text   PRIMARY KEY,  -- digests_sent, digests_failed, digests_abandoned, releases_released, releases_failed
    value  bigint NOT NULL
);
INSERT INTO ndrguard_totals (name, value)
SELECT 'digests_' || state, count(*) FROM digests WHERE state IN ('sent', 'failed', 'abandoned') GROUP BY state
UNION ALL
SELECT CASE state WHEN 'done' THEN 'releases_released' ELSE 'releases_failed' END, count(*)
FROM quarantine_releases WHERE state IN ('done', 'failed', 'superseded') GROUP BY 1;

-- The unanswered hand-overs (uncertain), counted at each scrape: few, and indexed.
CREATE INDEX digests_sending ON digests (started_at) WHERE state = 'sending';
CREATE INDEX quarantine_releases_sent ON quarantine_releases (started_at) WHERE state = 'sent';
CREATE INDEX digests_started ON digests (started_at);
CREATE INDEX quarantine_releases_started ON quarantine_releases (started_at);
