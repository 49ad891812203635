{# Goals of every site, plus Matomo's ecommerce pseudo-goals for sites with ecommerce
    enabled (0 = order, -1 = abandoned cart), so every conversion has its goal here. #}

with

goals as (

    select * from {{ ref('stg_matomo__goals') }}

),

sites as (

    select * from {{ ref('stg_matomo__sites') }}

),

ecommerce_pseudo_goals as (

    select
        sites.site_id,
        pseudo_goals.goal_id,
        pseudo_goals.goal_name
    from sites
    cross join (
        select 0 as goal_id, 'Ecommerce order' as goal_name
        union all
        select -1 as goal_id, 'Abandoned cart' as goal_name
    ) as pseudo_goals
    where sites.is_ecommerce_enabled

),

final as (

    select
        {{ surrogate_key(['site_id', 'goal_id']) }} as site_goal_id,
        site_id,
        goal_id,
        goal_name,
        goal_description,
        match_attribute,
        pattern_type,
        pattern,
        default_revenue,
        is_case_sensitive,
        allows_multiple_conversions_per_visit,
        uses_event_value_as_revenue,
        is_deleted,
        false as is_ecommerce
    from goals

    union all

    select
        {{ surrogate_key(['site_id', 'goal_id']) }} as site_goal_id,
        site_id,
        goal_id,
        goal_name,
        cast(null as {{ dbt.type_string() }}) as goal_description,
        cast(null as {{ dbt.type_string() }}) as match_attribute,
        cast(null as {{ dbt.type_string() }}) as pattern_type,
        cast(null as {{ dbt.type_string() }}) as pattern,
        cast(null as {{ dbt.type_numeric() }}) as default_revenue,
        false as is_case_sensitive,
        true as allows_multiple_conversions_per_visit,
        false as uses_event_value_as_revenue,
        false as is_deleted,
        true as is_ecommerce
    from ecommerce_pseudo_goals

)

select * from final
