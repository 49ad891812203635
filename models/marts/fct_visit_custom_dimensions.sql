{{ config(**incremental_by_day(cluster_by=['site_id', 'custom_dimension_id'])) }}

{# Visit-scope custom dimension values, one row per visit and dimension with a value,
    named from the site's dimension configuration. #}

with

visit_dimensions as (

    select * from {{ ref('stg_matomo__visit_custom_dimensions') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ incremental_lookback_start() }}
    {% endif %}

),

dimensions as (

    select * from {{ ref('stg_matomo__custom_dimensions') }}

),

final as (

    select

        ---------- ids
        visit_dimensions.visit_id,
        visit_dimensions.site_id,
        visit_dimensions.custom_dimension_id,

        ---------- strings
        dimensions.custom_dimension_name,
        visit_dimensions.custom_dimension_value,

        ---------- dates
        visit_dimensions.visit_date_local,

        ---------- metadata
        visit_dimensions._extracted_at,
        visit_dimensions._extract_run_id

    from visit_dimensions
    left join dimensions
        on visit_dimensions.site_id = dimensions.site_id
        and visit_dimensions.custom_dimension_id = dimensions.custom_dimension_id

)

select * from final
