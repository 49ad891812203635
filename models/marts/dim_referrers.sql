{# One row per referrer (Matomo referrer type + name) that brought at least one visit,
    with its marketing channel; fct_visits.referrer_id points here. #}

with

visits as (

    select
        referrer_id,
        referrer_type,
        referrer_name,
        visit_id,
        first_action_at
    from {{ ref('fct_visits') }}

),

source_categories as (

    select * from {{ ref('channel_source_categories') }}

),

referrer_types as (

    select * from {{ ref('matomo_referrer_types') }}

),

referrers as (

    select
        referrer_id,
        referrer_type,
        referrer_name,
        count(*) as visit_count,
        min(first_action_at) as first_visit_at,
        max(first_action_at) as last_visit_at
    from visits
    group by 1, 2, 3

),

final as (

    select

        ---------- ids
        referrers.referrer_id,

        ---------- strings
        referrers.referrer_type,
        referrer_types.referrer_type_name,
        referrers.referrer_name,
        source_categories.source_category,
        {{ channel_grouping('referrers.referrer_type', 'source_categories.source_category') }}
            as channel,

        ---------- numerics
        referrer_types.referrer_type_code,
        referrers.visit_count,

        ---------- timestamps
        referrers.first_visit_at,
        referrers.last_visit_at

    from referrers
    left join source_categories
        on lower(referrers.referrer_name) = source_categories.source_name
    left join referrer_types
        on referrers.referrer_type = referrer_types.referrer_type

)

select * from final
