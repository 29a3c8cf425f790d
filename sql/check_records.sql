-- Duplicate checks for staged non-reading records (temp table `staged`, with `record_key`, `reason`, `field`):
-- the same record earlier in this file, or already loaded from another file. Params: $kind, $batch_id.
with staged as (
    select * from staged
),

ranked as (
    select
        *,
        case when reason is null
            then row_number() over (partition by record_key, reason is null order by line) end as copy_no
    from staged
),

archived as (
    select record_key, bool_or(batch_id = $batch_id) as in_this_file
    from record_seen
    where kind = $kind and record_key in (select record_key from ranked where reason is null)
    group by record_key
),

final as (
    select
        r.* exclude (copy_no, reason, field),
        case
            when r.reason is not null then r.reason
            when r.copy_no > 1 or a.in_this_file then 'duplicate_in_file'
            when a.record_key is not null then 'duplicate_reading'
        end as reason,
        case
            when r.reason is not null then r.field
            when r.copy_no > 1 or a.record_key is not null then 'line'
        end as field
    from ranked as r
    left join archived as a on a.record_key = r.record_key and r.reason is null
)

select * from final
