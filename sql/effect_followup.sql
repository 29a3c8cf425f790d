-- Per person x measure: the follow-up value `chronic effect` compares with the plan's baseline - the mean of the
-- readings from $settle_days after $plan_start (an intervention needs weeks to act) up to, not including, $as_of.
-- Params: $plan_start (date), $as_of (date), $settle_days (int), $measures (varchar[]).
select
    person_id,
    measure,
    avg(value) as followup_value,
    count(*) as n_followup,
    max(effective_at) as latest_at
from observation
where effective_at >= $plan_start::timestamp + to_days($settle_days::int)
    and effective_at < $as_of::timestamp
    and list_contains($measures::varchar[], measure)
group by person_id, measure
order by person_id, measure
