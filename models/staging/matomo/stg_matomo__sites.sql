with

source as (

    select * from {{ source('matomo', 'matomo_sites') }}

),

renamed as (

    select

        ---------- ids
        site_id,

        ---------- strings
        name as site_name,
        {{ json_string('payload', '$.main_url') }} as main_url,
        timezone,
        {{ json_string('payload', '$.currency') }} as currency_code,
        {{ json_string('payload', '$.type') }} as site_type,

        ---------- booleans
        coalesce({{ json_string('payload', '$.ecommerce') }} = '1', false)
            as is_ecommerce_enabled,
        coalesce({{ json_string('payload', '$.sitesearch') }} = '1', false)
            as is_site_search_enabled,

        ---------- timestamps
        {{ dbt.safe_cast(json_string('payload', '$.ts_created'), dbt.type_timestamp()) }}
            as created_at,

        ---------- metadata
        extracted_at as _extracted_at,
        run_id as _extract_run_id

    from source

)

select * from renamed
