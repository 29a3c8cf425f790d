-- Per person x measure: the mean of the latest $last_n readings strictly before $plan_start within $lookback_days
-- (chronic.synth.intervention takes it as the person's usual level, which the follow-up readings scatter around).
-- Params: $plan_start (date), $lookback_days (int), $last_n (int), $measures (varchar[]).
select person_id, measure, avg(value) as level, count(*) as n_readings
from (
    select
        person_id, measure, value,
        row_number() over (partition by person_id, measure order by effective_at desc, value) as k
    from observation
    where effective_at < $plan_start::timestamp
        and effective_at >= $plan_start::timestamp - to_days($lookback_days::int)
        and list_contains($measures::varchar[], measure)
)
where k <= $last_n::int
group by person_id, measure
order by person_id, measure
