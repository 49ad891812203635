{#- Unique and not null in one scan: fails on every key value that is null or occurs more than
    once. One test (one query, one dbt node) per key instead of the unique + not_null pair. -#}
{% test primary_key(model, column_name) %}

select
    {{ column_name }},
    count(*) as occurrences
from {{ model }}
group by {{ column_name }}
having count(*) > 1 or {{ column_name }} is null

{% endtest %}
