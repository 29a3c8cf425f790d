-- Rows per archive table, for summaries.
with final as (
    select 'person' as "table", count(*) as n from person
    union all select 'observation', count(*) from observation
    union all select 'condition', count(*) from condition
    union all select 'medication', count(*) from medication
    union all select 'family_history', count(*) from family_history
    union all select 'lifestyle', count(*) from lifestyle
    union all select 'quarantine', count(*) from quarantine
    union all select 'ingest_batch', count(*) from ingest_batch
    union all select 'label', count(*) from label
)

select * from final
