{#- A foreign key over several columns: fails on every row whose `columns` (all non-null)
    have no row with the same values in `to`. -#}
{% test relationships_by_columns(model, to, columns) %}

select child.*
from {{ model }} as child
where {% for column in columns -%}
    child.{{ column }} is not null {{ 'and ' if not loop.last }}
    {%- endfor %}
    and not exists (
        select 1
        from {{ to }} as parent
        where {% for column in columns -%}
            parent.{{ column }} = child.{{ column }} {{ 'and ' if not loop.last }}
            {%- endfor %}
    )

{% endtest %}
