{#- Parse JSON text once into a struct with the fields of `shape`, every scalar as a string
    (staging does the typing, so numbers that arrive as strings are handled in one place).
    shape = {
        'strings': [key, ...],           scalar values, as strings (JSON null -> null)
        'json':    [key, ...],           any value, kept as JSON text
        'arrays':  {key: shape, ...},    arrays of objects, as arrays of structs (API order)
    }
    Absent keys give null. Parsing once matters: DuckDB re-parses the whole document for
    every json_extract call, and a visit payload is several kB. -#}
{% macro json_to_struct(json_text, shape) -%}
    {{ return(adapter.dispatch('json_to_struct')(json_text, shape)) }}
{%- endmacro %}

{% macro duckdb__json_to_struct(json_text, shape) -%}
    json_transform({{ json_text }}, '{{ tojson(_duckdb_json_structure(shape)) }}')
{%- endmacro %}

{% macro _duckdb_json_structure(shape) -%}
    {%- set structure = {} -%}
    {%- for key in shape.get('strings', []) -%}
        {%- do structure.update({key: 'VARCHAR'}) -%}
    {%- endfor -%}
    {%- for key in shape.get('json', []) -%}
        {%- do structure.update({key: 'JSON'}) -%}
    {%- endfor -%}
    {%- for key, element_shape in shape.get('arrays', {}).items() -%}
        {%- do structure.update({key: [_duckdb_json_structure(element_shape)]}) -%}
    {%- endfor -%}
    {{ return(structure) }}
{%- endmacro %}

{#- STRUCT(...) rather than SELECT AS STRUCT: bqemulator 1.4 drops the offset column of an
    ordered ARRAY subquery inside a SELECT AS STRUCT list (docs/bigquery.md). -#}
{% macro bigquery__json_to_struct(json_text, shape) -%}
    (
        select struct({{ _bigquery_struct_fields('doc_0', shape, 0) }})
        from unnest([parse_json({{ json_text }}, wide_number_mode => 'round')]) as doc_0
    )
{%- endmacro %}

{% macro _bigquery_struct_fields(doc, shape, depth) -%}
    {%- set fields = [] -%}
    {%- for key in shape.get('strings', []) -%}
        {%- do fields.append("json_value(" ~ doc ~ ", '$." ~ key ~ "') as `" ~ key ~ "`") -%}
    {%- endfor -%}
    {%- for key in shape.get('json', []) -%}
        {%- do fields.append(
            "to_json_string(json_query(" ~ doc ~ ", '$." ~ key ~ "')) as `" ~ key ~ "`"
        ) -%}
    {%- endfor -%}
    {%- for key, element_shape in shape.get('arrays', {}).items() -%}
        {%- set element = 'doc_' ~ (depth + 1) -%}
        {%- do fields.append(
            "array(select struct("
            ~ _bigquery_struct_fields(element, element_shape, depth + 1)
            ~ ") from unnest(json_query_array(" ~ doc ~ ", '$." ~ key ~ "')) as " ~ element
            ~ " with offset as " ~ element ~ "_offset order by " ~ element ~ "_offset) as `"
            ~ key ~ "`"
        ) -%}
    {%- endfor -%}
    {{ return(fields | join(', ')) }}
{%- endmacro %}

{% macro default__json_to_struct(json_text, shape) -%}
    {{ exceptions.raise_compiler_error(
        "json_to_struct is not implemented for adapter " ~ target.type) }}
{%- endmacro %}
