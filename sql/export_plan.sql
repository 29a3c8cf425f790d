-- The plan in force at the as-of date for every exported person (temp table `export_keys`): the latest plan started
-- on or before the as-of date (an active plan before a superseded one of the same day). Reading the start date, not
-- only the status, keeps a re-export of a past date the same after newer plans supersede it.
-- Params: $as_of (date).
with candidates as (
    select
        p.plan_id,
        p.person_id,
        k.clinic_id,
        k.person_key,
        p.start_date,
        p.band,
        p.next_followup,
        p.summary,
        p.status
    from plan as p
    join export_keys as k on k.person_id = p.person_id
    where p.start_date <= $as_of::date
),

final as (
    select *
    from candidates
    qualify row_number() over (
        partition by person_id order by start_date desc, (status = 'active') desc, plan_id
    ) = 1
)

select * from final
