{{ config(**incremental_by_day(cluster_by=['site_id'])) }}

{# One row per visit and visit-scope custom dimension that has a value. Matomo sends each
    active visit-scope dimension as a top-level key `dimension<id>` of the visit; which ids
    exist varies by site, so the keys are discovered rather than listed as columns. #}

with

visits as (

    select * from {{ ref('base_matomo__visits') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ incremental_lookback_start() }}
    {% endif %}

),

parsed as (

    select
        visits.site_id,
        visits.visit_id,
        visits.visit_date_local,
        visits._extracted_at,
        visits._extract_run_id,
        {{ json_object_entries('visits.payload', 'dimension[0-9]+') }} as dimensions
    from visits

),

unnested as (

    select
        parsed.site_id,
        parsed.visit_id,
        parsed.visit_date_local,
        parsed._extracted_at,
        parsed._extract_run_id,
        dimension
    from parsed
    {{ unnest_array('parsed.dimensions', 'dimension', 'dimension_index') }}

),

renamed as (

    select

        ---------- ids
        visit_id,
        site_id,
        cast(substr(dimension.key, 10) as {{ dbt.type_int() }}) as custom_dimension_id,

        ---------- strings
        dimension.value as custom_dimension_value,

        ---------- dates
        visit_date_local,

        ---------- metadata
        _extracted_at,
        _extract_run_id

    from unnested
    where dimension.value is not null

)

select * from renamed
