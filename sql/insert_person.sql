-- Patients of `checked` -> person; a Patient record completes (or corrects) a stub made from device readings.
-- Params: $batch_id.
insert into person (person_id, clinic_id, sex, birth_date, province, north, urban, batch_id)
select person_id, clinic_id, sex, birth_date, province, north, urban, $batch_id
from checked
where reason is null
on conflict (person_id) do update set
    clinic_id = coalesce(excluded.clinic_id, person.clinic_id),
    sex = excluded.sex,
    birth_date = excluded.birth_date,
    province = excluded.province,
    north = excluded.north,
    urban = excluded.urban,
    batch_id = excluded.batch_id
