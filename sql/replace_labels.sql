-- Replace the labels for the as-of dates, modes and horizons of `new_labels`, then insert them.
delete from label
using (select distinct as_of, mode, coalesce(horizon_years, -1) as horizon from new_labels) as n
where label.as_of = n.as_of and label.mode = n.mode and coalesce(label.horizon_years, -1) = n.horizon;

insert into label by name select * from new_labels;
