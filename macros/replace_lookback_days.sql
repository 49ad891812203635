{#- DuckDB's incremental strategy for incremental_by_day models: delete every day from the
    run's first day (incremental_lookback_start) on, then insert the new slice. Keying the
    delete on the days the slice holds would keep a day it no longer has (its visits all ended on a later day, or
    `extract reset` removed them); replacing the whole range leaves what a full refresh would.
    Used as incremental_strategy='replace_lookback_days', with the day column as unique_key.
    The run's first day goes to the matomo_rebuilt_days log: its data tests read from it on
    (macros/rebuilt_days.sql). -#}
{% macro get_incremental_replace_lookback_days_sql(arg_dict) -%}
    {%- set target_relation = arg_dict['target_relation'] -%}
    {%- set day_column = arg_dict['unique_key'] -%}
    {%- set start = incremental_lookback_start(day_column) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target_relation }}
    where {{ day_column }} >= {{ start }};

    insert into {{ target_relation }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};

    {{ record_rebuilt_days(target_relation, day_column, start) }}
{%- endmacro %}
