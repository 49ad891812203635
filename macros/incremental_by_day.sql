{#- Config of every model that is rebuilt by whole site-local days.
    BigQuery: partitions by the day and overwrites the partitions present in the new slice.
    DuckDB: replace_lookback_days (macros/replace_lookback_days.sql) replaces every day from
    the lookback start on, so a day the new slice no longer has is emptied too.
    Usage: {{ config(**incremental_by_day(cluster_by=['site_id'])) }} -#}
{% macro incremental_by_day(cluster_by=none, date_column='visit_date_local') -%}
    {%- if target.type == 'bigquery' -%}
        {{ return({
            'materialized': 'incremental',
            'incremental_strategy': 'insert_overwrite',
            'partition_by': {'field': date_column, 'data_type': 'date'},
            'cluster_by': cluster_by,
            'on_schema_change': 'fail',
        }) }}
    {%- else -%}
        {{ return({
            'materialized': 'incremental',
            'incremental_strategy': 'replace_lookback_days',
            'unique_key': date_column,
            'on_schema_change': 'fail',
        }) }}
    {%- endif -%}
{%- endmacro %}


{#- First day an incremental run rebuilds: the newest day already built minus the lookback.
    An empty target (after `dbt run --empty`) has no max: take everything. -#}
{% macro incremental_lookback_start(date_column='visit_date_local') -%}
    {{ return(adapter.dispatch('incremental_lookback_start')(date_column)) }}
{%- endmacro %}

{#- DuckDB: the start is read before the model's query and inlined as a date literal, so every
    scan filters on a constant and skips old days by their zonemaps (a scalar subquery over
    `this` is only known mid-query). A unit test's `this` is a fixture CTE of the test's own
    query, so there the same start is a subquery. -#}
{% macro duckdb__incremental_lookback_start(date_column) -%}
    {%- set start_query -%}
        select cast(max({{ date_column }}) - interval {{ var('matomo_lookback_days') }} day as date)
        from {{ this }}
    {%- endset -%}
    {%- if model.resource_type == 'unit_test' -%}
        coalesce(({{ start_query }}), date '1900-01-01')
    {%- else -%}
        date '{{ run_query(start_query).columns[0].values()[0] or '1900-01-01' }}'
    {%- endif -%}
{%- endmacro %}

{#- A subquery filter cannot prune partitions on BigQuery: every run would read the whole
    raw visits table. _dbt_max_partition is the max of the partition column, computed by the
    insert_overwrite script before the query (declared when the SQL names it), so the filter
    is a constant and prunes to the lookback days. A unit test renders the model as a plain
    select, without that script: there the same max comes from the `this` fixture. -#}
{% macro bigquery__incremental_lookback_start(date_column) -%}
    {%- if model.resource_type == 'unit_test' -%}
        {%- set newest_day = '(select max(' ~ date_column ~ ') from ' ~ this ~ ')' -%}
    {%- elif config.get('partition_by', {}).get('field') == date_column -%}
        {%- set newest_day = '_dbt_max_partition' -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "incremental_lookback_start(" ~ date_column ~ ") needs " ~ date_column
            ~ " as the partition column on BigQuery") }}
    {%- endif -%}
    coalesce(
        date_sub({{ newest_day }}, interval {{ var('matomo_lookback_days') }} day),
        date '1900-01-01'
    )
{%- endmacro %}

{% macro default__incremental_lookback_start(date_column) -%}
    {{ exceptions.raise_compiler_error(
        "incremental_lookback_start is not implemented for adapter " ~ target.type) }}
{%- endmacro %}
