{#- Data tests on the days an incremental run rebuilt.

    An incremental run rewrites only the days from its lookback start on; the older rows are
    the ones the run that wrote them already tested, untouched since. So in the invocation that
    rebuilt a model incrementally, its data tests read those days only: a one-day build does not
    re-scan a whole history of actions a hundred times. Any other invocation tests every row:
    a first or --full-refresh build, and a `dbt test` on its own.

    DuckDB: replace_lookback_days records (relation, invocation, day column, first day) in the
    matomo_rebuilt_days log, which on-run-start creates. BigQuery's insert_overwrite records
    nothing (and a lookup per test would be a query job each), so there tests read every row. -#}

{% macro rebuilt_days_log() -%}
    {{ return(api.Relation.create(
        database=target.database, schema=target.schema, identifier='matomo_rebuilt_days')) }}
{%- endmacro %}


{#- on-run-start: the log exists before any test reads it. -#}
{% macro create_rebuilt_days_log() -%}
    {{ return(adapter.dispatch('create_rebuilt_days_log')()) }}
{%- endmacro %}

{% macro duckdb__create_rebuilt_days_log() -%}
    create table if not exists {{ rebuilt_days_log() }} (
        relation_name varchar,
        invocation_id varchar,
        day_column varchar,
        rebuilt_from date,
        recorded_at timestamp
    )
{%- endmacro %}

{% macro bigquery__create_rebuilt_days_log() -%}
{%- endmacro %}

{% macro default__create_rebuilt_days_log() -%}
    {{ exceptions.raise_compiler_error(
        "create_rebuilt_days_log is not implemented for adapter " ~ target.type) }}
{%- endmacro %}


{#- Statement for the incremental strategies: this invocation rebuilt `relation` from `start`.
    Appended, never replaced: the daily metrics and dim_visitors read every rebuild of the visit
    facts since their own last one (a run that skipped them, a `--select` without them). In UTC:
    `now()` as a plain timestamp is the process's local time, which goes back between builds run
    in different time zones or across a DST fall-back, and the log is read in recorded order. -#}
{% macro record_rebuilt_days(relation, day_column, start) -%}
    insert into {{ rebuilt_days_log() }}
    values (
        '{{ relation }}', '{{ invocation_id }}', '{{ day_column }}', cast({{ start }} as date),
        now() at time zone 'UTC'
    )
{%- endmacro %}


{#- `day_column >= date '...'` when this invocation rebuilt `relation` incrementally, else ''.
    Read when the test runs and inlined as a constant, so its scan skips older row groups. -#}
{% macro rebuilt_days_condition(relation) -%}
    {{ return(adapter.dispatch('rebuilt_days_condition')(relation)) }}
{%- endmacro %}

{% macro duckdb__rebuilt_days_condition(relation) -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {#- Only replace_lookback_days models are logged: skip the query for everything else. -#}
    {%- set logged = [] -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model'
        and node.config.incremental_strategy == 'replace_lookback_days'
        and node.alias == relation.identifier and node.schema == relation.schema -%}
        {%- do logged.append(node) -%}
    {%- endfor -%}
    {%- if not logged -%}
        {{ return('') }}
    {%- endif -%}
    {%- set rebuilt = run_query(
        "select day_column, cast(rebuilt_from as varchar) from " ~ rebuilt_days_log()
        ~ " where relation_name = '" ~ relation ~ "'"
        ~ " and invocation_id = '" ~ invocation_id ~ "'") -%}
    {%- for day_column, rebuilt_from in rebuilt.rows -%}
        {{ return(day_column ~ " >= date '" ~ rebuilt_from ~ "'") }}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}

{% macro bigquery__rebuilt_days_condition(relation) -%}
    {{ return('') }}
{%- endmacro %}

{% macro default__rebuilt_days_condition(relation) -%}
    {{ exceptions.raise_compiler_error(
        "rebuilt_days_condition is not implemented for adapter " ~ target.type) }}
{%- endmacro %}


{#- `relation`, or the subquery of its rows that meet `where` and are in its rebuilt days;
    `alias` names the subquery. Singular tests call it on their ref()s. -#}
{% macro rebuilt_rows(relation, where='', alias='') -%}
    {%- set conditions = [where, rebuilt_days_condition(relation)] | select | list -%}
    {%- if conditions -%}
        {{ return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') ' ~ alias) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}


{#- dbt wraps the model of every generic data test in get_where_subquery, with the test's
    `where` config; ours adds the rebuilt days. -#}
{% macro duckdb__get_where_subquery(relation) -%}
    {{ return(rebuilt_rows(relation, config.get('where', ''), 'dbt_subquery')) }}
{%- endmacro %}

{% macro bigquery__get_where_subquery(relation) -%}
    {{ return(rebuilt_rows(relation, config.get('where', ''), 'dbt_subquery')) }}
{%- endmacro %}
