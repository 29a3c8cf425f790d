-- Aggregate view of one scoring date: people per task and band, and probability deciles per task (no person data).
with rows as (
    select task, band, probability from risk where as_of = $as_of
),

bands as (
    select task, band, count(*) as people, avg(probability) as mean_probability
    from rows
    group by task, band
),

final as (
    select b.task, b.band, b.people, b.mean_probability,
           q.p10, q.p50, q.p90
    from bands b
    join (
        select task,
               quantile_cont(probability, 0.1) as p10,
               quantile_cont(probability, 0.5) as p50,
               quantile_cont(probability, 0.9) as p90
        from rows group by task
    ) q using (task)
    order by b.task, b.band
)

select * from final
