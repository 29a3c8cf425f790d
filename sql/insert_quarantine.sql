-- Bad rows of the checked temp table `checked` -> quarantine, with the raw line from `lines_chunk` (looked up
-- only for bad rows, so good rows never carry their text through the checks). Params: $batch_id, $source_file.
insert into quarantine (batch_id, source_file, line, field, reason, detail, raw)
select $batch_id, $source_file, c.line, c.field, c.reason, null, l.text
from checked as c
join lines_chunk as l on l.line = c.line
where c.reason is not null
