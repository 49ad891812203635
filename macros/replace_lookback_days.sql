{#- DuckDB's incremental strategy for incremental_by_day models: delete every day from the
    lookback start on, then insert the new slice. Keying the delete on the days the slice
    holds would keep a day it no longer has (its visits all ended on a later day, or
    `extract reset` removed them); replacing the whole range leaves what a full refresh would.
    Used as incremental_strategy='replace_lookback_days', with the day column as unique_key. -#}
{% macro get_incremental_replace_lookback_days_sql(arg_dict) -%}
    {%- set day_column = arg_dict['unique_key'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }}
    where {{ day_column }} >= {{ incremental_lookback_start(day_column) }};

    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
