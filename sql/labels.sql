-- Labels per person x task at an as-of date (docs/labels.md), with the reason for each value.
-- Input: temp table `label_days` (label_days.sql), `person`, `condition`, `medication`, `observation`,
-- `label_codes(task, kind, prefix)`, `label_tasks(task, confirm_days, persist_days, measured)`.
-- Params: $as_of (date), $horizon_end (date: as_of + horizon), $mode ('incident' | 'screen'), $lookback_start (date),
-- $require_baseline (bool).
with tasks as (
    select task, measured from label_tasks
),

people as (
    select p.person_id, p.clinic_id, t.task, t.measured
    from person as p
    cross join tasks as t
),

dx as (
    select c.person_id, k.task, arg_min(c.icd10, coalesce(c.onset_date, c.recorded_date)) as code,
        min(coalesce(c.onset_date, c.recorded_date)) as day
    from condition as c
    join label_codes as k on k.kind = 'icd10' and starts_with(c.icd10, k.prefix)
    group by all
),

drug as (
    select m.person_id, k.task, arg_min(m.atc, m.start_date) as code, min(m.start_date) as day
    from medication as m
    join label_codes as k on k.kind = 'atc' and starts_with(m.atc, k.prefix)
    group by all
),

measured as (
    select
        person_id,
        task,
        min(day) filter (where confirmed) as confirmed_day,
        -- the latest test before as-of was abnormal but not (yet) confirmed: baseline status unknown
        arg_max(abnormal, day) filter (where day < $as_of) as latest_before_abnormal,
        max(day) filter (where abnormal and day < $as_of) as abnormal_before,
        min(day) filter (where abnormal and day >= $as_of and day < $horizon_end) as abnormal_in_horizon,
        -- the latest test in the horizon abnormal but unconfirmed: it may yet be confirmed, so not a negative
        arg_max(abnormal, day) filter (where day >= $as_of and day < $horizon_end) as latest_in_horizon_abnormal,
        max(day) filter (where day < $as_of) as last_test_before,
        max(day) filter (where day < $as_of and day >= $lookback_start) as last_test_in_lookback,
        max(day) as last_test,
        -- screen mode: the latest day tested in the look-back, and whether it was abnormal
        arg_max(abnormal, day) filter (where day < $as_of and day >= $lookback_start) as latest_abnormal
    from label_days
    group by all
),

followed as (
    select person_id, max(day) as last_day
    from (
        select person_id, cast(effective_at as date) as day from observation
        union all select person_id, coalesce(onset_date, recorded_date) from condition
        union all select person_id, start_date from medication
    )
    group by person_id
),

events as (
    select
        p.person_id,
        p.clinic_id,
        p.task,
        p.measured,
        d.day as dx_day,
        d.code as dx_code,
        g.day as drug_day,
        g.code as drug_code,
        m.confirmed_day,
        m.abnormal_before,
        m.latest_before_abnormal,
        m.abnormal_in_horizon,
        m.latest_in_horizon_abnormal,
        m.last_test_before,
        m.last_test_in_lookback,
        m.last_test,
        m.latest_abnormal,
        f.last_day,
        least(d.day, g.day, m.confirmed_day) as event_day
    from people as p
    left join dx as d on d.person_id = p.person_id and d.task = p.task
    left join drug as g on g.person_id = p.person_id and g.task = p.task
    left join measured as m on m.person_id = p.person_id and m.task = p.task
    left join followed as f on f.person_id = p.person_id
),

explained as (
    select
        *,
        case
            when event_day is null then null
            when event_day = dx_day then 'diagnosis ' || dx_code || ' on ' || dx_day
            when event_day = drug_day then 'drug ' || drug_code || ' from ' || drug_day
            else 'confirmed abnormal readings from ' || confirmed_day
        end as event_reason
    from events
),

incident as (
    select
        *,
        case
            when event_day < $as_of then null
            when latest_before_abnormal then null
            when measured and $require_baseline and last_test_before is null then null
            when event_day < $horizon_end then 1
            when latest_in_horizon_abnormal then null
            when last_day is null or last_day < $horizon_end then null
            when measured and (last_test is null or last_test < $as_of) then null
            else 0
        end as value,
        case
            when event_day < $as_of then 'positive at baseline: ' || event_reason
            when latest_before_abnormal
                then 'latest reading before as-of (' || abnormal_before || ') abnormal, unconfirmed'
            when measured and $require_baseline and last_test_before is null then 'no test before as-of'
            when event_day < $horizon_end then 'onset: ' || event_reason
            when latest_in_horizon_abnormal
                then 'abnormal reading(s) from ' || abnormal_in_horizon || ', not confirmed'
            when last_day is null or last_day < $horizon_end
                then 'followed to ' || coalesce(last_day::varchar, 'never') || ', before the horizon ends'
            when measured and (last_test is null or last_test < $as_of) then 'not tested after as-of'
            else 'no onset; followed to ' || last_day
                || case when measured then ', last tested ' || last_test else '' end
        end as reason
    from explained
),

screen as (
    select
        *,
        case
            when event_day < $as_of then 1
            when latest_abnormal then 1
            when not measured then 0
            when last_test_in_lookback is not null then 0
        end as value,
        case
            when event_day < $as_of then 'positive: ' || event_reason
            when latest_abnormal then 'screen-positive reading on ' || last_test_in_lookback
            when not measured then 'no diagnosis'
            when last_test_in_lookback is not null then 'normal reading on ' || last_test_in_lookback
            else 'not tested in the look-back window'
        end as reason
    from explained
),

final as (
    select
        person_id,
        clinic_id,
        task,
        $as_of::date as as_of,
        $mode as mode,
        value::tinyint as value,
        case when value = 1 then coalesce(
            case when $mode = 'screen' and event_day is null then last_test_in_lookback end, event_day
        ) end as event_date,
        reason,
        last_day as followed_to  -- the person's last record of any kind (censoring; not stored in `label`)
    from (select * from incident where $mode = 'incident' union all select * from screen where $mode = 'screen')
)

select * from final
