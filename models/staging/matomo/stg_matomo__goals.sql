with

source as (

    select * from {{ source('matomo', 'matomo_goals') }}

),

renamed as (

    select

        ---------- ids
        site_id,
        goal_id,

        ---------- strings
        {{ json_string('payload', '$.name') }} as goal_name,
        nullif({{ json_string('payload', '$.description') }}, '') as goal_description,
        {{ json_string('payload', '$.match_attribute') }} as match_attribute,
        {{ json_string('payload', '$.pattern_type') }} as pattern_type,
        {{ json_string('payload', '$.pattern') }} as pattern,

        ---------- numerics
        {{ dbt.safe_cast(json_string('payload', '$.revenue'), dbt.type_numeric()) }}
            as default_revenue,

        ---------- booleans
        coalesce({{ json_string('payload', '$.case_sensitive') }} = '1', false)
            as is_case_sensitive,
        coalesce({{ json_string('payload', '$.allow_multiple') }} = '1', false)
            as allows_multiple_conversions_per_visit,
        coalesce({{ json_string('payload', '$.event_value_as_revenue') }} = '1', false)
            as uses_event_value_as_revenue,
        coalesce({{ json_string('payload', '$.deleted') }} = '1', false) as is_deleted,

        ---------- metadata
        extracted_at as _extracted_at,
        run_id as _extract_run_id

    from source

)

select * from renamed
