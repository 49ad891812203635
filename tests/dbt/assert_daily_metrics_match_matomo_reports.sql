{#- The point of the project: for every closed site-day Matomo reported, the numbers
    recomputed from the raw visits equal Matomo's own, metric by metric. -#}
select *
from {{ ref('rpt_matomo_reconciliation') }}
where is_comparable
    and not is_match
