-- Validate staged readings in columns and give each its first failing check (null reason = good), in the order a
-- data manager would fix them. Input: table `stage_obs` (columns: line, person_id, clinic_id, device_id, ts_raw,
-- code, value_raw, unit, value_path, unit_path, pair_key, pre_reason, pre_field), reference views `ref_codes`,
-- `ref_units`, and the archive's `observation` table (for readings already loaded).
-- Params: $batch_id, $now (UTC timestamp of the ingest), $date_only_ok (FHIR allows a bare date).
-- Performance: this runs on every reading of every file, so the per-row work is plain string tests and casts;
-- regular expressions run only on the rows that already failed, and de-duplication is an aggregate, not a window.
with coded as (
    select
        s.*,
        c.measure,
        c.canonical_unit,
        c.range_lo,
        c.range_hi,
        u.factor,
        u."offset" as unit_offset,
        try_cast(s.value_raw as double) as value_num,
        -- the cheap shape test of an ISO 8601 date-time with offset; the cast does the real parsing
        substr(s.ts_raw, 11, 1) = 'T' and (
            right(s.ts_raw, 1) = 'Z' or (substr(s.ts_raw, -6, 1) in ('+', '-') and substr(s.ts_raw, -3, 1) = ':')
        ) as ts_with_offset,
        $date_only_ok and len(s.ts_raw) = 10 as ts_date_only
    from stage_obs as s
    left join ref_codes as c on c.code = s.code
    left join ref_units as u on u.measure = c.measure and u.unit = s.unit
),

converted as (
    select
        *,
        case when ts_with_offset or ts_date_only
            then timezone('UTC', try_cast(ts_raw as timestamptz)) end as effective_at,
        round(value_num * factor + unit_offset, 6) as value
    from coded
),

-- only the columns later steps read: this is the one table-sized intermediate
checked as materialized (
    select
        line,
        person_id,
        clinic_id,
        device_id,
        ts_raw,
        code,
        measure,
        canonical_unit,
        effective_at,
        value,
        value_path,
        pair_key,
        reason,
        case
            when reason is null then null
            when reason = pre_reason then pre_field
            when reason in ('missing_field') then missing
            when reason in ('unknown_code') then 'code'
            when reason in ('unknown_unit', 'unit_mismatch') then unit_path
            when reason in ('non_numeric_value', 'out_of_range') then value_path
            else 'measured_at'
        end as field
    from (
        select
            *,
            case
                when person_id is null then 'person_id'
                when code is null then 'code'
                when ts_raw is null then 'measured_at'
                when value_raw is null then value_path
                when unit is null then unit_path
            end as missing,
            case
                when pre_reason is not null then pre_reason
                when person_id is null or code is null or ts_raw is null then 'missing_field'
                when measure is null then 'unknown_code'
                when value_raw is null or unit is null then 'missing_field'
                when factor is null and unit in (select unit from ref_units) then 'unit_mismatch'
                when factor is null then 'unknown_unit'
                when value_num is null or not isfinite(value_num) then 'non_numeric_value'
                when effective_at is null and (
                    not (ts_with_offset or ts_date_only)
                    or not regexp_full_match(ts_raw, '\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?')
                ) then 'malformed_timestamp'
                when effective_at is null then 'impossible_timestamp'
                when effective_at > $now then 'future_timestamp'
                when value < range_lo or value > range_hi then 'out_of_range'
            end as reason,
            null::varchar as field
        from converted
    )
),

-- the same reading (person, measure, instant, value) earlier in this chunk: group on a hash first (cheap), then
-- on the full key only for the few rows whose hash repeats, so a hash collision can never drop a reading
repeated_hash as (
    select hash(person_id, measure, effective_at, value) as h
    from checked
    where reason is null
    group by h
    having count(*) > 1
),

dup_lines as (
    select line
    from (
        select
            line,
            row_number() over (partition by person_id, measure, effective_at, value order by line) as copy_no
        from checked
        where reason is null and hash(person_id, measure, effective_at, value) in (select h from repeated_hash)
    )
    where copy_no > 1
),

-- one blood-pressure measurement whose diastolic is not below its systolic: both rows are suspect. A CSV
-- measurement is its person, device and time; a JSON one is its line.
bp_rows as (
    select line, coalesce(pair_key, concat_ws('|', person_id, device_id, ts_raw)) as bp_key, measure, value
    from checked
    where reason is null and measure in ('sbp', 'dbp') and line not in (select line from dup_lines)
),

bp_bad as (
    select bp_key
    from bp_rows
    group by bp_key
    having max(value) filter (where measure = 'dbp') >= max(value) filter (where measure = 'sbp')
),

bp_bad_lines as (
    select r.line, r.measure
    from bp_rows as r
    semi join bp_bad as b on b.bp_key = r.bp_key
),

-- readings already in the archive: from this file (an earlier chunk) or from another file. The time range of the
-- chunk bounds the scan: the archive's row groups of other periods are skipped by their min/max (zone maps).
chunk_span as (
    select min(effective_at) as t0, max(effective_at) as t1 from checked where reason is null
),

archived as (
    select
        o.person_id,
        o.measure,
        o.effective_at,
        o.value,
        bool_or(o.batch_id = $batch_id) as in_this_file
    from observation as o
    semi join (select * from checked where reason is null) as k
        using (person_id, measure, effective_at, value)
    where o.effective_at between (select t0 from chunk_span) and (select t1 from chunk_span)
    group by all
),

final as (
    select
        d.line,
        d.person_id,
        d.clinic_id,
        d.device_id,
        d.measure,
        d.code,
        d.value,
        d.canonical_unit as unit,
        d.effective_at,
        case
            when d.ts_raw is null or length(d.ts_raw) <= 10 or right(d.ts_raw, 1) = 'Z' or substr(d.ts_raw, -6, 1) not in ('+', '-') then 0
            else (case when substr(d.ts_raw, -6, 1) = '-' then -1 else 1 end)
                * (try_cast(substr(d.ts_raw, -5, 2) as int) * 60 + try_cast(right(d.ts_raw, 2) as int))
        end as tz_offset_min,
        case
            when d.reason is not null then d.reason
            when x.line is not null then 'duplicate_in_file'
            when b.line is not null then 'dbp_ge_sbp'
            when a.in_this_file then 'duplicate_in_file'
            when a.person_id is not null then 'duplicate_reading'
        end as reason,
        case
            when d.reason is not null then d.field
            when x.line is not null then 'line'
            when b.line is not null then d.value_path
            when a.person_id is not null then 'line'
        end as field
    from checked as d
    left join dup_lines as x on x.line = d.line and d.reason is null
    left join bp_bad_lines as b on b.line = d.line and b.measure = d.measure and d.reason is null
    left join archived as a
        on d.reason is null
        and a.person_id = d.person_id
        and a.measure = d.measure
        and a.effective_at = d.effective_at
        and a.value = d.value
)

select * from final
