-- Store a follow-up run (chronic.care.followup.write_followup; run in one transaction): the rows of the plans in
-- `care_followed` at its as-of date are replaced by `care_new_followup`, `care_new_flag`, `care_new_adjustment`.
delete from followup using care_followed as k where followup.plan_id = k.plan_id and followup.as_of = k.as_of;

delete from flag using care_followed as k where flag.plan_id = k.plan_id and flag.as_of = k.as_of;

delete from plan_adjustment using care_followed as k
where plan_adjustment.plan_id = k.plan_id and plan_adjustment.as_of = k.as_of;

insert into followup by name select * from care_new_followup;

insert into flag by name select * from care_new_flag;

insert into plan_adjustment by name select * from care_new_adjustment;
