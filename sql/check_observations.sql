-- Validate staged readings in columns and give each its first failing check (null reason = good), in the order a
-- data manager would fix them. Input: table `stage_obs` (see stage_device_csv.sql for its columns), reference views
-- `ref_codes`, `ref_units`, and the archive's `observation` table (for duplicates of readings already loaded).
-- Params: $batch_id, $now (UTC timestamp of the ingest), $date_only_ok (FHIR allows a bare date).
with staged as (
    select * from stage_obs
),

coded as (
    select
        s.*,
        c.measure,
        c.canonical_unit,
        c.range_lo,
        c.range_hi,
        u.factor,
        u."offset" as unit_offset,
        s.unit in (select unit from ref_units) as unit_known
    from staged as s
    left join ref_codes as c on c.code = s.code
    left join ref_units as u on u.measure = c.measure and u.unit = s.unit
),

parsed as (
    select
        *,
        try_cast(value_raw as double) as value_num,
        regexp_full_match(
            ts_raw, '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})'
        ) as ts_with_offset,
        $date_only_ok and regexp_full_match(ts_raw, '\d{4}-\d{2}-\d{2}') as ts_date_only,
        regexp_extract(ts_raw, '([+-])(\d{2}):(\d{2})$', ['sign', 'hh', 'mm']) as tz
    from coded
),

converted as (
    select
        *,
        case when ts_with_offset or ts_date_only
            then timezone('UTC', try_cast(ts_raw as timestamptz)) end as effective_at,
        case
            when tz.sign = '' then 0
            else (case when tz.sign = '-' then -1 else 1 end) * (try_cast(tz.hh as int) * 60 + try_cast(tz.mm as int))
        end as tz_offset_min,
        round(value_num * factor + unit_offset, 6) as value
    from parsed
),

checked as (
    select
        *,
        case
            when pre_reason is not null then pre_reason
            when person_id is null then 'missing_field'
            when code is null then 'missing_field'
            when ts_raw is null then 'missing_field'
            when measure is null then 'unknown_code'
            when value_raw is null then 'missing_field'
            when unit is null then 'missing_field'
            when factor is null and not unit_known then 'unknown_unit'
            when factor is null then 'unit_mismatch'
            when value_num is null or not isfinite(value_num) then 'non_numeric_value'
            when not (ts_with_offset or ts_date_only) then 'malformed_timestamp'
            when effective_at is null then 'impossible_timestamp'
            when effective_at > $now then 'future_timestamp'
            when value < range_lo or value > range_hi then 'out_of_range'
        end as reason,
        case
            when pre_reason is not null then pre_field
            when person_id is null then 'person_id'
            when code is null then 'code'
            when ts_raw is null then 'measured_at'
            when measure is null then 'code'
            when value_raw is null then value_path
            when unit is null then unit_path
            when factor is null then unit_path
            when value_num is null or not isfinite(value_num) then value_path
            when not (ts_with_offset or ts_date_only) or effective_at is null or effective_at > $now then 'measured_at'
            when value < range_lo or value > range_hi then value_path
        end as field
    from converted
),

-- the same reading (person, measure, instant, value) earlier in this chunk
ranked as (
    select
        *,
        case when reason is null then row_number() over (
            partition by person_id, measure, effective_at, value, reason is null order by line
        ) end as copy_no
    from checked
),

deduped as (
    select
        * replace (
            case when copy_no > 1 then 'duplicate_in_file' else reason end as reason,
            case when copy_no > 1 then 'line' else field end as field
        )
    from ranked
),

-- one blood-pressure measurement whose diastolic is not below its systolic: both rows are suspect
bp_pairs as (
    select
        pair_key,
        max(value) filter (where measure = 'sbp') as sbp,
        max(value) filter (where measure = 'dbp') as dbp
    from deduped
    where reason is null and measure in ('sbp', 'dbp')
    group by pair_key
),

bp_bad as (
    select pair_key from bp_pairs where dbp >= sbp
),

bp_checked as (
    select
        d.* replace (
            case when b.pair_key is not null and d.measure in ('sbp', 'dbp') and d.reason is null
                then 'dbp_ge_sbp' else d.reason end as reason,
            case when b.pair_key is not null and d.measure in ('sbp', 'dbp') and d.reason is null
                then d.value_path else d.field end as field
        )
    from deduped as d
    left join bp_bad as b on b.pair_key = d.pair_key
),

-- readings already in the archive: from this file (an earlier chunk) or from another file
archived as (
    select
        o.person_id,
        o.measure,
        o.effective_at,
        o.value,
        bool_or(o.batch_id = $batch_id) as in_this_file
    from observation as o
    semi join (select * from bp_checked where reason is null) as k
        using (person_id, measure, effective_at, value)
    group by all
),

final as (
    select
        c.line,
        c.raw,
        c.person_id,
        c.clinic_id,
        c.device_id,
        c.measure,
        c.code,
        c.value,
        c.canonical_unit as unit,
        c.effective_at,
        c.tz_offset_min,
        case
            when c.reason is not null then c.reason
            when a.in_this_file then 'duplicate_in_file'
            when a.person_id is not null then 'duplicate_reading'
        end as reason,
        case when c.reason is null and a.person_id is not null then 'line' else c.field end as field
    from bp_checked as c
    left join archived as a using (person_id, measure, effective_at, value)
)

select * from final
