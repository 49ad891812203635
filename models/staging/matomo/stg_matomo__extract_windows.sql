with

source as (

    select * from {{ source('matomo', '_extract_windows') }}

),

renamed as (

    select

        ---------- ids
        site_id,

        ---------- strings
        status as window_status,

        ---------- numerics
        visits as visit_count,
        pages as page_count,
        warnings as warning_count,

        ---------- booleans
        status = 'complete' as is_complete,

        ---------- dates
        window_date as window_date_local,

        ---------- timestamps
        completed_at,

        ---------- metadata
        run_id as _extract_run_id

    from source

)

select * from renamed
