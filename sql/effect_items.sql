-- Plan items of the plans that started on $plan_start, with what `chronic effect` (chronic.care.effect) and the
-- follow-up simulation (chronic.synth.intervention) adjust on: age and sex at the start, the item's baseline (the
-- value the plan recorded), and the risk of the item's task at the start and at $as_of (for an item without a task,
-- e.g. weight_loss, the person's highest probability over tasks). All plans with that start date are read, active or
-- superseded since. Where a person x task has several risk rows on one date (re-scored), the latest scoring counts.
-- Params: $plan_start (date), $as_of (date: risk_now; pass $plan_start when not needed).
with items as (
    select
        p.plan_id, p.person_id, p.clinic_id as plan_clinic, i.item_id, i.item_type, i.task, i.target_measure,
        i.target_op, i.target_value, i.baseline_value
    from plan as p
    join plan_item as i on i.plan_id = p.plan_id
    where p.start_date = $plan_start::date
),

scored as (
    select person_id, task, as_of, arg_max(probability, scored_at) as probability
    from risk
    where as_of = $plan_start::date or as_of = $as_of::date
    group by person_id, task, as_of
),

highest as (
    select person_id, as_of, max(probability) as probability
    from scored
    group by person_id, as_of
)

select
    i.plan_id,
    i.item_id,
    i.person_id,
    coalesce(i.plan_clinic, pe.clinic_id) as clinic_id,
    i.item_type,
    i.task,
    i.target_measure,
    i.target_op,
    i.target_value,
    i.baseline_value,
    datediff('day', pe.birth_date, $plan_start::date) / 365.25 as age,
    case pe.sex when 'M' then 1 when 'F' then 0 end as male,
    coalesce(ts.probability, case when i.task is null then hs.probability end) as risk_start,
    coalesce(tn.probability, case when i.task is null then hn.probability end) as risk_now
from items as i
left join person as pe on pe.person_id = i.person_id
left join scored as ts on ts.person_id = i.person_id and ts.task = i.task and ts.as_of = $plan_start::date
left join scored as tn on tn.person_id = i.person_id and tn.task = i.task and tn.as_of = $as_of::date
left join highest as hs on hs.person_id = i.person_id and hs.as_of = $plan_start::date
left join highest as hn on hn.person_id = i.person_id and hn.as_of = $as_of::date
order by i.plan_id, i.item_id
