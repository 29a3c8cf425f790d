-- Good family-history rows of `checked` -> family_history. Params: $batch_id.
insert into family_history (person_id, relationship, degree, icd10, batch_id, line)
select person_id, upper(relationship), degree, icd10, $batch_id, line from checked where reason is null
