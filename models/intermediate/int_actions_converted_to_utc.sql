{# Every action with its true UTC time. Matomo's action `timestamp` is the site-local wall
    clock encoded as if UTC, so UTC = local - (the site's UTC offset at that instant). The
    offset is read at the visit's first and last action (true UTC epochs):
      - equal offsets (every visit that does not span a DST change): subtract it;
      - different offsets: the action is before the change if subtracting the first offset
        gives a time that has that offset and is not before the visit started; otherwise
        it is after the change. In the repeated hour of a fall-back night, an action of a
        visit that lasted over an hour across the change gets the first occurrence. #}

with

actions as (

    select
        *,
        {{ wall_clock_to_epoch_seconds('action_at_local') }} as local_epoch
    from {{ ref('stg_matomo__actions') }}

),

visits as (

    select
        visit_id,
        site_id,
        visit_date_local,
        {{ timestamp_to_epoch_seconds('first_action_at') }} as first_epoch,
        {{ timestamp_to_epoch_seconds('last_action_at') }} as last_epoch
    from {{ ref('stg_matomo__visits') }}

),

sites as (

    select
        site_id,
        timezone
    from {{ ref('stg_matomo__sites') }}

),

{# Time zone lookups are the expensive part: two per visit, not per action. #}
visit_offsets as (

    select
        visits.visit_id,
        visits.visit_date_local,
        visits.first_epoch,
        sites.timezone,
        {{ utc_offset_seconds('visits.first_epoch', 'sites.timezone') }}
            as first_offset_seconds,
        {{ utc_offset_seconds('visits.last_epoch', 'sites.timezone') }}
            as last_offset_seconds
    from visits
    left join sites
        on visits.site_id = sites.site_id

),

resolved as (

    select
        actions.*,
        case
            when visit_offsets.first_offset_seconds = visit_offsets.last_offset_seconds
                then actions.local_epoch - visit_offsets.first_offset_seconds
            when actions.local_epoch - visit_offsets.first_offset_seconds
                    >= visit_offsets.first_epoch
                and {{ utc_offset_seconds(
                    'actions.local_epoch - visit_offsets.first_offset_seconds',
                    'visit_offsets.timezone'
                ) }} = visit_offsets.first_offset_seconds
                then actions.local_epoch - visit_offsets.first_offset_seconds
            else actions.local_epoch - visit_offsets.last_offset_seconds
        end as action_epoch
    from actions
    {# joining on the day too lets an incremental filter on it reach both sides #}
    inner join visit_offsets
        on actions.visit_id = visit_offsets.visit_id
        and actions.visit_date_local = visit_offsets.visit_date_local

),

final as (

    select
        action_id,
        visit_id,
        site_id,
        action_index,
        visit_action_id,
        page_action_id,
        pageview_id,
        goal_id,
        order_id,
        matomo_action_type,
        action_type,
        url,
        page_title,
        search_keyword,
        search_category,
        event_category,
        event_action,
        event_name,
        content_name,
        content_piece,
        content_target,
        content_interaction,
        product_sku,
        product_name,
        product_categories,
        goal_name,
        attributed_referrer_type,
        attributed_referrer_name,
        attributed_referrer_keyword,
        pageview_position,
        time_spent_seconds,
        page_load_time_ms,
        generation_time_ms,
        search_result_count,
        event_value,
        product_price,
        revenue,
        revenue_subtotal,
        revenue_tax,
        revenue_shipping,
        revenue_discount,
        item_count,
        action_date_local,
        visit_date_local,
        {{ epoch_seconds_to_timestamp('action_epoch') }} as action_at,
        action_at_local,
        _extracted_at,
        _extract_run_id
    from resolved

)

select * from final
