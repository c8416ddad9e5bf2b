"""The evaluation service: KPIs, ranked scorecards per agency and province, the know → benefit
funnel, misinformation alerts, and a dashboard (README.md)."""
