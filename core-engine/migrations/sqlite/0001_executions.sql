-- Tern engine state. Portable SQL (SQLite now, PostgreSQL later): TEXT/BIGINT columns,
-- timestamps as RFC 3339 text, binary values as base64 text, no engine-specific types.

CREATE TABLE executions (
    id              TEXT PRIMARY KEY,
    workflow_name   TEXT NOT NULL,
    -- The workflow as YAML (recovery re-compiles it) and a JSON summary of its IR.
    workflow_yaml   TEXT NOT NULL,
    workflow_ir     TEXT NOT NULL,
    -- base64 of the inputs' core.LiteralMap protobuf.
    inputs          TEXT NOT NULL,
    phase           TEXT NOT NULL,
    failed_node     TEXT,
    error_code      TEXT,
    error_message   TEXT,
    outputs_uri     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT
);

CREATE INDEX executions_created_at ON executions (created_at);

CREATE TABLE node_attempts (
    execution_id    TEXT NOT NULL REFERENCES executions (id),
    node_id         TEXT NOT NULL,
    attempt         BIGINT NOT NULL,
    phase           TEXT NOT NULL,
    task_type       TEXT NOT NULL,
    task_version    BIGINT NOT NULL,
    agent_endpoint  TEXT NOT NULL,
    -- The idempotency intent, written BEFORE CreateTask: the task_execution_id as JSON.
    intent          TEXT NOT NULL,
    -- base64 of the agent's resource_meta, written AFTER CreateTask returned it.
    resource_meta   TEXT,
    output_uri      TEXT NOT NULL,
    error_code      TEXT,
    error_message   TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT,
    PRIMARY KEY (execution_id, node_id, attempt)
);
