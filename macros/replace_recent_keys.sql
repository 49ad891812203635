{#- Config of a model with one row per key aggregated over a whole history (dim_visitors), whose
    rows change only for keys seen recently. DuckDB: incremental with replace_recent_keys - each
    run recomputes the keys whose `recent_column` (a timestamp) is within the recent window, in
    the model as it was or in the new slice. BigQuery: a table rebuilt whole (an incremental run
    there would scan the same history to find the keys, and insert_overwrite works on partitions).
    Usage: {{ config(**incremental_by_recent_keys('site_visitor_id', 'last_seen_at')) }} -#}
{% macro incremental_by_recent_keys(unique_key, recent_column) -%}
    {%- if target.type == 'bigquery' -%}
        {{ return({'materialized': 'table'}) }}
    {%- else -%}
        {{ return({
            'materialized': 'incremental',
            'incremental_strategy': 'replace_recent_keys',
            'unique_key': unique_key,
            'recent_column': recent_column,
            'on_schema_change': 'fail',
        }) }}
    {%- endif -%}
{%- endmacro %}


{#- Start of the recent window, a timestamp literal read before the query. It holds every key
    with a visit in the days the incremental_by_day models rebuilt, before or after the rebuild:
    the model's newest `recent_column` minus the lookback plus three days (a visit of the
    lookback's first local day, in any site's zone, ended at most lookback + 1 days plus the
    26-hour spread of UTC offsets, +14 to -12, before the newest last action), or, when
    fct_visits rebuilt older days since this model's last rebuild (an old visit changed), a day
    before the first of them (a local day begins at most 14 hours before its UTC date). -#}
{% macro incremental_recent_since(recent_column) -%}
    {%- set query -%}
        select cast(least(
            coalesce(
                max({{ recent_column }}) - interval {{ var('matomo_lookback_days') + 3 }} day,
                timestamp '1900-01-01'
            ),
            ({{ facts_rebuilt_since_query([ref('fct_visits')]) }}) - interval 1 day
        ) as varchar)
        from {{ this }}
    {%- endset -%}
    {{ return(inlined_constant(query, 'timestamp')) }}
{%- endmacro %}


{#- DuckDB's incremental strategy replace_recent_keys: delete every row in the recent window or
    whose key the slice recomputed, then insert the slice. A key whose rows all vanished (its
    visits were reset, or moved to another visitor id) is deleted and not inserted again. -#}
{% macro get_incremental_replace_recent_keys_sql(arg_dict) -%}
    {%- set target_relation = arg_dict['target_relation'] -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set since = incremental_recent_since(config.get('recent_column')) -%}
    delete from {{ target_relation }}
    where {{ config.get('recent_column') }} >= {{ since }}
        or {{ unique_key }} in (select {{ unique_key }} from {{ arg_dict['temp_relation'] }});

    insert into {{ target_relation }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};

    {{ record_rebuilt_days(target_relation, config.get('recent_column'), since) }}
{%- endmacro %}
