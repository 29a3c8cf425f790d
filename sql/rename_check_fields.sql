-- Name the generic check fields (person_id, measured_at, ...) as the input format calls them.
-- Params: $generic (list), $named (list).
update checked set field = coalesce(map_extract_value(map($generic, $named), field), field)
