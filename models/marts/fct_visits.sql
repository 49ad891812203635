{{ config(**incremental_by_day(cluster_by=['site_id', 'visitor_id'])) }}

with

visits as (

    select * from {{ ref('stg_matomo__visits') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ incremental_lookback_start() }}
    {% endif %}

),

source_categories as (

    select * from {{ ref('channel_source_categories') }}

),

visits_classified as (

    select
        visits.*,
        {{ surrogate_key(['visits.referrer_type', 'visits.referrer_name']) }}
            as referrer_id,
        {{ channel_grouping('visits.referrer_type', 'source_categories.source_category') }}
            as channel,
        {# Matomo's bounce: at most one action of those `actions` counts (pageviews,
            downloads, outlinks, site searches, events); content impressions and
            conversions do not count, so a pageview plus a conversion is a bounce. #}
        coalesce(visits.action_count, 0) <= 1 as is_bounce
    from visits
    left join source_categories
        on lower(visits.referrer_name) = source_categories.source_name

),

final as (

    select

        ---------- ids
        visit_id,
        site_id,
        visitor_id,
        user_id,
        visitor_fingerprint,
        referrer_id,

        ---------- strings
        visitor_ip,
        visitor_type,
        ecommerce_status,
        currency_code,
        channel,
        referrer_type,
        referrer_name,
        referrer_keyword,
        referrer_url,
        campaign_name,
        campaign_keyword,
        campaign_source,
        campaign_medium,
        campaign_content,
        campaign_id,
        campaign_group,
        campaign_placement,
        device_type,
        device_brand,
        device_model,
        operating_system_name,
        operating_system_version,
        browser_name,
        browser_version,
        browser_engine,
        screen_resolution,
        browser_plugins,
        language_code,
        continent_code,
        country_code,
        country_name,
        region_code,
        region_name,
        city_name,
        visitor_local_time,

        ---------- numerics
        latitude,
        longitude,
        action_count,
        interaction_count,
        search_count,
        event_count,
        goal_conversion_count,
        action_detail_count,
        truncated_action_count,
        visit_duration_seconds,
        visitor_visit_count,
        seconds_since_first_visit,
        seconds_since_last_visit,
        seconds_since_last_order,

        ---------- booleans
        is_bounce,
        is_converted,
        is_returning_visitor,
        has_truncated_actions,

        ---------- dates
        visit_date_local,

        ---------- timestamps
        first_action_at,
        last_action_at,

        ---------- metadata
        _extracted_at,
        _extract_run_id

    from visits_classified

)

select * from final
