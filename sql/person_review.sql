-- The latest follow-up review of one plan on or before the as-of date (the as-of date of its followup, flag or
-- plan_adjustment rows; write_followup writes them together). Params: $plan_id, $as_of (date).
with dates as (
    select as_of from followup where plan_id = $plan_id and as_of <= $as_of::date
    union all
    select as_of from flag where plan_id = $plan_id and as_of <= $as_of::date
    union all
    select as_of from plan_adjustment where plan_id = $plan_id and as_of <= $as_of::date
),

final as (
    select max(as_of) as review_date from dates
)

select * from final
