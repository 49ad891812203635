{#- Scalar at a JSONPath inside JSON text, as a string (null if absent or JSON null).
    For small documents (metadata, report metrics); visit payloads go through json_to_struct. -#}
{% macro json_string(json_text, path) -%}
    {{ return(adapter.dispatch('json_string')(json_text, path)) }}
{%- endmacro %}

{% macro duckdb__json_string(json_text, path) -%}
    json_extract_string({{ json_text }}, '{{ path }}')
{%- endmacro %}

{% macro bigquery__json_string(json_text, path) -%}
    json_value({{ json_text }}, '{{ path }}')
{%- endmacro %}

{% macro default__json_string(json_text, path) -%}
    {{ exceptions.raise_compiler_error(
        "json_string is not implemented for adapter " ~ target.type) }}
{%- endmacro %}
