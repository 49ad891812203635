{#- FROM-clause fragment: one row per element of `array_expression`, exposing
    `element_alias` and `index_alias` (0-based, array order). Rows whose array is empty or
    null produce nothing (a cross join). -#}
{% macro unnest_array(array_expression, element_alias, index_alias) -%}
    {{ return(adapter.dispatch('unnest_array')(array_expression, element_alias, index_alias)) }}
{%- endmacro %}

{% macro duckdb__unnest_array(array_expression, element_alias, index_alias) -%}
    {#- Two unnests in one select list are zipped: element i beside index i. -#}
    cross join lateral (
        select
            unnest({{ array_expression }}) as {{ element_alias }},
            unnest(range(len({{ array_expression }}))) as {{ index_alias }}
    ) as {{ element_alias }}_elements
{%- endmacro %}

{#- The offset is renamed through a one-element unnest: bqemulator 1.4 shifts every column
    named like a WITH OFFSET alias by one, also where a later CTE selects it (docs/bigquery.md). -#}
{% macro bigquery__unnest_array(array_expression, element_alias, index_alias) -%}
    cross join unnest({{ array_expression }}) as {{ element_alias }}
        with offset as {{ index_alias }}_offset
    cross join unnest([{{ index_alias }}_offset]) as {{ index_alias }}
{%- endmacro %}

{% macro default__unnest_array(array_expression, element_alias, index_alias) -%}
    {{ exceptions.raise_compiler_error(
        "unnest_array is not implemented for adapter " ~ target.type) }}
{%- endmacro %}
