-- Whose failure an attempt's error was (`user` or `system`): user failures spend the
-- task's retries, system failures the engine's system budget, also across `recover`.
ALTER TABLE node_attempts ADD COLUMN error_origin TEXT;
