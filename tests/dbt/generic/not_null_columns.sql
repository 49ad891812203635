{#- Not null in each listed column, all in one scan: fails with one row per column that has
    nulls, and how many. One test (one query, one dbt node) per model instead of one per
    column: a daily build runs a node per test, and each costs more than its scan. -#}
{% test not_null_columns(model, columns) %}

with

null_counts as (

    select
        {%- for column in columns %}
        sum(case when {{ column }} is null then 1 else 0 end) as null_rows_{{ loop.index }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}

)

{% for column in columns -%}
select '{{ column }}' as column_name, null_rows_{{ loop.index }} as null_rows
from null_counts
where null_rows_{{ loop.index }} > 0
{{ 'union all' if not loop.last }}
{% endfor %}

{% endtest %}
