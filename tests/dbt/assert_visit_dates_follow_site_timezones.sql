{#- The extractor assigns each visit its report day (local date of the last action in the
    site's timezone); recompute it here from the UTC time and the site's timezone. A site
    whose timezone changed since extraction, or an extractor bug, shows up here. -#}
with

visits as (

    select
        visits.visit_id,
        visits.visit_date_local,
        visits.last_action_at,
        sites.timezone
    from {{ rebuilt_rows(ref('fct_visits')) }} as visits
    inner join {{ ref('dim_sites') }} as sites
        on visits.site_id = sites.site_id

),

recomputed as (

    select
        *,
        cast({{ epoch_seconds_to_wall_clock(
            timestamp_to_epoch_seconds('last_action_at') ~ ' + '
            ~ utc_offset_seconds(timestamp_to_epoch_seconds('last_action_at'), 'timezone')
        ) }} as date) as recomputed_date_local
    from visits

)

select *
from recomputed
where recomputed_date_local <> visit_date_local
