{# The only reader of the raw visits table: every model that needs a visit's JSON reads
    it here, so the source has one consumer. The extractor already keeps one row per visit
    (newest copy wins), so there is nothing to de-duplicate. #}
with

source as (

    select * from {{ source('matomo', 'matomo_visits') }}

),

renamed as (

    select
        site_id,
        visit_id,
        visit_date as visit_date_local,
        last_action_at,
        action_count as action_detail_count,
        truncated_actions_count,
        payload,
        extracted_at as _extracted_at,
        run_id as _extract_run_id
    from source

)

select * from renamed
