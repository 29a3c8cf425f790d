-- risk.csv / risk.parquet of one clinic (docs/exports.md): one row per exported person x task at the as-of date,
-- pseudonymised (temp table `export_keys`), with the next follow-up of the plan in force (temp table `export_plan`).
-- A person x task scored more than once for the date keeps its latest scoring. `task_order` (from the registered
-- `export_tasks`) only sorts the rows.
-- Params: $as_of (date), $clinic (varchar), $complete_at (double: completeness from which the data count complete).
with people as (
    select person_id, person_key
    from export_keys
    where clinic_id = $clinic
),

scored as (
    select r.*, p.person_key
    from risk as r
    join people as p on p.person_id = r.person_id
    where r.as_of = $as_of::date
    qualify row_number() over (
        partition by r.person_id, r.task
        order by r.scored_at desc, r.model_name desc, r.model_version desc, r.probability desc
    ) = 1
),

final as (
    select
        s.person_key,
        s.task,
        s.probability,
        s.band,
        s.percentile,
        s.rule_1,
        s.rule_2,
        s.rule_3,
        s.model_name,
        s.model_version,
        s.as_of,
        s.completeness,
        case
            when s.completeness is null then 'unknown'
            when s.completeness >= $complete_at::double then 'complete'
            else 'partial'
        end as data_completeness,
        pl.next_followup,
        coalesce(t.task_order, 1000) as task_order
    from scored as s
    left join export_plan as pl on pl.person_id = s.person_id
    left join export_tasks as t on t.task = s.task
)

select * from final
