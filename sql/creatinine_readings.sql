-- Serum creatinine readings with the person's age and sex at the reading, for eGFR (CKD-EPI 2021).
with final as (
    select
        o.person_id,
        o.value as creatinine_umol,
        o.effective_at,
        o.tz_offset_min,
        p.sex,
        date_diff('day', p.birth_date, cast(o.effective_at as date)) / 365.25 as age
    from observation as o
    join person as p on p.person_id = o.person_id
    where o.measure = 'creatinine'
)

select * from final
