{# Matomo's own day reports beside the same numbers recomputed by this project, one row per
    site, day, report and metric. Only site-days with an extracted report are compared (no
    report rows: nothing to compare), and a difference only counts once the extractor has
    closed the day (is_comparable): before that, today's visits are still arriving. #}

{%- set checks = [
    {'method': 'VisitsSummary.get', 'source': 'site', 'metrics': [
        'nb_visits', 'nb_uniq_visitors', 'nb_users', 'nb_actions', 'max_actions',
        'sum_visit_length', 'bounce_count', 'nb_visits_converted']},
    {'method': 'Actions.get', 'source': 'site', 'metrics': [
        'nb_pageviews', 'nb_uniq_pageviews', 'nb_downloads', 'nb_uniq_downloads',
        'nb_outlinks', 'nb_uniq_outlinks', 'nb_searches', 'nb_keywords']},
    {'method': 'Goals.get', 'source': 'site', 'metrics': [
        'nb_conversions', 'revenue', 'nb_visits_converted']},
    {'method': 'Goals.get', 'source': 'goal', 'metrics': [
        'nb_conversions', 'nb_visits_converted', 'revenue']},
    {'method': 'Goals.get', 'source': 'ecommerce', 'metrics': [
        'revenue_subtotal', 'revenue_tax', 'revenue_shipping', 'revenue_discount',
        'items']},
    {'method': 'Referrers.getReferrerType', 'source': 'referrer_type', 'metrics': [
        'nb_visits']},
] -%}

with

report_rows as (

    select * from {{ ref('stg_matomo__report_rows') }}
    where report_period = 'day'
        and {{ json_string('params_json', '$.segment') }} is null

),

referrer_types as (

    select * from {{ ref('matomo_referrer_types') }}

),

site_metrics as (

    select * from {{ ref('fct_site_daily_metrics') }}

),

goal_metrics as (

    select * from {{ ref('fct_goal_daily_metrics') }}

),

extract_windows as (

    select * from {{ ref('stg_matomo__extract_windows') }}

),

{# Which report a row is: Goals.get is one report per idGoal (none = all goals); a
    Referrers.getReferrerType row is one referrer type. #}
classified_rows as (

    select
        report_rows.site_id,
        report_rows.report_date,
        report_rows.report_method,
        case
            when report_rows.report_method = 'Goals.get'
                then coalesce(
                    'idGoal=' || {{ json_string('report_rows.params_json', '$.idGoal') }},
                    ''
                )
            when report_rows.report_method = 'Referrers.getReferrerType'
                then 'referrerType=' || referrer_types.referrer_type
            else ''
        end as report_variant,
        report_rows.metrics_json,
        report_rows._extracted_at
    from report_rows
    left join referrer_types
        on {{ dbt.safe_cast(json_string('report_rows.metrics_json', '$.referrer_type'),
                            dbt.type_int()) }} = referrer_types.referrer_type_code
    where report_rows.report_method in (
        'VisitsSummary.get', 'Actions.get', 'Goals.get', 'Referrers.getReferrerType'
    )

),

{# the same report pulled twice with other parameters: the newest copy wins #}
reported_rows as (

    select *
    from classified_rows
    qualify row_number() over (
        partition by site_id, report_date, report_method, report_variant
        order by _extracted_at desc
    ) = 1

),

matomo_values as (

    {% for check in checks -%}
    {%- for metric in check.metrics %}
    select
        site_id,
        report_date,
        report_method,
        report_variant,
        '{{ metric }}' as metric_name,
        {{ dbt.safe_cast(json_string('metrics_json', '$.' ~ metric), dbt.type_numeric()) }}
            as matomo_value
    from reported_rows
    where report_method = '{{ check.method }}'
        {% if check.source == 'site' and check.method == 'Goals.get' -%}
        and report_variant = ''
        {%- elif check.source == 'goal' -%}
        and report_variant like 'idGoal=%'
        {%- elif check.source == 'ecommerce' -%}
        and report_variant in ('idGoal=ecommerceOrder', 'idGoal=ecommerceAbandonedCart')
        {%- endif %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

warehouse_values as (

    {% for check in checks -%}
    {%- for metric in check.metrics -%}
    {%- if check.source == 'referrer_type' -%}
    {%- for type in ['direct', 'search', 'website', 'campaign', 'social'] %}
    select
        site_id,
        report_date,
        '{{ check.method }}' as report_method,
        'referrerType={{ type }}' as report_variant,
        '{{ metric }}' as metric_name,
        cast({{ type }}_visits as {{ dbt.type_numeric() }}) as warehouse_value
    from site_metrics
    {{ 'union all' if not loop.last }}
    {%- endfor %}
    {%- else %}
    select
        site_id,
        report_date,
        '{{ check.method }}' as report_method,
        {% if check.source == 'site' -%}
        '' as report_variant,
        {%- else -%}
        'idGoal=' || case goal_id
            when 0 then 'ecommerceOrder'
            when -1 then 'ecommerceAbandonedCart'
            else cast(goal_id as {{ dbt.type_string() }})
        end as report_variant,
        {%- endif %}
        '{{ metric }}' as metric_name,
        cast({{ metric }} as {{ dbt.type_numeric() }}) as warehouse_value
    from {{ 'site_metrics' if check.source == 'site' else 'goal_metrics' }}
    {%- if check.source == 'ecommerce' %}
    where goal_id in (0, -1)
    {%- endif %}
    {%- endif %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

compared as (

    select

        ---------- ids
        {{ surrogate_key([
            'matomo_values.site_id', 'matomo_values.report_date',
            'matomo_values.report_method', 'matomo_values.report_variant',
            'matomo_values.metric_name',
        ]) }} as reconciliation_id,
        matomo_values.site_id,

        ---------- strings
        matomo_values.report_method,
        matomo_values.report_variant,
        matomo_values.metric_name,

        ---------- numerics
        matomo_values.matomo_value,
        coalesce(warehouse_values.warehouse_value, 0) as warehouse_value,
        coalesce(warehouse_values.warehouse_value, 0) - matomo_values.matomo_value
            as difference,

        ---------- booleans
        coalesce(extract_windows.is_complete, false) as is_comparable,
        case
            when coalesce(extract_windows.is_complete, false)
                {# revenue carries float noise in Matomo's JSON: compare cents #}
                then round(coalesce(warehouse_values.warehouse_value, 0), 2)
                    = round(matomo_values.matomo_value, 2)
        end as is_match,

        ---------- dates
        matomo_values.report_date

    from matomo_values
    left join warehouse_values
        on matomo_values.site_id = warehouse_values.site_id
        and matomo_values.report_date = warehouse_values.report_date
        and matomo_values.report_method = warehouse_values.report_method
        and matomo_values.report_variant = warehouse_values.report_variant
        and matomo_values.metric_name = warehouse_values.metric_name
    left join extract_windows
        on matomo_values.site_id = extract_windows.site_id
        and matomo_values.report_date = extract_windows.window_date_local
    {# Matomo omits a metric it does not compute (no site search: no nb_searches) #}
    where matomo_values.matomo_value is not null

)

select * from compared
