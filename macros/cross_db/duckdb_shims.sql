{#- dbt.safe_cast falls back to a plain, throwing cast on DuckDB (dbt-duckdb ships no
    override); try_cast is the safe one. Found first via `dispatch` in dbt_project.yml. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
