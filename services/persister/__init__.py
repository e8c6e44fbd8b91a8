"""persister: Redis streams and state -> DynamoDB, DynamoDB config -> Redis (DESIGN.md §1, §4).

``python -m services.persister`` runs it. See docs/persistence.md.
"""
