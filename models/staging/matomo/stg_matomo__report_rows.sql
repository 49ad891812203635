with

source as (

    select * from {{ source('matomo', 'matomo_report_rows') }}

),

renamed as (

    select

        ---------- ids
        {{ surrogate_key(['site_id', 'method', 'params_key', 'period', 'date', 'row_path']) }}
            as report_row_id,
        site_id,

        ---------- strings
        method as report_method,
        params_key as report_params_key,
        period as report_period,
        date_label as report_date_label,
        row_path,
        label as row_label,
        metrics as metrics_json,
        params as params_json,
        {{ adapter.quote('row') }} as row_json,

        ---------- numerics
        row_index,

        ---------- dates
        date as report_date,

        ---------- metadata
        extracted_at as _extracted_at,
        run_id as _extract_run_id

    from source

)

select * from renamed
