{#- Marketing channel of a referrer, from Matomo's referrer type and the source category
    seed (channel_source_categories). Rules, first match wins:
      1. a campaign is a campaign, whatever its source;
      2. a source the seed lists as social or search is that channel: Matomo files
         www.facebook.com under search engines and x.com under websites;
      3. otherwise Matomo's own type: search, social, website;
      4. anything else, including an empty type, is direct (Matomo's archiver does the same). -#}
{% macro channel_grouping(referrer_type, source_category) -%}
    case
        when {{ referrer_type }} = 'campaign' then 'campaign'
        when {{ source_category }} in ('social', 'search') then {{ source_category }}
        when {{ referrer_type }} in ('search', 'social', 'website')
            then {{ referrer_type }}
        else 'direct'
    end
{%- endmacro %}
