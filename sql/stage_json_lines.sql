-- JSON lines (FHIR NDJSON or Open mHealth JSON Lines) -> one row per non-empty line with its parse status.
-- Input: view `lines_chunk(line, text)`. Params: $last_unterminated (line number of a last line with no line end,
-- or -1). A JSON array file is flattened to elements before this (see chronic.archive.jsonfile).
with lines as (
    select line, text from lines_chunk where text <> '' and (length(text) > 8 or trim(text) <> '')
),

final as (
    select
        line,
        text as raw,
        -- CASE evaluates the cast only where the text is valid JSON
        coalesce(case when json_valid(text) then json_type(text::json) = 'OBJECT' end, false) as valid,
        case when json_valid(text) and starts_with(ltrim(text), '{') then text::json end as j,
        case
            when json_valid(text) and starts_with(ltrim(text), '{') then null
            when line = $last_unterminated then 'truncated_line'
            else 'malformed_json'
        end as pre_reason
    from lines
)

select * from final
