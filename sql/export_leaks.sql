-- Guard before any file is written: free text that reaches the export (risk rules, plan summary, item reasons and
-- guidelines) mentioning the person's own id (as a whole token) or ISO birth date. chronic writes none; the guard is
-- there because these columns are written by other stages. Counts only, never values.
-- Params: $as_of (date).
with people as (
    select k.person_id, strftime(p.birth_date, '%Y-%m-%d') as birth
    from export_keys as k
    join person as p on p.person_id = k.person_id
),

texts as (
    select person_id, unnest([rule_1, rule_2, rule_3]) as text
    from risk
    where as_of = $as_of::date
    union all
    select person_id, summary from export_plan
    union all
    select p.person_id, unnest([i.reason, i.guideline])
    from export_plan as p
    join plan_item as i on i.plan_id = p.plan_id
),

final as (
    select count(*) as leaks
    from texts as t
    join people as p on p.person_id = t.person_id
    -- contains() first: the per-row regular expression (id as a whole token) only runs on the rare candidates
    where (contains(t.text, p.person_id)
            and regexp_matches(t.text, '(^|[^0-9A-Za-z])' || regexp_escape(p.person_id) || '($|[^0-9A-Za-z])'))
        or contains(t.text, p.birth)
)

select * from final
