{{ config(**incremental_by_day(cluster_by=['site_id', 'goal_id'])) }}

{# Goal conversions and ecommerce orders, plus abandoned carts kept but flagged: Matomo's
    goal totals (Goals.get nb_conversions, revenue) count goals and orders, never carts. #}

with

actions as (

    select * from {{ ref('fct_actions') }}
    where action_type in ('goal', 'ecommerce_order', 'abandoned_cart')
    {% if is_incremental() %}
        and visit_date_local >= {{ incremental_lookback_start() }}
    {% endif %}

),

final as (

    select

        ---------- ids
        action_id as conversion_id,
        visit_id,
        site_id,
        {# Matomo's ids for the ecommerce pseudo-goals: 0 = order, -1 = abandoned cart #}
        case action_type
            when 'ecommerce_order' then 0
            when 'abandoned_cart' then -1
            else goal_id
        end as goal_id,
        order_id,

        ---------- strings
        action_type as conversion_type,
        goal_name,
        attributed_referrer_type,
        attributed_referrer_name,
        attributed_referrer_keyword,
        url,

        ---------- numerics
        coalesce(revenue, 0) as revenue,
        revenue_subtotal,
        revenue_tax,
        revenue_shipping,
        revenue_discount,
        item_count,

        ---------- booleans
        action_type = 'abandoned_cart' as is_abandoned_cart,
        action_type = 'ecommerce_order' as is_ecommerce_order,
        action_type <> 'abandoned_cart' as counts_in_goal_totals,

        ---------- dates
        action_date_local as conversion_date_local,
        visit_date_local,

        ---------- timestamps
        action_at as converted_at,
        action_at_local as converted_at_local,

        ---------- metadata
        _extracted_at,
        _extract_run_id

    from actions

)

select * from final
