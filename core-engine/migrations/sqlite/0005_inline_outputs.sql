-- Small node outputs inline (base64 of the core.LiteralMap protobuf), as Flyte inlines small
-- outputs: one row write instead of one file per node. NULL: the outputs are at output_uri.
ALTER TABLE node_attempts ADD COLUMN outputs TEXT;
