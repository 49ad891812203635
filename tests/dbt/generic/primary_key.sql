{#- Unique and not null in one scan: fails on every key value that is null or occurs more than
    once. One test (one query, one dbt node) per key instead of the unique + not_null pair.
    A column's test names the column; a composite key is a model's test with `columns`. -#}
{% test primary_key(model, column_name=none, columns=none) %}

{%- set key = columns or [column_name] %}
{%- if not key[0] %}
    {{ exceptions.raise_compiler_error("primary_key on a model needs `columns`") }}
{%- endif %}

select
    {{ key | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ key | join(', ') }}
having count(*) > 1
    {%- for column in key %}
    or {{ column }} is null
    {%- endfor %}

{% endtest %}
