{#- Config of every model that is rebuilt by whole site-local days.
    BigQuery: partitions by the day and overwrites the partitions present in the new slice.
    DuckDB: delete+insert keyed on the same day, i.e. the same whole-day replace.
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
            'incremental_strategy': 'delete+insert',
            'unique_key': date_column,
            'on_schema_change': 'fail',
        }) }}
    {%- endif -%}
{%- endmacro %}


{#- First day an incremental run rebuilds: the newest day already built minus the lookback.
    An empty target (after `dbt run --empty`) has no max: take everything. -#}
{% macro incremental_lookback_start(date_column='visit_date_local') -%}
    (
        select
            coalesce(
                cast({{ dbt.dateadd(
                    'day',
                    -1 * var('matomo_lookback_days'),
                    'max(' ~ date_column ~ ')'
                ) }} as date),
                cast('1900-01-01' as date)
            )
        from {{ this }}
    )
{%- endmacro %}
