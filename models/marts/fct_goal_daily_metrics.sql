{# Matomo's per-goal day report (Goals.get with idGoal) recomputed from the raw visits:
    one row per site, site-local conversion day and goal with at least one conversion,
    ecommerce orders as goal 0 and abandoned carts as goal -1. #}

with

conversions as (

    select * from {{ ref('fct_conversions') }}

),

final as (

    select

        ---------- ids
        {{ surrogate_key(['site_id', 'conversion_date_local', 'goal_id']) }}
            as site_goal_day_id,
        site_id,
        goal_id,

        ---------- numerics
        count(*) as nb_conversions,
        count(distinct visit_id) as nb_visits_converted,
        sum(revenue) as revenue,
        sum(revenue_subtotal) as revenue_subtotal,
        sum(revenue_tax) as revenue_tax,
        sum(revenue_shipping) as revenue_shipping,
        sum(revenue_discount) as revenue_discount,
        sum(item_count) as items,

        ---------- dates
        conversion_date_local as report_date

    from conversions
    group by site_id, goal_id, conversion_date_local

)

select * from final
