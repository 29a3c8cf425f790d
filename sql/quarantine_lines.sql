-- Every quarantined (file, line, reason), for audits.
with final as (
    select distinct source_file, line, reason from quarantine
)

select * from final
