-- 0004: what the metrics endpoint reads at every scrape must be cheap: the oldest held item
-- comes from this index, not from a scan of the quarantine.
CREATE INDEX quarantine_held_at ON quarantine (held_at) WHERE state = 'held';
