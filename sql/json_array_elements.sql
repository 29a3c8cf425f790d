-- The elements of a JSON array file (Open mHealth data points), one per row, in file order. Params: $path.
with final as (
    select json::varchar as text from read_json_objects($path, format = 'array')
)

select * from final
