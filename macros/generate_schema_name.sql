{#- Custom schemas are used as given (`staging`, `marts`, ...), not prefixed with the
    target schema: the marts are what analysts and BI tools point at, so their names
    must not depend on who ran dbt. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
