-- Good conditions of `checked` -> condition. Params: $batch_id.
insert into condition (person_id, icd10, onset_date, recorded_date, batch_id, line)
select person_id, icd10, onset_date, recorded_date, $batch_id, line from checked where reason is null
