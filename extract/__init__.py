"""matomo-warehouse extractor: Matomo's Reporting API into a warehouse raw schema."""

__version__ = "0.1.0"
