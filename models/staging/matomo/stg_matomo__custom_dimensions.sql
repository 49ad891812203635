with

source as (

    select * from {{ source('matomo', 'matomo_custom_dimensions') }}

),

renamed as (

    select

        ---------- ids
        site_id,
        custom_dimension_id,

        ---------- strings
        {{ json_string('payload', '$.name') }} as custom_dimension_name,
        {{ json_string('payload', '$.scope') }} as custom_dimension_scope,

        ---------- numerics
        {{ dbt.safe_cast(json_string('payload', '$.index'), dbt.type_int()) }}
            as log_column_index,

        ---------- booleans
        coalesce({{ json_string('payload', '$.active') }} in ('true', '1'), false)
            as is_active,

        ---------- metadata
        extracted_at as _extracted_at,
        run_id as _extract_run_id

    from source

)

select * from renamed
