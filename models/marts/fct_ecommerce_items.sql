{{ config(**incremental_by_day(cluster_by=['site_id', 'product_sku'])) }}

{%- if is_incremental() -%}
    {%- set start = incremental_lookback_start() -%}
{%- endif %}

with

items as (

    select * from {{ ref('stg_matomo__ecommerce_items') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ start }}
    {% endif %}

),

conversions as (

    select
        conversion_id,
        visit_date_local,
        converted_at
    from {{ ref('fct_conversions') }}
    where conversion_type in ('ecommerce_order', 'abandoned_cart')
    {% if is_incremental() %}
        and visit_date_local >= {{ start }}
    {% endif %}

),

final as (

    select

        ---------- ids
        items.item_id,
        items.action_id as conversion_id,
        items.visit_id,
        items.site_id,
        items.item_index,
        items.order_id,

        ---------- strings
        items.product_sku,
        items.product_name,
        items.product_category,
        items.product_categories,

        ---------- numerics
        items.price,
        items.quantity,
        items.price * items.quantity as line_revenue,

        ---------- booleans
        items.is_abandoned_cart,

        ---------- dates
        items.action_date_local as conversion_date_local,
        items.visit_date_local,

        ---------- timestamps
        conversions.converted_at,

        ---------- metadata
        items._extracted_at,
        items._extract_run_id

    from items
    left join conversions
        on items.action_id = conversions.conversion_id
        and items.visit_date_local = conversions.visit_date_local

)

select * from final
