-- Device CSV lines -> staged readings (one per row), in the common shape of stage_obs.
-- Input: view `lines_chunk(line, text)`. Params: $last_unterminated (line number of a last line with no line end,
-- or -1), $n_fields (fields in the header), $i_<column> (1-based position of each column in the header, which may
-- come in any order).
-- Fields are split on commas; a field wrapped in double quotes has them removed (the format has no embedded commas).
with lines as (
    select line, text from lines_chunk
    where line > 1 and trim(text) <> ''
),

split as (
    select line, text, list_transform(string_split(text, ','), lambda f: nullif(trim(trim(f), '"'), '')) as f
    from lines
),

final as (
    select
        line,
        text as raw,
        f[$i_person_id] as person_id,
        f[$i_clinic_id] as clinic_id,
        f[$i_device_id] as device_id,
        f[$i_measured_at] as ts_raw,
        f[$i_code] as code,
        f[$i_value] as value_raw,
        f[$i_unit] as unit,
        'value' as value_path,
        'unit' as unit_path,
        -- systolic and diastolic of one measurement share person, device and time
        concat_ws('|', f[$i_person_id], f[$i_device_id], f[$i_measured_at]) as pair_key,
        case
            when len(f) < $n_fields and line = $last_unterminated then 'truncated_line'
            when len(f) <> $n_fields then 'wrong_field_count'
        end as pre_reason,
        case when len(f) <> $n_fields then 'line' end as pre_field
    from split
)

select * from final
