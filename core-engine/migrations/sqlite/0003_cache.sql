-- Task output caching (docs/workflows.md, "Caching"). Portable SQL like 0001: TEXT/BIGINT columns,
-- timestamps as RFC 3339 text, binary values as base64 text.

-- One row per cache key: the outputs of the attempt that produced them.
CREATE TABLE cache_entries (
    -- Hex digest of task identity + cache version + interface + inputs (exec/cache/key.rs).
    cache_key       TEXT PRIMARY KEY,
    task_project    TEXT NOT NULL,
    task_domain     TEXT NOT NULL,
    task_name       TEXT NOT NULL,
    cache_version   TEXT NOT NULL,
    -- The outputs' core.LiteralMap: base64 inline when small, else the URI of the producing
    -- attempt's outputs.pb in the data store (exactly one is set).
    outputs         TEXT,
    outputs_uri     TEXT,
    -- Where they came from (no foreign key: an entry may outlive its execution's rows).
    execution_id    TEXT NOT NULL,
    node_id         TEXT NOT NULL,
    attempt         BIGINT NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE INDEX cache_entries_task ON cache_entries (task_name);

-- cache_serializable: one runner per key. The owner heartbeats expires_at (unix milliseconds);
-- a row past its expiry may be taken over by anyone.
CREATE TABLE cache_reservations (
    cache_key       TEXT PRIMARY KEY,
    owner           TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    created_at      TEXT NOT NULL
);

-- How the cache was involved in an attempt: HIT (served from the cache, no agent called),
-- POPULATED (ran and stored its outputs), PUT_FAILURE (ran; storing failed). NULL: not cacheable.
ALTER TABLE node_attempts ADD COLUMN cache_status TEXT;
ALTER TABLE node_attempts ADD COLUMN cache_key TEXT;
