{#- The top-level entries of a JSON object whose key fully matches `key_pattern`, as an
    array of structs {key, value} (value as a string; entries with a JSON null are kept).
    For keys that vary by site, like Matomo's custom dimensions `dimension<id>`. -#}
{% macro json_object_entries(json_text, key_pattern) -%}
    {{ return(adapter.dispatch('json_object_entries')(json_text, key_pattern)) }}
{%- endmacro %}

{% macro duckdb__json_object_entries(json_text, key_pattern) -%}
    list_transform(
        list_filter(
            json_keys({{ json_text }}),
            lambda entry_key: regexp_full_match(entry_key, '{{ key_pattern }}')
        ),
        lambda entry_key: {
            'key': entry_key,
            'value': json_extract_string({{ json_text }}, '$."' || entry_key || '"')
        }
    )
{%- endmacro %}

{% macro bigquery__json_object_entries(json_text, key_pattern) -%}
    array(
        select as struct
            entry_key as key,
            json_value(doc[entry_key]) as value
        from unnest([parse_json({{ json_text }}, wide_number_mode => 'round')]) as doc
        cross join unnest(json_keys(doc, 1)) as entry_key
        where regexp_contains(entry_key, r'^(?:{{ key_pattern }})$')
    )
{%- endmacro %}

{% macro default__json_object_entries(json_text, key_pattern) -%}
    {{ exceptions.raise_compiler_error(
        "json_object_entries is not implemented for adapter " ~ target.type) }}
{%- endmacro %}
