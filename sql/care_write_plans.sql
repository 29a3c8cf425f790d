-- Store the plans of `care_new_plan` and the items of `care_new_plan_item` (chronic.care.plans.write_plans; run in
-- one transaction). A plan id is a hash of person and start date, so deleting the same ids first makes a rerun
-- replace the plans and their items instead of adding copies.
delete from plan_item where plan_id in (select plan_id from care_new_plan);

delete from plan where plan_id in (select plan_id from care_new_plan);

-- older active plans of the same people are superseded by the new ones
update plan set status = 'superseded'
from care_new_plan as n
where plan.person_id = n.person_id and plan.status = 'active' and plan.start_date < n.start_date;

insert into plan by name
select plan_id, person_id, clinic_id, start_date, band, next_followup, summary, status
from care_new_plan;

-- a new plan older than a plan already stored for the person (a rerun of a past date) is not the one in force
update plan set status = 'superseded'
where plan_id in (select plan_id from care_new_plan)
  and exists (
    select 1 from plan as later
    where later.person_id = plan.person_id and later.start_date > plan.start_date
  );

insert into plan_item by name
select plan_id, item_id, item_type, task, reason, target_measure, target_op, target_value, baseline_value,
       review_days, guideline, level
from care_new_plan_item;
