-- Good lifestyle answers of `checked` -> lifestyle. Params: $batch_id.
insert into lifestyle (person_id, item, value_text, value_num, effective_at, batch_id, line)
select person_id, item, value_text, value_num, effective_at, $batch_id, line from checked where reason is null
