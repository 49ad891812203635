{{ config(**incremental_by_recent_keys('site_visitor_id', 'last_seen_at')) }}

{# One row per visitor of a site, from visits only (no per-visitor API calls): the
    visitor id <-> user id mapping, first and last seen, visit count. Matomo derives the
    visitor id from the user id once a user logs in, so a user keeps one visitor id; visits
    before the login carry the anonymous cookie id and are another visitor here.
    Incremental on DuckDB: recomputes the visitors seen recently or on a day fct_visits
    rebuilt, from all their visits (macros/replace_recent_keys.sql). #}

{%- if is_incremental() -%}
    {%- set since = incremental_recent_since('last_seen_at') -%}
{%- endif %}

with

{% if is_incremental() -%}
{#- visitors with a visit in the days fct_visits rebuilt, as they were and as they are -#}
recent_visitors as (

    select site_id, visitor_id from {{ this }}
    where last_seen_at >= {{ since }}
    union distinct
    select site_id, visitor_id from {{ ref('fct_visits') }}
    where last_action_at >= {{ since }} and visitor_id is not null

),

{% endif -%}
visits as (

    select
        fct_visits.site_id,
        fct_visits.visitor_id,
        fct_visits.user_id,
        fct_visits.visit_id,
        fct_visits.first_action_at,
        fct_visits.last_action_at
    from {{ ref('fct_visits') }} as fct_visits
    {% if is_incremental() -%}
    inner join recent_visitors
        on fct_visits.site_id = recent_visitors.site_id
        and fct_visits.visitor_id = recent_visitors.visitor_id
    {% endif -%}
    where fct_visits.visitor_id is not null

),

latest_user as (

    select
        site_id,
        visitor_id,
        user_id
    from visits
    where user_id is not null
    qualify row_number() over (
        partition by site_id, visitor_id
        order by last_action_at desc, visit_id desc
    ) = 1

),

visitors as (

    select
        site_id,
        visitor_id,
        count(*) as visit_count,
        count(distinct user_id) as user_id_count,
        min(first_action_at) as first_seen_at,
        max(last_action_at) as last_seen_at
    from visits
    group by 1, 2

),

final as (

    select

        ---------- ids
        {{ surrogate_key(['visitors.site_id', 'visitors.visitor_id']) }} as site_visitor_id,
        visitors.site_id,
        visitors.visitor_id,
        latest_user.user_id,

        ---------- numerics
        visitors.visit_count,
        visitors.user_id_count,

        ---------- booleans
        latest_user.user_id is not null as is_identified_user,

        ---------- timestamps
        visitors.first_seen_at,
        visitors.last_seen_at

    from visitors
    left join latest_user
        on visitors.site_id = latest_user.site_id
        and visitors.visitor_id = latest_user.visitor_id

)

select * from final
