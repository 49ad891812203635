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


{#- Start of the recent window, a timestamp literal read before the query: the model's newest
    `recent_column` minus the lookback plus three days. The incremental_by_day models rebuild the
    visits from their newest local day minus the lookback; a visit of that day, in any site's
    zone, ended at most lookback + 1 days plus the spread of UTC offsets (26 hours, +14 to -12)
    before the newest last action, so every key with a visit in the rebuilt days, before or
    after the rebuild, is in the window. -#}
{% macro incremental_recent_since(recent_column) -%}
    {{ return(inlined_constant(
        "select cast(max(" ~ recent_column ~ ") - interval "
        ~ (var('matomo_lookback_days') + 3) ~ " day as varchar) from " ~ this,
        'timestamp')) }}
{%- endmacro %}


{#- DuckDB's incremental strategy replace_recent_keys: delete every row in the recent window or
    whose key the slice recomputed, then insert the slice. A key whose rows all vanished (its
    visits were reset, or moved to another visitor id) is deleted and not inserted again. -#}
{% macro get_incremental_replace_recent_keys_sql(arg_dict) -%}
    {%- set target_relation = arg_dict['target_relation'] -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target_relation }}
    where {{ config.get('recent_column') }} >= {{ incremental_recent_since(config.get('recent_column')) }}
        or {{ unique_key }} in (select {{ unique_key }} from {{ arg_dict['temp_relation'] }});

    insert into {{ target_relation }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
