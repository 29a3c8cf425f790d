-- Device CSV lines -> staged readings (one per row), in the common shape of stage_obs. A view: the checks read it
-- straight from the lines, so staging costs no table of its own.
-- Input: view `lines_chunk(line, text)`, one-row table `csv_params` (`last_unterminated`: line number of a last line
-- with no line end or -1; `n_fields`: fields in the header; `i_<column>`: 1-based position of each column in the
-- header, which may come in any order). Fields are split on commas (the format has no embedded commas); fields in
-- double quotes or with spaces around them are trimmed.
with lines as (
    select line, text from lines_chunk
    -- blank lines are skipped; only short lines pay for the trim that finds whitespace-only ones
    where line > 1 and text <> '' and (length(text) > 8 or trim(text) <> '')
),

-- most lines are plain: only lines with quotes or spaces pay for trimming each field
split as (
    select
        line,
        case when contains(text, '"') or contains(text, ' ')
            then list_transform(string_split(text, ','), lambda f: trim(trim(f), '"'))
            else string_split(text, ',')
        end as f
    from lines
),

final as (
    select
        s.line,
        nullif(s.f[p.i_person_id], '') as person_id,
        nullif(s.f[p.i_clinic_id], '') as clinic_id,
        nullif(s.f[p.i_device_id], '') as device_id,
        nullif(s.f[p.i_measured_at], '') as ts_raw,
        nullif(s.f[p.i_code], '') as code,
        nullif(s.f[p.i_value], '') as value_raw,
        nullif(s.f[p.i_unit], '') as unit,
        'value' as value_path,
        'unit' as unit_path,
        -- systolic and diastolic of one measurement share person, device and time (check_observations pairs them)
        null::varchar as pair_key,
        case
            when len(s.f) < p.n_fields and s.line = p.last_unterminated then 'truncated_line'
            when len(s.f) <> p.n_fields then 'wrong_field_count'
        end as pre_reason,
        case when len(s.f) <> p.n_fields then 'line' end as pre_field
    from split as s
    cross join csv_params as p
)

select * from final
