-- Medications of one person started by the as-of date (undated kept); a drug that ended after the as-of date
-- counts as active then. Params: $person_id, $as_of (date).
with final as (
    select
        atc,
        start_date,
        end_date,
        case when end_date is not null and end_date > $as_of::date then 'active' else status end as status
    from medication
    where person_id = $person_id
        and coalesce(start_date, $as_of::date) <= $as_of::date
)

select distinct * from final
order by (status = 'active') desc, start_date desc nulls last, atc
