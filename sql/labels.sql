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

-- One decision per cell (`reason_kind`); the value and the reason text follow from it. Incident kinds: prevalent,
-- unconfirmed_before, no_baseline, onset, unconfirmed_in_horizon, censored, not_tested_after, no_onset.
incident_kind as (
    select
        *,
        case
            when event_day < $as_of then 'prevalent'
            when latest_before_abnormal then 'unconfirmed_before'
            when measured and $require_baseline and last_test_before is null then 'no_baseline'
            when event_day < $horizon_end then 'onset'
            when latest_in_horizon_abnormal then 'unconfirmed_in_horizon'
            when last_day is null or last_day < $horizon_end then 'censored'
            when measured and (last_test is null or last_test < $as_of) then 'not_tested_after'
            else 'no_onset'
        end as reason_kind
    from explained
),

incident as (
    select
        *,
        case reason_kind when 'onset' then 1 when 'no_onset' then 0 end as value,
        case reason_kind
            when 'prevalent' then 'positive at baseline: ' || event_reason
            when 'unconfirmed_before'
                then 'latest reading before as-of (' || abnormal_before || ') abnormal, unconfirmed'
            when 'no_baseline' then 'no test before as-of'
            when 'onset' then 'onset: ' || event_reason
            when 'unconfirmed_in_horizon'
                then 'abnormal reading(s) from ' || abnormal_in_horizon || ', not confirmed'
            when 'censored'
                then 'followed to ' || coalesce(last_day::varchar, 'never') || ', before the horizon ends'
            when 'not_tested_after' then 'not tested after as-of'
            else 'no onset; followed to ' || last_day
                || case when measured then ', last tested ' || last_test else '' end
        end as reason
    from incident_kind
),

-- Screen kinds: positive, screen_positive, no_diagnosis, normal_reading, not_tested.
screen_kind as (
    select
        *,
        case
            when event_day < $as_of then 'positive'
            when latest_abnormal then 'screen_positive'
            when not measured then 'no_diagnosis'
            when last_test_in_lookback is not null then 'normal_reading'
            else 'not_tested'
        end as reason_kind
    from explained
),

screen as (
    select
        *,
        case when reason_kind in ('positive', 'screen_positive') then 1
            when reason_kind in ('no_diagnosis', 'normal_reading') then 0 end as value,
        case reason_kind
            when 'positive' then 'positive: ' || event_reason
            when 'screen_positive' then 'screen-positive reading on ' || last_test_in_lookback
            when 'no_diagnosis' then 'no diagnosis'
            when 'normal_reading' then 'normal reading on ' || last_test_in_lookback
            else 'not tested in the look-back window'
        end as reason
    from screen_kind
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
        reason_kind,  -- the reason's category (not stored in `label`)
        last_day as followed_to  -- the person's last record of any kind (censoring; not stored in `label`)
    from (select * from incident where $mode = 'incident' union all select * from screen where $mode = 'screen')
)

select * from final
