{#- Unix seconds -> UTC timestamp. Not DuckDB's to_timestamp(): its result depends on the
    session TimeZone once cast to a plain timestamp. -#}
{% macro epoch_seconds_to_timestamp(expression) -%}
    {{ return(adapter.dispatch('epoch_seconds_to_timestamp')(expression)) }}
{%- endmacro %}

{% macro duckdb__epoch_seconds_to_timestamp(expression) -%}
    make_timestamp(cast({{ expression }} as bigint) * 1000000)
{%- endmacro %}

{% macro bigquery__epoch_seconds_to_timestamp(expression) -%}
    timestamp_seconds(cast({{ expression }} as int64))
{%- endmacro %}

{% macro default__epoch_seconds_to_timestamp(expression) -%}
    {{ exceptions.raise_compiler_error(
        "epoch_seconds_to_timestamp is not implemented for adapter " ~ target.type) }}
{%- endmacro %}


{#- Seconds that encode a wall-clock time "as if UTC" (Matomo's action `timestamp`) -> a
    zone-less wall-clock value: TIMESTAMP on DuckDB, DATETIME on BigQuery. -#}
{% macro epoch_seconds_to_wall_clock(expression) -%}
    {{ return(adapter.dispatch('epoch_seconds_to_wall_clock')(expression)) }}
{%- endmacro %}

{% macro duckdb__epoch_seconds_to_wall_clock(expression) -%}
    make_timestamp(cast({{ expression }} as bigint) * 1000000)
{%- endmacro %}

{% macro bigquery__epoch_seconds_to_wall_clock(expression) -%}
    datetime(timestamp_seconds(cast({{ expression }} as int64)))
{%- endmacro %}

{% macro default__epoch_seconds_to_wall_clock(expression) -%}
    {{ exceptions.raise_compiler_error(
        "epoch_seconds_to_wall_clock is not implemented for adapter " ~ target.type) }}
{%- endmacro %}


{#- UTC timestamp -> Unix seconds. -#}
{% macro timestamp_to_epoch_seconds(expression) -%}
    {{ return(adapter.dispatch('timestamp_to_epoch_seconds')(expression)) }}
{%- endmacro %}

{% macro duckdb__timestamp_to_epoch_seconds(expression) -%}
    cast(epoch({{ expression }}) as bigint)
{%- endmacro %}

{% macro bigquery__timestamp_to_epoch_seconds(expression) -%}
    unix_seconds({{ expression }})
{%- endmacro %}

{% macro default__timestamp_to_epoch_seconds(expression) -%}
    {{ exceptions.raise_compiler_error(
        "timestamp_to_epoch_seconds is not implemented for adapter " ~ target.type) }}
{%- endmacro %}


{#- Zone-less wall-clock value (see epoch_seconds_to_wall_clock) -> the seconds that encode
    it as if it were UTC. -#}
{% macro wall_clock_to_epoch_seconds(expression) -%}
    {{ return(adapter.dispatch('wall_clock_to_epoch_seconds')(expression)) }}
{%- endmacro %}

{% macro duckdb__wall_clock_to_epoch_seconds(expression) -%}
    cast(epoch({{ expression }}) as bigint)
{%- endmacro %}

{% macro bigquery__wall_clock_to_epoch_seconds(expression) -%}
    unix_seconds(timestamp({{ expression }}))
{%- endmacro %}

{% macro default__wall_clock_to_epoch_seconds(expression) -%}
    {{ exceptions.raise_compiler_error(
        "wall_clock_to_epoch_seconds is not implemented for adapter " ~ target.type) }}
{%- endmacro %}
