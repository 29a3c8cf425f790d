-- Bad rows of the checked temp table `checked` -> quarantine. Params: $batch_id, $source_file.
insert into quarantine (batch_id, source_file, line, field, reason, detail, raw)
select $batch_id, $source_file, line, field, reason, null, raw
from checked
where reason is not null
