with

sites as (

    select * from {{ ref('stg_matomo__sites') }}

),

final as (

    select
        site_id,
        site_name,
        main_url,
        timezone,
        currency_code,
        site_type,
        is_ecommerce_enabled,
        is_site_search_enabled,
        created_at,
        _extracted_at
    from sites

)

select * from final
