{{ config(**incremental_by_day(cluster_by=['site_id', 'action_type'])) }}

{# One row per element of a visit's `actionDetails`, in API order (action_index from 0),
    every type Matomo sends. Visits without actions have no rows here. Incremental for the
    same reason as stg_matomo__visits: the JSON is parsed once per build. #}

{%- set visit_shape = {'arrays': {'actionDetails': {
    'strings': [
        'type', 'timestamp', 'idpageview', 'pageId', 'pageIdAction', 'url', 'pageTitle',
        'pageviewPosition', 'timeSpent', 'pageLoadTimeMilliseconds',
        'generationTimeMilliseconds',
        'siteSearchKeyword', 'siteSearchCategory', 'siteSearchCount',
        'eventCategory', 'eventAction', 'eventName', 'eventValue',
        'contentName', 'contentPiece', 'contentTarget', 'contentInteraction',
        'productViewSku', 'productViewName', 'productViewPrice',
        'goalId', 'goalName', 'orderId', 'revenue', 'revenueSubTotal', 'revenueTax',
        'revenueShipping', 'revenueDiscount', 'items',
        'referrerType', 'referrerName', 'referrerKeyword',
    ],
    'json': ['productViewCategories'],
}}} -%}

with

visits as (

    select * from {{ ref('base_matomo__visits') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ incremental_lookback_start() }}
    {% endif %}

),

parsed as (

    select
        visits.site_id,
        visits.visit_id,
        visits.visit_date_local,
        visits._extracted_at,
        visits._extract_run_id,
        {{ json_to_struct('visits.payload', visit_shape) }}.actionDetails as actions
    from visits

),

unnested as (

    select
        parsed.site_id,
        parsed.visit_id,
        parsed.visit_date_local,
        parsed._extracted_at,
        parsed._extract_run_id,
        action,
        action_index
    from parsed
    {{ unnest_array('parsed.actions', 'action', 'action_index') }}

),

renamed as (

    select

        ---------- ids
        {{ surrogate_key(['visit_id', 'action_index']) }} as action_id,
        visit_id,
        site_id,
        cast(action_index as {{ dbt.type_int() }}) as action_index,
        {{ dbt.safe_cast('action.pageId', dbt.type_bigint()) }} as visit_action_id,
        {{ dbt.safe_cast('action.pageIdAction', dbt.type_bigint()) }} as page_action_id,
        action.idpageview as pageview_id,
        {{ dbt.safe_cast('action.goalId', dbt.type_int()) }} as goal_id,
        action.orderId as order_id,

        ---------- strings
        {# Matomo's own type names; content impressions and interactions arrive as the
            number 13 (a string "13" on older PHP). #}
        action.type as matomo_action_type,
        case action.type
            when 'action' then 'pageview'
            when '13' then 'content'
            when 'ecommerceOrder' then 'ecommerce_order'
            when 'ecommerceAbandonedCart' then 'abandoned_cart'
            else action.type
        end as action_type,
        action.url as url,
        action.pageTitle as page_title,
        action.siteSearchKeyword as search_keyword,
        nullif(action.siteSearchCategory, '') as search_category,
        action.eventCategory as event_category,
        action.eventAction as event_action,
        action.eventName as event_name,
        action.contentName as content_name,
        action.contentPiece as content_piece,
        action.contentTarget as content_target,
        action.contentInteraction as content_interaction,
        action.productViewSku as product_sku,
        action.productViewName as product_name,
        action.productViewCategories as product_categories,
        action.goalName as goal_name,
        nullif(action.referrerType, '') as attributed_referrer_type,
        nullif(action.referrerName, '') as attributed_referrer_name,
        nullif(action.referrerKeyword, '') as attributed_referrer_keyword,

        ---------- numerics
        {{ dbt.safe_cast('action.pageviewPosition', dbt.type_int()) }} as pageview_position,
        {{ dbt.safe_cast('action.timeSpent', dbt.type_int()) }} as time_spent_seconds,
        {{ dbt.safe_cast('action.pageLoadTimeMilliseconds', dbt.type_int()) }}
            as page_load_time_ms,
        {{ dbt.safe_cast('action.generationTimeMilliseconds', dbt.type_int()) }}
            as generation_time_ms,
        {{ dbt.safe_cast('action.siteSearchCount', dbt.type_int()) }} as search_result_count,
        {{ dbt.safe_cast('action.eventValue', dbt.type_float()) }} as event_value,
        {{ dbt.safe_cast('action.productViewPrice', dbt.type_numeric()) }} as product_price,
        {{ dbt.safe_cast('action.revenue', dbt.type_numeric()) }} as revenue,
        {{ dbt.safe_cast('action.revenueSubTotal', dbt.type_numeric()) }} as revenue_subtotal,
        {{ dbt.safe_cast('action.revenueTax', dbt.type_numeric()) }} as revenue_tax,
        {{ dbt.safe_cast('action.revenueShipping', dbt.type_numeric()) }} as revenue_shipping,
        {{ dbt.safe_cast('action.revenueDiscount', dbt.type_numeric()) }} as revenue_discount,
        {{ dbt.safe_cast('action.items', dbt.type_int()) }} as item_count,

        ---------- dates
        {# `timestamp` is the site-local wall clock encoded as if UTC (Matomo #22720):
            read as UTC it gives the local day Matomo's reports count the action on. #}
        cast({{ epoch_seconds_to_wall_clock('action.timestamp') }} as date)
            as action_date_local,
        visit_date_local,

        ---------- timestamps
        {{ epoch_seconds_to_wall_clock('action.timestamp') }} as action_at_local,

        ---------- metadata
        _extracted_at,
        _extract_run_id

    from unnested

)

select * from renamed
