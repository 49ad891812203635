{{ config(**incremental_by_day(
    cluster_by=['site_id'], date_column='report_date', covers_action_days=true)) }}

{# Matomo's day reports recomputed from the raw visits, one row per site and site-local
    day, columns named exactly like the API metrics they reproduce:
      VisitsSummary.get  visits dated by their last action (visit_date_local);
      Actions.get        actions dated by their own local time (action_date_local);
      Goals.get          goals + ecommerce orders (never carts), dated by conversion time;
      Referrers.getReferrerType  visits per referrer type.
    Definitions: api-reference §4 (LogAggregator / archivers), checked by
    rpt_matomo_reconciliation against the reports Matomo itself returns.
    Incremental: recomputes whole days from its lookback start or the first day the visit
    facts rebuilt, moved back to the earliest action day of the visits from there on
    (macros/incremental_by_day.sql). #}

{%- set referrer_types = ['direct', 'search', 'website', 'campaign', 'social'] -%}

{%- if is_incremental() -%}
    {%- set start = incremental_lookback_start('report_date', covers_action_days=true) -%}
{%- endif %}

with

{#- Every action and conversion of a day belongs to a visit of that day or later: the filter
    on visit_date_local changes no result and lets the scans skip older rows. #}
visits as (

    select * from {{ ref('fct_visits') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ start }}
    {% endif %}

),

actions as (

    select * from {{ ref('fct_actions') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ start }} and action_date_local >= {{ start }}
    {% endif %}

),

conversions as (

    select * from {{ ref('fct_conversions') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ start }} and conversion_date_local >= {{ start }}
    {% endif %}

),

visit_metrics as (

    select
        site_id,
        visit_date_local as report_date,
        count(*) as nb_visits,
        {# Matomo caps unique visitors at the visit count (#9357) #}
        least(count(distinct visitor_id), count(*)) as nb_uniq_visitors,
        count(distinct user_id) as nb_users,
        sum(action_count) as nb_actions,
        max(action_count) as max_actions,
        sum(visit_duration_seconds) as sum_visit_length,
        sum(case when is_bounce then 1 else 0 end) as bounce_count,
        sum(case when is_converted then 1 else 0 end) as nb_visits_converted,
        {% for type in referrer_types if type != 'direct' -%}
        sum(case when referrer_type = '{{ type }}' then 1 else 0 end) as {{ type }}_visits,
        {% endfor -%}
        {# the archiver files an empty or unknown referrer type under direct entry #}
        sum(
            case
                when referrer_type in ('search', 'website', 'campaign', 'social') then 0
                else 1
            end
        ) as direct_visits
    from visits
    group by 1, 2

),

{# Unique pageviews, downloads and outlinks count distinct (visit, URL action id) pairs;
    a pageview without a URL ("Page URL not defined") has action id 0 in Matomo. #}
visit_url_hits as (

    select
        site_id,
        action_date_local as report_date,
        action_type,
        visit_id,
        coalesce(page_action_id, 0) as page_action_id,
        count(*) as hit_count
    from actions
    where action_type in ('pageview', 'download', 'outlink')
    group by 1, 2, 3, 4, 5

),

url_metrics as (

    select
        site_id,
        report_date,
        {% for type, metric in [
            ('pageview', 'pageviews'), ('download', 'downloads'), ('outlink', 'outlinks')
        ] -%}
        sum(case when action_type = '{{ type }}' then hit_count else 0 end)
            as nb_{{ metric }},
        sum(case when action_type = '{{ type }}' then 1 else 0 end)
            as nb_uniq_{{ metric }}{{ ',' if not loop.last }}
        {% endfor %}
    from visit_url_hits
    group by 1, 2

),

search_metrics as (

    select
        site_id,
        action_date_local as report_date,
        count(*) as nb_searches,
        {# exact while a day has at most 500 keywords (Matomo truncates the table) #}
        count(distinct search_keyword) as nb_keywords
    from actions
    where action_type = 'search'
    group by 1, 2

),

conversion_metrics as (

    select
        site_id,
        conversion_date_local as report_date,
        sum(case when counts_in_goal_totals then 1 else 0 end) as nb_conversions,
        sum(case when counts_in_goal_totals then revenue else 0 end) as revenue,
        sum(case when is_ecommerce_order then 1 else 0 end) as ecommerce_orders,
        sum(case when is_ecommerce_order then revenue else 0 end) as ecommerce_revenue,
        sum(case when is_abandoned_cart then 1 else 0 end) as abandoned_carts,
        sum(case when is_abandoned_cart then revenue else 0 end) as abandoned_cart_revenue
    from conversions
    group by 1, 2

),

site_days as (

    select site_id, report_date from visit_metrics
    union distinct
    select site_id, report_date from url_metrics
    union distinct
    select site_id, report_date from search_metrics
    union distinct
    select site_id, report_date from conversion_metrics

),

final as (

    select

        ---------- ids
        {{ surrogate_key(['site_days.site_id', 'site_days.report_date']) }}
            as site_day_id,
        site_days.site_id,

        ---------- numerics: VisitsSummary.get
        coalesce(visit_metrics.nb_visits, 0) as nb_visits,
        coalesce(visit_metrics.nb_uniq_visitors, 0) as nb_uniq_visitors,
        coalesce(visit_metrics.nb_users, 0) as nb_users,
        coalesce(visit_metrics.nb_actions, 0) as nb_actions,
        coalesce(visit_metrics.max_actions, 0) as max_actions,
        coalesce(visit_metrics.sum_visit_length, 0) as sum_visit_length,
        coalesce(visit_metrics.bounce_count, 0) as bounce_count,
        coalesce(visit_metrics.nb_visits_converted, 0) as nb_visits_converted,

        ---------- numerics: Actions.get
        coalesce(url_metrics.nb_pageviews, 0) as nb_pageviews,
        coalesce(url_metrics.nb_uniq_pageviews, 0) as nb_uniq_pageviews,
        coalesce(url_metrics.nb_downloads, 0) as nb_downloads,
        coalesce(url_metrics.nb_uniq_downloads, 0) as nb_uniq_downloads,
        coalesce(url_metrics.nb_outlinks, 0) as nb_outlinks,
        coalesce(url_metrics.nb_uniq_outlinks, 0) as nb_uniq_outlinks,
        coalesce(search_metrics.nb_searches, 0) as nb_searches,
        coalesce(search_metrics.nb_keywords, 0) as nb_keywords,

        ---------- numerics: Goals.get (goals + ecommerce orders)
        coalesce(conversion_metrics.nb_conversions, 0) as nb_conversions,
        coalesce(conversion_metrics.revenue, 0) as revenue,
        coalesce(conversion_metrics.ecommerce_orders, 0) as ecommerce_orders,
        coalesce(conversion_metrics.ecommerce_revenue, 0) as ecommerce_revenue,
        coalesce(conversion_metrics.abandoned_carts, 0) as abandoned_carts,
        coalesce(conversion_metrics.abandoned_cart_revenue, 0) as abandoned_cart_revenue,

        ---------- numerics: Referrers.getReferrerType (visits)
        {% for type in referrer_types -%}
        coalesce(visit_metrics.{{ type }}_visits, 0) as {{ type }}_visits,
        {% endfor %}

        ---------- numerics: processed metrics, rounded like Matomo
        round(
            {{ dbt.safe_cast('visit_metrics.bounce_count', dbt.type_numeric()) }}
            / nullif(visit_metrics.nb_visits, 0), 2
        ) as bounce_rate,
        round(
            {{ dbt.safe_cast('visit_metrics.nb_visits_converted', dbt.type_numeric()) }}
            / nullif(visit_metrics.nb_visits, 0), 4
        ) as conversion_rate,

        ---------- dates
        site_days.report_date

    from site_days
    left join visit_metrics
        on site_days.site_id = visit_metrics.site_id
        and site_days.report_date = visit_metrics.report_date
    left join url_metrics
        on site_days.site_id = url_metrics.site_id
        and site_days.report_date = url_metrics.report_date
    left join search_metrics
        on site_days.site_id = search_metrics.site_id
        and site_days.report_date = search_metrics.report_date
    left join conversion_metrics
        on site_days.site_id = conversion_metrics.site_id
        and site_days.report_date = conversion_metrics.report_date

)

select * from final
