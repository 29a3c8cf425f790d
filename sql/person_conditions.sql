-- Diagnoses of one person known by the as-of date (recorded, else onset, on or before it; undated kept).
-- Params: $person_id, $as_of (date).
with final as (
    select icd10, min(onset_date) as onset_date, min(recorded_date) as recorded_date
    from condition
    where person_id = $person_id
        and coalesce(recorded_date, onset_date, $as_of::date) <= $as_of::date
    group by icd10
)

select * from final
order by coalesce(onset_date, recorded_date) nulls last, icd10
