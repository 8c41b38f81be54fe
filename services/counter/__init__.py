"""The counter service: visits, pageviews, online visitors and per-page views per site."""
