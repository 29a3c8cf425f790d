-- Good readings of `checked` -> observation. Params: $batch_id, $source.
insert into observation
    (person_id, measure, code, value, unit, effective_at, tz_offset_min, source, device_id, batch_id, line)
select person_id, measure, code, value, unit, effective_at, tz_offset_min, $source, device_id, $batch_id, line
from checked
where reason is null
