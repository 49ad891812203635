{#- Config of every model that is rebuilt by whole site-local days.
    BigQuery: partitions by the day and overwrites the partitions present in the new slice.
    DuckDB: replace_lookback_days (macros/replace_lookback_days.sql) replaces every day from
    the run's first day on, so a day the new slice no longer has is emptied too.
    Usage: {{ config(**incremental_by_day(cluster_by=['site_id'])) }}
    covers_action_days: the model is by action day (daily aggregates), see below. -#}
{% macro incremental_by_day(cluster_by=none, date_column='visit_date_local', covers_action_days=false) -%}
    {%- if not covers_action_days -%}
        {#- DuckDB's start reads the raw visits (changed_visits_start_query) only when
            is_incremental(), which is false at parse time: the dependency is declared here. -#}
        {%- do ref('base_matomo__visits') -%}
    {%- endif -%}
    {%- if target.type == 'bigquery' -%}
        {{ return({
            'materialized': 'incremental',
            'incremental_strategy': 'insert_overwrite',
            'partition_by': {'field': date_column, 'data_type': 'date'},
            'cluster_by': cluster_by,
            'on_schema_change': 'fail',
            'lookback_covers_action_days': covers_action_days,
        }) }}
    {%- else -%}
        {{ return({
            'materialized': 'incremental',
            'incremental_strategy': 'replace_lookback_days',
            'unique_key': date_column,
            'on_schema_change': 'fail',
            'lookback_covers_action_days': covers_action_days,
        }) }}
    {%- endif -%}
{%- endmacro %}


{#- First day an incremental run rebuilds.
    DuckDB: the earliest day any visit changed since the model was built (see
    changed_visits_start_query); a model by action day (config lookback_covers_action_days,
    the daily metrics) from the newest day it has minus the lookback, or earlier where the
    visit models rebuilt earlier days in this run.
    BigQuery: the newest day already built minus the lookback (a start read from the data
    would be a subquery, and BigQuery prunes partitions on constants only).
    An empty target (after `dbt run --empty`) has no max: take everything.
    A model by action day then starts earlier when a visit it rebuilds has actions before
    that day (it spanned midnight): at the earliest action day of the fct_actions rows from
    the start on. Every action on or after that day belongs to a visit on or after it (an
    action is never later than its visit's last action), so the days from there on are
    recomputed from complete rows. -#}
{% macro incremental_lookback_start(date_column='visit_date_local', covers_action_days=none) -%}
    {#- A unit test's `config` is the test's, not the model's: the model passes the flag. -#}
    {%- if covers_action_days is none -%}
        {%- set covers_action_days = config.get('lookback_covers_action_days', false) -%}
    {%- endif -%}
    {{ return(adapter.dispatch('incremental_lookback_start')(date_column, covers_action_days)) }}
{%- endmacro %}

{#- The earliest of `start` and the action days of visits from `start` on, as a scalar query. -#}
{% macro earliest_action_day_query(start) -%}
    select least({{ start }}, coalesce(min(action_date_local), {{ start }}))
    from {{ ref('fct_actions') }}
    where visit_date_local >= {{ start }}
{%- endmacro %}

{#- Scalar query: the first day of a model with one version of each visit (its rows carry the
    visit's site_id, visit_id and _extracted_at) that holds every change since it was built.
    The extractor keeps an unchanged visit's row as it was (extract/warehouse/duckdb.py), so a
    raw row newer than the newest version in the model is a new or grown visit, and:
      changed   such a visit's day, where it is now;
      replaced  the day the model has it on (a visit that grew past midnight moved on);
      gone      a visit of the model's lookback days whose version raw no longer has
                (`extract reset`), so those days empty as in a full refresh.
    Nothing changed: the day after the newest one, so the run rebuilds nothing. -#}
{% macro changed_visits_start_query(date_column) -%}
    with

    built as (
        select
            max(_extracted_at) as newest_version,
            max({{ date_column }}) as newest_day,
            cast(
                max({{ date_column }}) - interval {{ var('matomo_lookback_days') }} day as date
            ) as lookback_start
        from {{ this }}
    ),

    raw_visits as (
        select site_id, visit_id, visit_date_local, _extracted_at
        from {{ ref('base_matomo__visits') }}
    ),

    changed as (
        select site_id, visit_id, visit_date_local as day
        from raw_visits
        where _extracted_at > (select newest_version from built)
    ),

    replaced as (
        select {{ date_column }} as day
        from {{ this }}
        semi join changed using (site_id, visit_id)
    ),

    {#- A version is on one day: only raw rows of the lookback days can match. #}
    gone as (
        select {{ date_column }} as day
        from {{ this }}
        anti join (
            select * from raw_visits
            where visit_date_local >= (select lookback_start from built)
        ) as recent using (site_id, visit_id, _extracted_at)
        where {{ date_column }} >= (select lookback_start from built)
    )

    select coalesce(
        least(
            (select min(day) from changed),
            (select min(day) from replaced),
            (select min(day) from gone)
        ),
        (select cast(newest_day + interval 1 day as date) from built)
    )
{%- endmacro %}

{#- Scalar query: the first day a model by action day rebuilds before moving back to action
    days: its newest day minus the lookback (1900-01-01 when it is empty), or the earliest day
    the visit facts rebuilt since its own last rebuild (facts_rebuilt_since_query). -#}
{% macro aggregate_start_query(date_column) -%}
    select least(
        (
            select coalesce(
                cast(max({{ date_column }}) - interval {{ var('matomo_lookback_days') }} day as date),
                date '1900-01-01'
            )
            from {{ this }}
        ),
        ({{ facts_rebuilt_since_query([ref('fct_visits'), ref('fct_actions'), ref('fct_conversions')]) }})
    )
{%- endmacro %}

{#- Scalar query: the earliest day the `facts` relations were rebuilt from since `this` last
    logged a rebuild (the matomo_rebuilt_days log, macros/rebuilt_days.sql), null if none. A
    rebuild a failed or partial run left unfollowed is still there for the next run. A unit
    test reads fixtures, not the warehouse's log: null. -#}
{% macro facts_rebuilt_since_query(facts) -%}
    {%- if model.resource_type == 'unit_test' -%}
        select null::date
    {%- else -%}
        select min(rebuilt_from)
        from {{ rebuilt_days_log() }}
        where relation_name in ('{{ facts | join("', '") }}')
            and recorded_at > coalesce(
                (
                    select max(recorded_at) from {{ rebuilt_days_log() }}
                    where relation_name = '{{ this }}'
                ),
                timestamp '1900-01-01'
            )
    {%- endif -%}
{%- endmacro %}

{#- DuckDB: the start is read before the model's query and inlined as a date literal, so every
    scan filters on a constant and skips old days by their zonemaps (a scalar subquery over
    `this` is only known mid-query). -#}
{% macro duckdb__incremental_lookback_start(date_column, covers_action_days) -%}
    {%- if covers_action_days -%}
        {%- set start = inlined_constant(aggregate_start_query(date_column), 'date') -%}
        {%- set start = inlined_constant(earliest_action_day_query(start), 'date') -%}
    {%- else -%}
        {%- set start = inlined_constant(changed_visits_start_query(date_column), 'date') -%}
    {%- endif -%}
    {{ start }}
{%- endmacro %}

{#- DuckDB: the value of a scalar `query` as a `type` literal ('date' or 'timestamp'), read now;
    1900-01-01 when it is null (an empty model). A unit test's `this` and refs are fixture CTEs
    of the test's own query, so there it stays a subquery. -#}
{% macro inlined_constant(query, type) -%}
    {%- if model.resource_type == 'unit_test' -%}
        {{ return('coalesce((' ~ query ~ '), ' ~ type ~ " '1900-01-01')") }}
    {%- endif -%}
    {%- set value = run_query(query).columns[0].values()[0] -%}
    {{ return(type ~ " '" ~ (value or '1900-01-01') ~ "'") }}
{%- endmacro %}

{#- A subquery filter cannot prune partitions on BigQuery: every run would read the whole
    raw visits table. _dbt_max_partition is the max of the partition column, computed by the
    insert_overwrite script before the query (declared when the SQL names it), so the filter
    is a constant and prunes to the lookback days. A unit test renders the model as a plain
    select, without that script: there the same max comes from the `this` fixture. -#}
{% macro bigquery__incremental_lookback_start(date_column, covers_action_days) -%}
    {%- if model.resource_type == 'unit_test' -%}
        {%- set newest_day = '(select max(' ~ date_column ~ ') from ' ~ this ~ ')' -%}
    {%- elif config.get('partition_by', {}).get('field') == date_column -%}
        {%- set newest_day = '_dbt_max_partition' -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "incremental_lookback_start(" ~ date_column ~ ") needs " ~ date_column
            ~ " as the partition column on BigQuery") }}
    {%- endif -%}
    {%- set start -%}
    coalesce(
        date_sub({{ newest_day }}, interval {{ var('matomo_lookback_days') }} day),
        date '1900-01-01'
    )
    {%- endset -%}
    {%- if covers_action_days -%}
        ({{ earliest_action_day_query(start) }})
    {%- else -%}
        {{ start }}
    {%- endif -%}
{%- endmacro %}

{% macro default__incremental_lookback_start(date_column, covers_action_days) -%}
    {{ exceptions.raise_compiler_error(
        "incremental_lookback_start is not implemented for adapter " ~ target.type) }}
{%- endmacro %}
