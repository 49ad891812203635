{#- Every action happens between its visit's first and last action (true UTC times): a
    wrong timezone or DST correction of Matomo's local action timestamps shows up here.
    An action and its visit share the visit's day, so both sides read the same rebuilt days. -#}
select
    actions.action_id,
    actions.action_at,
    visits.first_action_at,
    visits.last_action_at
from {{ rebuilt_rows(ref('fct_actions')) }} as actions
inner join {{ rebuilt_rows(ref('fct_visits')) }} as visits
    on actions.visit_id = visits.visit_id
where actions.action_at < visits.first_action_at
    or actions.action_at > visits.last_action_at
