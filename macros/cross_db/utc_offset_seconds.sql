{#- Offset of a Matomo site timezone from UTC, in seconds, at the instant `epoch_seconds`
    (local wall clock = UTC + offset). Matomo timezones are IANA names or fixed offsets
    written `UTC+5.5` / `UTC-3` (hours, no DST); both are handled. -#}
{% macro utc_offset_seconds(epoch_seconds, timezone) -%}
    case
        when {{ timezone }} like 'UTC+%' or {{ timezone }} like 'UTC-%'
            then cast(round(cast(substr({{ timezone }}, 4) as {{ dbt.type_numeric() }})
                * 3600) as {{ dbt.type_bigint() }})
        else {{ adapter.dispatch('iana_utc_offset_seconds')(
            epoch_seconds,
            "case when " ~ timezone ~ " like 'UTC_%' then 'UTC' else " ~ timezone ~ " end"
        ) }}
    end
{%- endmacro %}

{% macro duckdb__iana_utc_offset_seconds(epoch_seconds, timezone) -%}
    (cast(epoch(timezone({{ timezone }}, to_timestamp({{ epoch_seconds }}))) as bigint)
        - ({{ epoch_seconds }}))
{%- endmacro %}

{#- The local wall clock, formatted and read back as if UTC. Not DATETIME(ts, zone): bqemulator
    1.4 mistranslates it when the zone is a column (docs/bigquery.md). -#}
{% macro bigquery__iana_utc_offset_seconds(epoch_seconds, timezone) -%}
    (unix_seconds(timestamp(format_timestamp(
        '%F %T', timestamp_seconds({{ epoch_seconds }}), {{ timezone }}
    ))) - ({{ epoch_seconds }}))
{%- endmacro %}

{% macro default__iana_utc_offset_seconds(epoch_seconds, timezone) -%}
    {{ exceptions.raise_compiler_error(
        "utc_offset_seconds is not implemented for adapter " ~ target.type) }}
{%- endmacro %}
