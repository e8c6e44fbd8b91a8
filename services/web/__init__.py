"""web: the operator's dashboard (services/web/service.py)."""
