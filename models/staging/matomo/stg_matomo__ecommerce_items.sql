{{ config(**incremental_by_day(cluster_by=['site_id'])) }}

{# One row per item of an ecommerce order or abandoned cart (`itemDetails` of the
    `ecommerceOrder` / `ecommerceAbandonedCart` actions), in API order. #}

{%- set visit_shape = {'arrays': {'actionDetails': {
    'strings': ['type', 'timestamp', 'orderId'],
    'arrays': {'itemDetails': {
        'strings': ['itemSKU', 'itemName', 'itemCategory', 'price', 'quantity'],
        'json': ['categories'],
    }},
}}} -%}

with

visits as (

    select * from {{ ref('base_matomo__visits') }}
    {# a cheap text test first: most visits have no order or cart, so no JSON to parse #}
    where payload like '%"itemDetails"%'
    {% if is_incremental() %}
        and visit_date_local >= {{ incremental_lookback_start() }}
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

actions as (

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

items as (

    select
        actions.site_id,
        actions.visit_id,
        actions.visit_date_local,
        actions._extracted_at,
        actions._extract_run_id,
        actions.action_index,
        actions.action.type as matomo_action_type,
        actions.action.timestamp as action_timestamp,
        actions.action.orderId as order_id,
        item,
        item_index
    from actions
    {{ unnest_array('actions.action.itemDetails', 'item', 'item_index') }}

),

renamed as (

    select

        ---------- ids
        {{ surrogate_key(['visit_id', 'action_index', 'item_index']) }} as item_id,
        {{ surrogate_key(['visit_id', 'action_index']) }} as action_id,
        visit_id,
        site_id,
        cast(action_index as {{ dbt.type_int() }}) as action_index,
        cast(item_index as {{ dbt.type_int() }}) as item_index,
        order_id,

        ---------- strings
        item.itemSKU as product_sku,
        item.itemName as product_name,
        nullif(item.itemCategory, '') as product_category,
        item.categories as product_categories,

        ---------- numerics
        {{ dbt.safe_cast('item.price', dbt.type_numeric()) }} as price,
        {{ dbt.safe_cast('item.quantity', dbt.type_int()) }} as quantity,

        ---------- booleans
        matomo_action_type = 'ecommerceAbandonedCart' as is_abandoned_cart,

        ---------- dates
        cast({{ epoch_seconds_to_wall_clock('action_timestamp') }} as date)
            as action_date_local,
        visit_date_local,

        ---------- metadata
        _extracted_at,
        _extract_run_id

    from items

)

select * from renamed
