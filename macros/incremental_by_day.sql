{#- Config of every model that is rebuilt by whole site-local days.
    BigQuery: partitions by the day and overwrites the partitions present in the new slice.
    DuckDB: replace_lookback_days (macros/replace_lookback_days.sql) replaces every day from
    the lookback start on, so a day the new slice no longer has is emptied too.
    Usage: {{ config(**incremental_by_day(cluster_by=['site_id'])) }}
    covers_action_days: the model is by action day (daily aggregates), see below. -#}
{% macro incremental_by_day(cluster_by=none, date_column='visit_date_local', covers_action_days=false) -%}
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


{#- First day an incremental run rebuilds: the newest day already built minus the lookback.
    An empty target (after `dbt run --empty`) has no max: take everything.
    A model by action day (config lookback_covers_action_days) starts earlier when a visit the
    lookback rebuilds has actions before it (it spanned midnight): the earliest action day of
    the fct_actions rows from the lookback start on. Every action on or after that day belongs
    to a visit on or after it (an action is never later than its visit's last action), so the
    days from there on are recomputed from complete rows. -#}
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

{#- DuckDB: the start is read before the model's query and inlined as a date literal, so every
    scan filters on a constant and skips old days by their zonemaps (a scalar subquery over
    `this` is only known mid-query). -#}
{% macro duckdb__incremental_lookback_start(date_column, covers_action_days) -%}
    {%- set start_query -%}
        select cast(max({{ date_column }}) - interval {{ var('matomo_lookback_days') }} day as date)
        from {{ this }}
    {%- endset -%}
    {%- set start = inlined_constant(start_query, 'date') -%}
    {%- if covers_action_days -%}
        {%- set start = inlined_constant(earliest_action_day_query(start), 'date') -%}
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
