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
    with a visit in the days fct_visits rebuilt since this model's last rebuild, before or
    after that rebuild: a day before the first of them (a local day begins at most 14 hours
    before its UTC date). No rebuild since: after the newest `recent_column`, so no key is
    recomputed; 1900-01-01 when the model is empty. -#}
{% macro incremental_recent_since(recent_column) -%}
    {%- set query -%}
        select cast(case
            when max({{ recent_column }}) is null then timestamp '1900-01-01'
            else coalesce(
                ({{ facts_rebuilt_since_query([ref('fct_visits')]) }}) - interval 1 day,
                max({{ recent_column }}) + interval 1 second
            )
        end as varchar)
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
