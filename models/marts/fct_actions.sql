{{ config(**incremental_by_day(cluster_by=['site_id', 'action_type'])) }}

with

actions as (

    select * from {{ ref('int_actions_converted_to_utc') }}
    {% if is_incremental() %}
    where visit_date_local >= {{ incremental_lookback_start() }}
    {% endif %}

)

select * from actions
