-- Remember the natural keys of the records just loaded from `checked`. Params: $kind, $batch_id.
insert into record_seen (kind, record_key, batch_id)
select $kind, record_key, $batch_id from checked where reason is null
