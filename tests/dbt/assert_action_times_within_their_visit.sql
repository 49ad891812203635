{#- Every action happens between its visit's first and last action (true UTC times): a
    wrong timezone or DST correction of Matomo's local action timestamps shows up here.
    An action and its visit share the visit's day, so the visits are read from the days the
    actions were rebuilt from (each model's own start can differ: fct_actions lacks visits
    without actions, so its newest version can be older and its start earlier). -#}
{%- set actions_days = rebuilt_days_condition(ref('fct_actions')) %}
select
    actions.action_id,
    actions.action_at,
    visits.first_action_at,
    visits.last_action_at
from {{ rebuilt_rows(ref('fct_actions')) }} as actions
inner join (
    select * from {{ ref('fct_visits') }}
    {% if actions_days %}where {{ actions_days }}{% endif %}
) as visits
    on actions.visit_id = visits.visit_id
where actions.action_at < visits.first_action_at
    or actions.action_at > visits.last_action_at
