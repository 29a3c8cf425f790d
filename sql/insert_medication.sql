-- Good medications of `checked` -> medication. Params: $batch_id.
insert into medication (person_id, atc, start_date, end_date, status, batch_id, line)
select person_id, atc, start_date, end_date, status, $batch_id, line from checked where reason is null
