-- A failed step's effect on its target (untouched | changed | unknown), as a value the engine decides on: only a
-- changed step is undone, an unknown one is left for people. Rows from before have none (treated as unknown).
ALTER TABLE action_steps ADD COLUMN effect TEXT;
