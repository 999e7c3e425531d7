-- An elder's recent incidents, the latest first: the console's per-elder history.
CREATE INDEX incidents_elder_pressed ON incidents (elder_id, pressed_at);
