-- People first seen in device readings: keep who they are and their clinic until a Patient record arrives.
-- Params: $batch_id.
insert into person (person_id, clinic_id, batch_id)
select person_id, min(clinic_id), $batch_id
from checked
where reason is null
group by person_id
on conflict (person_id) do nothing
