{{ config(**incremental_by_day(cluster_by=['site_id'])) }}

{# One row per visit, typed. An incremental table, not a view: parsing the visit JSON is
    the dominant cost of the whole project, so it happens once per build, and only for the
    days an incremental run rebuilds. #}

{%- set visit_shape = {'strings': [
    'visitorId', 'userId', 'fingerprint', 'visitIp',
    'visitorType', 'visitEcommerceStatus', 'siteCurrency',
    'referrerType', 'referrerName', 'referrerKeyword', 'referrerUrl',
    'campaignId', 'campaignName', 'campaignKeyword', 'campaignSource', 'campaignMedium',
    'campaignContent', 'campaignGroup', 'campaignPlacement',
    'deviceType', 'deviceBrand', 'deviceModel',
    'operatingSystemName', 'operatingSystemVersion',
    'browserName', 'browserVersion', 'browserFamily', 'resolution', 'plugins',
    'languageCode', 'continentCode', 'countryCode', 'country', 'regionCode', 'region',
    'city', 'latitude', 'longitude', 'visitLocalTime',
    'actions', 'interactions', 'searches', 'events', 'goalConversions', 'visitDuration',
    'visitCount', 'secondsSinceFirstVisit', 'secondsSinceLastVisit',
    'secondsSinceLastEcommerceOrder', 'visitConverted',
    'firstActionTimestamp', 'lastActionTimestamp',
]} -%}

with

visits as (

    select * from {{ ref('base_matomo__visits') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ incremental_lookback_start() }}
    {% endif %}

),

parsed as (

    select
        visits.*,
        {{ json_to_struct('payload', visit_shape) }} as visit
    from visits

),

renamed as (

    select

        ---------- ids
        visit_id,
        site_id,
        nullif(nullif(visit.visitorId, 'false'), '') as visitor_id,
        nullif(visit.userId, '') as user_id,
        nullif(nullif(visit.fingerprint, 'false'), '') as visitor_fingerprint,

        ---------- strings
        nullif(visit.visitIp, '') as visitor_ip,
        visit.visitorType as visitor_type,
        visit.visitEcommerceStatus as ecommerce_status,
        visit.siteCurrency as currency_code,
        nullif(visit.referrerType, '') as referrer_type,
        nullif(visit.referrerName, '') as referrer_name,
        nullif(visit.referrerKeyword, '') as referrer_keyword,
        nullif(visit.referrerUrl, '') as referrer_url,
        {# Campaign fields: the MarketingCampaignsReporting plugin sends its own keys;
            without it, a campaign's name and keyword are the referrer's. #}
        coalesce(
            nullif(visit.campaignName, ''),
            case when visit.referrerType = 'campaign' then nullif(visit.referrerName, '') end
        ) as campaign_name,
        coalesce(
            nullif(visit.campaignKeyword, ''),
            case
                when visit.referrerType = 'campaign'
                    then nullif(visit.referrerKeyword, '')
            end
        ) as campaign_keyword,
        nullif(visit.campaignSource, '') as campaign_source,
        nullif(visit.campaignMedium, '') as campaign_medium,
        nullif(visit.campaignContent, '') as campaign_content,
        nullif(visit.campaignId, '') as campaign_id,
        nullif(visit.campaignGroup, '') as campaign_group,
        nullif(visit.campaignPlacement, '') as campaign_placement,
        visit.deviceType as device_type,
        visit.deviceBrand as device_brand,
        visit.deviceModel as device_model,
        visit.operatingSystemName as operating_system_name,
        visit.operatingSystemVersion as operating_system_version,
        visit.browserName as browser_name,
        visit.browserVersion as browser_version,
        visit.browserFamily as browser_engine,
        visit.resolution as screen_resolution,
        visit.plugins as browser_plugins,
        visit.languageCode as language_code,
        visit.continentCode as continent_code,
        visit.countryCode as country_code,
        visit.country as country_name,
        nullif(visit.regionCode, '') as region_code,
        nullif(visit.region, '') as region_name,
        nullif(visit.city, '') as city_name,
        visit.visitLocalTime as visitor_local_time,

        ---------- numerics
        {{ dbt.safe_cast('visit.latitude', dbt.type_float()) }} as latitude,
        {{ dbt.safe_cast('visit.longitude', dbt.type_float()) }} as longitude,
        {{ dbt.safe_cast('visit.actions', dbt.type_int()) }} as action_count,
        {{ dbt.safe_cast('visit.interactions', dbt.type_int()) }} as interaction_count,
        {{ dbt.safe_cast('visit.searches', dbt.type_int()) }} as search_count,
        {{ dbt.safe_cast('visit.events', dbt.type_int()) }} as event_count,
        {{ dbt.safe_cast('visit.goalConversions', dbt.type_int()) }} as goal_conversion_count,
        action_detail_count,
        coalesce(truncated_actions_count, 0) as truncated_action_count,
        {{ dbt.safe_cast('visit.visitDuration', dbt.type_int()) }} as visit_duration_seconds,
        {{ dbt.safe_cast('visit.visitCount', dbt.type_int()) }} as visitor_visit_count,
        {{ dbt.safe_cast('visit.secondsSinceFirstVisit', dbt.type_bigint()) }}
            as seconds_since_first_visit,
        {{ dbt.safe_cast('visit.secondsSinceLastVisit', dbt.type_bigint()) }}
            as seconds_since_last_visit,
        {{ dbt.safe_cast('visit.secondsSinceLastEcommerceOrder', dbt.type_bigint()) }}
            as seconds_since_last_order,

        ---------- booleans
        coalesce(visit.visitConverted = '1', false) as is_converted,
        coalesce(visit.visitorType in ('returning', 'returningCustomer'), false)
            as is_returning_visitor,
        coalesce(truncated_actions_count > 0, false) as has_truncated_actions,

        ---------- dates
        visit_date_local,

        ---------- timestamps
        {{ epoch_seconds_to_timestamp('visit.firstActionTimestamp') }} as first_action_at,
        last_action_at,

        ---------- metadata
        _extracted_at,
        _extract_run_id

    from parsed

)

select * from renamed
